// inet_diag (sock_diag) requests and the per-socket view parsed from replies.
//
// Parsing is pure: ParseInetDiag() reads one SOCK_DIAG_BY_FAMILY message into
// an InetSocket value without allocating. Nothing keeps sockets: consumers
// aggregate each InetSocket as it streams past (SocketSink) and forget it.
//
// Thread-safety: functions are reentrant; SockDiagStream is single-threaded.
#pragma once

#include <linux/netlink.h>

#include <array>
#include <cstdint>
#include <memory>
#include <vector>

#include "netlink/netlink.h"
#include "sockdiag/status.h"

namespace sockdiag {

// Kernel TCP state numbers (include/net/tcp_states.h).
enum TcpState : uint8_t {
  kTcpEstablished = 1,
  kTcpSynSent = 2,
  kTcpSynRecv = 3,
  kTcpFinWait1 = 4,
  kTcpFinWait2 = 5,
  kTcpTimeWait = 6,
  kTcpClose = 7,
  kTcpCloseWait = 8,
  kTcpLastAck = 9,
  kTcpListen = 10,
  kTcpClosing = 11,
};
inline constexpr int kTcpStateCount = 12;  // Index 0 unused; 1..11 as above.

// Prometheus label value for a state ("established", "time_wait", ...), or
// nullptr for a number outside 1..11.
const char* TcpStateName(uint8_t state);

// Every state dumped except bit 13 (TCP_BOUND_INACTIVE, 6.8+), which makes the
// kernel also walk the bind hash: 0x1fff.
inline constexpr uint32_t kAllDumpStates = 0x1fff;
inline constexpr uint32_t kListenStates = 1u << kTcpListen;

// One socket, as reported. Addresses are in network byte order; IPv4 uses
// the first 4 bytes. Ports are in host byte order.
struct InetSocket {
  uint8_t family = 0;    // AF_INET or AF_INET6.
  uint8_t protocol = 0;  // IPPROTO_TCP or IPPROTO_UDP (from the request).
  uint8_t state = 0;     // TcpState number.
  uint8_t timer = 0;     // 0 none, 1 retransmit, 2 keepalive, 3 TIME_WAIT, 4 zero window.
  uint16_t local_port = 0;
  uint16_t remote_port = 0;
  std::array<uint8_t, 16> local_addr{};
  std::array<uint8_t, 16> remote_addr{};
  uint32_t expires_ms = 0;  // Timer left (TIME_WAIT: until the port is freed).
  uint32_t rqueue = 0;      // LISTEN: accept queue length; else bytes unread.
  uint32_t wqueue = 0;      // LISTEN: backlog limit; else bytes unsent.
  uint32_t uid = 0;
  uint32_t inode = 0;
};

// Builds a SOCK_DIAG_BY_FAMILY dump request (inet_diag_req_v2, no extensions)
// into `buf`, which is resized. seq/pid are left 0 for the dumper to fill.
void BuildInetDiagRequest(std::vector<uint8_t>* buf, uint8_t family, uint8_t protocol,
                          uint32_t states);

// Parses one reply message. Validates the type, the payload length, the
// family and the framing of every attribute (none is needed: the request
// asks for no extensions). Returns Corruption on malformed bytes.
Status ParseInetDiag(const struct nlmsghdr* nlh, uint8_t protocol, InetSocket* out);

// Receives parsed sockets; implemented by aggregating collectors.
class SocketSink {
 public:
  virtual ~SocketSink() = default;
  virtual void OnSocket(const InetSocket& s) = 0;
};

// What one pass over the namespace's sockets costs and found.
struct SocketStreamStats {
  DumpStats netlink;
  uint64_t sockets = 0;
  uint64_t interrupted_retries = 0;  // Passes restarted once after NLM_F_DUMP_INTR.
};

// Streams every socket of a namespace to a sink, in this order: TCP
// listeners (both families), then all other TCP states, then (optionally)
// UDP. Listeners come first so consumers can classify connections as inbound
// (local port is listened on) while streaming. Each is a separate request;
// the listener request makes the kernel walk only the listening hash and the
// others only the established hash, so together they cost one full dump.
//
// A kernel refusing a dump as unknown (NotFound, Unsupported) is not an
// error in two cases: IPv6 dumps on a kernel without IPv6 (there is nothing
// to count), and UDP dumps on a kernel without UDP diagnostics (udp_diag),
// after which the sink is told UDP is unavailable and the TCP pass stands.
// NLM_F_DUMP_INTR: the sink is told to Reset() and the pass restarts once;
// if interrupted again the data is kept and counted.
class SocketStreamSink : public SocketSink {
 public:
  // Discard everything seen so far (the pass restarts).
  virtual void Reset() = 0;
  // This pass cannot list the sockets of `protocol` (IPPROTO_UDP): the
  // kernel refused the dump.
  virtual void OnUnavailable(uint8_t protocol) { (void)protocol; }
};

class SockDiagStream {
 public:
  // `dumper` is borrowed and must outlive this object.
  explicit SockDiagStream(NetlinkDumper* dumper) : dumper_(dumper) {}

  Status Run(bool include_udp, SocketStreamSink& sink, SocketStreamStats* stats);

 private:
  Status RunOnce(bool include_udp, SocketStreamSink& sink, SocketStreamStats* stats);
  Status DumpOne(uint8_t family, uint8_t protocol, uint32_t states, SocketSink& sink,
                 SocketStreamStats* stats);

  NetlinkDumper* dumper_;
  std::vector<uint8_t> request_;
};

}  // namespace sockdiag
