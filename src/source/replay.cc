#include "source/replay.h"

#include <linux/netlink.h>

#include <cerrno>

namespace sockdiag {

Status ReplayDumper::Dump(std::span<uint8_t> request, MessageSink& sink, DumpStats* stats) {
  if (broken_) return Status::IOError("netlink socket unusable after an earlier failure");
  if (request.size() < sizeof(struct nlmsghdr)) {
    return Status::InvalidArgument("netlink request shorter than a header");
  }
  if (requests_ != nullptr) requests_->emplace_back(request.begin(), request.end());
  while (next_ < datagrams_.size()) {
    auto progress = ProcessDatagram(datagrams_[next_++], 0, 0, sink, stats);
    if (!progress.ok()) {
      broken_ = true;
      return progress.status();
    }
    if (progress.value() == DumpProgress::kDone) return Status::Ok();
  }
  broken_ = true;
  return Status::IOError("netlink dump timed out", ETIMEDOUT);
}

Status ReplayFactory::AddFile(int bus, const std::string& path) {
  auto datagrams = ReadRecording(path);
  if (!datagrams.ok()) return datagrams.status();
  Add(bus, std::move(datagrams).value());
  return Status::Ok();
}

Result<std::unique_ptr<NetlinkDumper>> ReplayFactory::Open(int bus) {
  auto it = queued_.find(bus);
  if (it == queued_.end() || it->second.empty()) {
    return Status::Unsupported("no recording left for netlink bus " + std::to_string(bus),
                               EPROTONOSUPPORT);
  }
  opens_++;
  auto dumper = std::make_unique<ReplayDumper>(std::move(it->second.front()), &requests_);
  it->second.pop_front();
  return std::unique_ptr<NetlinkDumper>(std::move(dumper));
}

}  // namespace sockdiag
