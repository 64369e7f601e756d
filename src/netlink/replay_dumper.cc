#include "netlink/replay_dumper.h"

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
    bool reply_ended = false;
    auto progress = ProcessDatagram(datagrams_[next_++], 0, 0, sink, stats, &reply_ended);
    if (!progress.ok()) {
      broken_ = !reply_ended;
      return progress.status();
    }
    if (progress.value() == DumpProgress::kDone) return Status::Ok();
  }
  broken_ = true;
  return Status::IOError("netlink dump timed out", ETIMEDOUT);
}

}  // namespace sockdiag
