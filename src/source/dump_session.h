// How collectors and the poller reach netlink: a NetlinkFactory opens sockets
// in the namespace being polled (tests hand out replays instead:
// source/replay.h), and a DumpSession keeps one of them across dumps.
//
// Thread-safety: factories and sessions are used by the polling thread only.
#pragma once

#include <memory>
#include <span>
#include <string>

#include "netlink/netlink.h"
#include "sockdiag/status.h"

namespace sockdiag {

// Opens netlink sockets for the namespace being polled; pods mode opens
// them from a thread that has entered the namespace.
class NetlinkFactory {
 public:
  virtual ~NetlinkFactory() = default;
  virtual Result<std::unique_ptr<NetlinkDumper>> Open(int bus) = 0;
};

// One netlink socket of a bus, kept across dumps and polls: opened through
// the factory on first use, dropped when a dump leaves it broken (the rest of
// a failed dump may still be queued on it) and reopened for the next dump.
// The session is itself a NetlinkDumper, so a SockDiagStream runs over it.
class DumpSession final : public NetlinkDumper {
 public:
  // bus: NETLINK_SOCK_DIAG, NETLINK_NETFILTER, ...; `name` words errors
  // ("open <name> socket: ...").
  DumpSession(int bus, std::string name) : bus_(bus), name_(std::move(name)) {}

  // Opens the socket through `factory` (borrowed; used again to reopen)
  // unless one is open. Unsupported when `factory` is null.
  Status Open(NetlinkFactory* factory);

  // Dumps over the open socket, reopening it first if an earlier dump broke
  // it; then drops it if this dump broke it.
  Status Dump(std::span<uint8_t> request, MessageSink& sink, DumpStats* stats) override;

 private:
  const int bus_;
  const std::string name_;
  NetlinkFactory* factory_ = nullptr;
  std::unique_ptr<NetlinkDumper> dumper_;
};

}  // namespace sockdiag
