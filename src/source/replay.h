// Replay: netlink replies recorded from a kernel (--debug.dump-netlink,
// NetlinkSocket::set_record_path) or built in memory, served in place of
// netlink sockets. The golden exposition test and the collector unit tests
// run the real collectors over them.
//
// ReadRecording reads a recording file. ReplayFactory hands out one queued
// recording per Open(bus), in the order they were queued for that bus: one
// recording per socket the exporter opened, which is how --debug.dump-netlink
// writes them (netlink-<bus>-<n>.bin, n counting opens). ReplayDumper
// (netlink/replay_dumper.h) replays each.
//
// Thread-safety: one thread at a time per object.
#pragma once

#include <cstdint>
#include <deque>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "netlink/replay_dumper.h"
#include "sockdiag/status.h"
#include "source/dump_session.h"

namespace sockdiag {

// Reads a recording written by set_record_path() into datagrams.
Result<std::vector<std::vector<uint8_t>>> ReadRecording(const std::string& path);

class ReplayFactory final : public NetlinkFactory {
 public:
  // Queues the recording for the next socket opened on `bus`.
  void Add(int bus, Datagrams datagrams) { queued_[bus].push_back(std::move(datagrams)); }
  // Queues a recording file (ReadRecording's format).
  Status AddFile(int bus, const std::string& path);

  // The next recording queued for `bus`; Unsupported (EPROTONOSUPPORT, as
  // for a bus the kernel lacks) when none is left.
  Result<std::unique_ptr<NetlinkDumper>> Open(int bus) override;

  int opens() const { return opens_; }
  // Every request sent through the dumpers handed out, in order.
  const Datagrams& requests() const { return requests_; }

 private:
  std::map<int, std::deque<Datagrams>> queued_;
  Datagrams requests_;
  int opens_ = 0;
};

}  // namespace sockdiag
