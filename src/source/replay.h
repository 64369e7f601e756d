// Replay: netlink replies recorded from a kernel (--debug.dump-netlink,
// NetlinkSocket::set_record_path) or built in memory, served in place of
// netlink sockets. The golden exposition test and the collector unit tests
// run the real collectors over them.
//
// ReplayDumper behaves as a NetlinkSocket that receives the recorded
// datagrams: each Dump() walks the next ones, in order, through
// ProcessDatagram until one ends the dump (NLMSG_DONE, an ACK or an error,
// a reply without NLM_F_MULTI). Sequence numbers and port ids are the
// recording's and are not checked. A dump that fails leaves the dumper
// broken(), as it leaves a socket; datagrams that run out mid-dump fail it
// with ETIMEDOUT, as a kernel that fell silent would.
//
// ReplayFactory hands out one queued recording per Open(bus), in the order
// they were queued for that bus: one recording per socket the exporter
// opened, which is how --debug.dump-netlink writes them
// (netlink-<bus>-<n>.bin, n counting opens).
//
// Thread-safety: one thread at a time per object.
#pragma once

#include <cstdint>
#include <deque>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "netlink/netlink.h"
#include "sockdiag/collector.h"
#include "sockdiag/status.h"

namespace sockdiag {

using Datagrams = std::vector<std::vector<uint8_t>>;

class ReplayDumper final : public NetlinkDumper {
 public:
  // `requests`, when not null, collects a copy of every request (borrowed).
  explicit ReplayDumper(Datagrams datagrams, Datagrams* requests = nullptr)
      : datagrams_(std::move(datagrams)), requests_(requests) {}

  Status Dump(std::span<uint8_t> request, MessageSink& sink, DumpStats* stats) override;
  bool broken() const override { return broken_; }

  // Datagrams not replayed yet.
  size_t remaining() const { return datagrams_.size() - next_; }

 private:
  Datagrams datagrams_;
  Datagrams* requests_;
  size_t next_ = 0;
  bool broken_ = false;
};

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
