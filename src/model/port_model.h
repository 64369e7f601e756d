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
// Rates and forecast. Per destination the pass also keeps the TIME_WAIT
// closed within the last PortLimits::rate_window (their remaining timer says
// when they closed: the close rate) and a histogram of when its blocking
// TIME_WAIT free (12 x 5 s). Across passes the model keeps, per destination
// of the last reported pass, its connections (ports held in every state but
// TIME_WAIT) and their smoothed growth: a second table, rebuilt by the
// next Begin() from the pass Report() last saw. A destination tracked now but not then grows from 0 when the
// last pass was below the destination cap (it had no socket then), and at an
// unknown rate, reported as 0, when the cap was reached (it may have been
// dropped); a destination gone since then has nothing to report. With these
// model/forecast.h forecasts when each destination runs out.
//
// Reuse model. A TIME_WAIT that connect() could take over (see
// PortSettings::TimeWaitReusable) still blocks while it is younger than
// tcp_tw_reuse_delay, and when the model saw tcp_timestamps go from 0 to on:
// a TIME_WAIT closed before that poll was opened without timestamps and the
// kernel never reuses it, so it blocks until it expires.
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
  // Window of the close rate (--ports.rate-window), 1 s .. 60 s; also the
  // time constant of the growth's smoothing.
  uint32_t rate_window_ms = 10000;
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
    uint64_t ports = 0;             // Local ports held, every state (TIME_WAIT included).
    uint64_t time_wait = 0;         // Of those, in TIME_WAIT.
    uint64_t blocking = 0;          // Of those, ports a new connect() cannot take.
    double utilization = 0;         // blocking / usable ports (1 when none is usable).
    double closes_per_second = 0;   // TIME_WAIT closed within the rate window / window.
    double growth_per_second = 0;   // Change of (ports - time_wait) per second, smoothed.
    double exhaustion_seconds = 0;  // Forecast (model/forecast.h), at most the horizon.
    double steady_utilization = 0;  // Where utilization settles at today's close rate.
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

  // At most top_destinations, most ports held first, then the destination
  // with the lowest forecast when it is not among them and heads for
  // exhaustion within the horizon (so an alert can always name it).
  std::vector<Destination> top_destinations;
  double utilization_max = 0;  // Over every tracked destination, not only the top-K.
  // Over every tracked destination: the lowest forecast (the horizon when
  // none heads for exhaustion) and the highest steady-state utilization (0
  // when no destination). 0 and 1 when no port is usable.
  double exhaustion_seconds_min = 0;
  double steady_utilization_max = 0;
  uint64_t destinations = 0;  // Destinations tracked (at most max_destinations).
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

  // Starts a pass with this namespace's settings, read at `now_seconds` (a
  // monotonic clock; growth is measured between passes, pins of TIME_WAIT
  // from the poll that saw tcp_timestamps turn on). Forgets the sockets of
  // the previous pass, not its per-destination connections.
  void Begin(const PortSettings& settings, double now_seconds = 0);
  // Forgets the sockets of the current pass (the stream restarts); keeps the
  // settings.
  void Reset();
  // Aggregates one socket. Non-TCP sockets and unknown states are ignored.
  void Add(const InetSocket& s);
  // What the pass found so far (completing the counts still in flight).
  // Cost O(tracked destinations + service ports + listeners), with partial
  // selection for every top-K. Growth is measured against the last reported
  // pass (calling it again measures the same); a reported pass becomes that
  // reference at the next Begin().
  PortReport Report();

 private:
  class DestinationTable;
  class PreviousTable;
  struct PortIndex;
  struct ListenerEntry {
    uint8_t family;
    std::array<uint8_t, 16> addr;
    uint16_t port;
    uint32_t queue_length;
    uint32_t queue_limit;
  };

  void CountService(Direction d, uint16_t port, uint8_t state);
  // Growth per second of the destination in slot i, against the last
  // reported pass, into growth_[i]; StartGrowth() first, then each slot in
  // order (the previous pass's entries are prefetched a few slots ahead).
  struct GrowthContext {
    double dt = 0;
    double alpha = 0;
    bool valid = false;
  };
  GrowthContext StartGrowth();
  void MeasureGrowth(const GrowthContext& g, size_t i);

  const PortLimits limits_;
  PortSettings settings_;
  std::bitset<65536> listened_;
  std::vector<ListenerEntry> listeners_;
  std::unique_ptr<PortIndex> services_[2];
  std::unique_ptr<DestinationTable> destinations_;
  std::array<StateCounts, 2> ephemeral_{};
  // TIME_WAIT by the first kTimeWaitWithinSeconds bound their timer is
  // within (made cumulative by Report()); the last counts those beyond all.
  std::array<uint64_t, PortReport::kTimeWaitWithinSeconds.size() + 1> time_wait_expiring_{};
  uint64_t tcp_sockets_ = 0;

  double now_ = 0;
  // TIME_WAIT classification thresholds on the remaining timer (ms), from
  // the settings, the window and the pin (see Begin()).
  uint32_t recent_min_expires_ = 0;  // At least this much left: closed within the window.
  uint32_t young_min_expires_ = 0;   // At least this much left: not reusable yet.
  int64_t pinned_max_expires_ = -1;  // Less than this left (or 0): pinned. -1: no pin.
  int last_timestamps_ = -1;         // tcp_timestamps at the last Begin (-1: none yet).
  std::optional<double> pin_since_;  // The pass that saw tcp_timestamps turn on.

  std::unique_ptr<PreviousTable> previous_;
  std::vector<float> growth_;  // By slot of the current pass (NaN: unknown), at Report().
  bool reported_ = false;      // This pass reached Report(): the next Begin keeps it.
  uint64_t added_at_report_ = 0;
};

}  // namespace sockdiag
