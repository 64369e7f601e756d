// ReplayDumper: netlink replies recorded from a kernel or built in memory,
// replayed in place of a socket (source/replay.h reads recordings and hands
// replays out as sockets).
//
// It behaves as a NetlinkSocket that receives the recorded datagrams: each
// Dump() walks the next ones, in order, through ProcessDatagram until one
// ends the dump (NLMSG_DONE, an ACK or an error, a reply without
// NLM_F_MULTI). Sequence numbers and port ids are the recording's and are not
// checked. A dump that fails leaves the dumper broken(), as it leaves a
// socket, unless the kernel's refusal ended the reply; datagrams that run out
// mid-dump fail it with ETIMEDOUT, as a kernel that fell silent would.
//
// Thread-safety: one thread at a time.
#pragma once

#include <cstdint>
#include <span>
#include <vector>

#include "netlink/netlink.h"
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

}  // namespace sockdiag
