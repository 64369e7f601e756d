// PortModel: ephemeral-port pressure and attribution for one network
// namespace, aggregated from one streaming pass over its TCP sockets.
//
// connect() picks a local port that must be unique per (local address,
// remote address, remote port): ports run out per *destination*, not per
// node. The model therefore keeps, per destination, the local ports held and
// how many of them would block a new connect() (see PortSettings for the
// rule), and reports the top-K destinations plus the maximum utilization over
// all of them. Alongside: sockets per service port and direction, listener
// accept queues, and when TIME_WAIT ports free up.
//
// Direction. A TCP socket is inbound when its local port is one this
// namespace listens on (any address, any family); its service port is that
// local port. Every other socket is outbound and its service port is the
// remote port, with one exception so that no ephemeral port becomes a label:
// a socket whose local port is outside the ephemeral range while its remote
// port is inside it is the server end of a connection whose listener is gone,
// and counts as inbound on its local port. Listeners are inbound, state
// "listen", on their own port.
//
// Contract with the stream: listeners arrive before every other socket
// (SockDiagStream guarantees it), so the direction of each socket is decided
// as it streams past. Nothing is kept per socket: memory is O(tracked
// destinations + distinct service ports + listeners), with destinations
// capped by PortLimits::max_destinations.
//
// Thread-safety: none; one instance per namespace, used by the poller thread.
#pragma once

#include <array>
#include <bitset>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "model/port_settings.h"
#include "netlink/inet_diag.h"

namespace sockdiag {

// Caps on what the model reports and tracks (from the --ports.* flags).
struct PortLimits {
  size_t top_destinations = 10;  // 0: no per-destination series.
  size_t top_services = 20;      // Per direction; the rest is "other".
  size_t max_listeners = 64;
  size_t max_destinations = 100000;
};

enum class Direction : uint8_t { kInbound = 0, kOutbound = 1 };
// "inbound" / "outbound".
const char* DirectionName(Direction d);

using StateCounts = std::array<uint64_t, kTcpStateCount>;  // Indexed by TcpState.

// Everything the model found in one pass, ready to be turned into metrics.
struct PortReport {
  // Seconds of the cumulative TIME_WAIT expiry buckets.
  static constexpr std::array<uint32_t, 4> kTimeWaitWithinSeconds = {5, 15, 30, 60};

  struct Destination {
    uint8_t family = 0;
    std::array<uint8_t, 16> local_addr{};
    std::array<uint8_t, 16> remote_addr{};
    uint16_t remote_port = 0;
    uint64_t ports = 0;      // Local ports held, every state (TIME_WAIT included).
    uint64_t blocking = 0;   // Of those, ports a new connect() cannot take.
    double utilization = 0;  // blocking / usable ports (1 when none is usable).
  };

  struct ServicePort {
    Direction direction = Direction::kInbound;
    std::optional<uint16_t> port;  // nullopt: "other", the ports outside the top-K.
    StateCounts sockets{};
  };

  struct Listener {
    uint8_t family = 0;
    std::array<uint8_t, 16> addr{};
    uint16_t port = 0;
    // Summed over the listeners sharing this address and port (SO_REUSEPORT).
    uint64_t queue_length = 0;  // Connections waiting for accept().
    uint64_t queue_limit = 0;   // The backlog given to listen() (capped by somaxconn).
  };

  uint64_t usable_ports = 0;
  // TCP sockets whose local port lies in the range, listeners excluded:
  // [0] IPv4, [1] IPv6, by state.
  std::array<StateCounts, 2> ephemeral_sockets{};

  // At most top_destinations, most ports held first.
  std::vector<Destination> top_destinations;
  double utilization_max = 0;  // Over every tracked destination, not only the top-K.
  uint64_t destinations = 0;   // Destinations tracked (at most max_destinations).
  // Distinct destinations seen after the cap was reached: exact in practice
  // below ~1000, a linear-counting estimate (about 1% error) above.
  uint64_t destinations_dropped = 0;
  uint64_t sockets_dropped = 0;  // Sockets of those destinations (exact).

  // Inbound ports (top-K, most sockets first), inbound "other", then the
  // same for outbound. The sockets of all entries sum to tcp_sockets.
  std::vector<ServicePort> service_ports;
  uint64_t tcp_sockets = 0;

  // At most max_listeners, largest queue first.
  std::vector<Listener> listeners;

  // TIME_WAIT sockets whose timer ends within kTimeWaitWithinSeconds[i].
  std::array<uint64_t, kTimeWaitWithinSeconds.size()> time_wait_expiring{};
};

class PortModel {
 public:
  explicit PortModel(const PortLimits& limits);
  ~PortModel();
  PortModel(const PortModel&) = delete;
  PortModel& operator=(const PortModel&) = delete;

  // Starts a pass with this namespace's settings; forgets the previous one.
  void Begin(const PortSettings& settings);
  // Forgets the sockets of the current pass (the stream restarts); keeps the
  // settings.
  void Reset();
  // Aggregates one socket. Non-TCP sockets and unknown states are ignored.
  void Add(const InetSocket& s);
  // What the pass found so far (completing the counts still in flight).
  // Cost O(tracked destinations + service ports + listeners), with partial
  // selection for every top-K.
  PortReport Report();

 private:
  class DestinationTable;
  struct PortIndex;
  struct ListenerEntry {
    uint8_t family;
    std::array<uint8_t, 16> addr;
    uint16_t port;
    uint32_t queue_length;
    uint32_t queue_limit;
  };

  void CountService(Direction d, uint16_t port, uint8_t state);

  const PortLimits limits_;
  PortSettings settings_;
  std::bitset<65536> listened_;
  std::vector<ListenerEntry> listeners_;
  std::unique_ptr<PortIndex> services_[2];
  std::unique_ptr<DestinationTable> destinations_;
  std::array<StateCounts, 2> ephemeral_{};
  std::array<uint64_t, PortReport::kTimeWaitWithinSeconds.size()> time_wait_expiring_{};
  uint64_t tcp_sockets_ = 0;
};

}  // namespace sockdiag
