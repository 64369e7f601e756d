#include "source/replay.h"

#include <cerrno>
#include <fstream>

namespace sockdiag {

Result<std::vector<std::vector<uint8_t>>> ReadRecording(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return Status::FromErrno(errno, "open recording " + path);
  std::vector<std::vector<uint8_t>> out;
  for (;;) {
    uint32_t len = 0;
    if (!in.read(reinterpret_cast<char*>(&len), sizeof(len))) break;
    if (len > (16u << 20)) return Status::Corruption("recording " + path + ": datagram too large");
    std::vector<uint8_t> d(len);
    if (!in.read(reinterpret_cast<char*>(d.data()), len)) {
      return Status::Corruption("recording " + path + ": truncated datagram");
    }
    out.push_back(std::move(d));
  }
  return out;
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
