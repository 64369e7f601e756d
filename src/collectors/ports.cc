// Collector "ports": ephemeral-port pressure per destination, sockets per
// service port and direction, listener accept queues and the TIME_WAIT
// outlook (see model/port_model.h for the model and docs/metrics/ports.md
// for the metrics).
//
// Begin() reads the namespace's port sysctls; the shared socket stream feeds
// the model (TCP only, listeners first); Collect() turns its report into
// families. An unreadable ip_local_port_range, tcp_tw_reuse or
// tcp_timestamps fails the collector for the poll: without them the
// capacity model would be a guess. A missing ip_local_reserved_ports means
// nothing is reserved; a missing tcp_tw_reuse_delay (before Linux 6.13) the
// kernel's fixed 1 s.
//
// The model lives as long as the collector (one per namespace): growth is
// measured between its polls, on the poll context's monotonic clock.

#include <sys/socket.h>

#include <chrono>

#include "collectors/collectors.h"
#include "model/port_model.h"
#include "netlink/address.h"

namespace sockdiag {
namespace {

constexpr const char* kFamilies[] = {"ipv4", "ipv6"};

const char* FamilyLabel(uint8_t family) { return family == AF_INET6 ? "ipv6" : "ipv4"; }

Result<long long> ReadSingleSysctl(const ProcFs& procfs, const char* name) {
  auto v = procfs.ReadSysctlInts(name);
  if (!v.ok()) return v.status();
  if (v.value().size() != 1) return Status::Corruption(std::string(name) + ": expected one value");
  return v.value()[0];
}

Result<PortSettings> ReadPortSettings(const ProcFs& procfs) {
  PortSettings s;
  auto range = procfs.ReadSysctlInts("net.ipv4.ip_local_port_range");
  if (!range.ok()) return range.status();
  const auto& r = range.value();
  if (r.size() != 2 || r[0] < 1 || r[1] > 65535 || r[0] > r[1]) {
    return Status::Corruption("net.ipv4.ip_local_port_range: expected \"low high\" ports");
  }
  s.range_low = static_cast<uint32_t>(r[0]);
  s.range_high = static_cast<uint32_t>(r[1]);

  auto reserved = procfs.ReadFile("sys/net/ipv4/ip_local_reserved_ports");
  if (reserved.ok()) {
    auto ranges = ParsePortRanges(reserved.value());
    if (!ranges.ok()) return ranges.status().WithPrefix("net.ipv4.ip_local_reserved_ports");
    s.reserved_in_range = CountReservedInRange(ranges.value(), s.range_low, s.range_high);
  } else if (!reserved.status().IsNotFound()) {
    return reserved.status();
  }

  auto reuse = ReadSingleSysctl(procfs, "net.ipv4.tcp_tw_reuse");
  if (!reuse.ok()) return reuse.status();
  s.tw_reuse = static_cast<int>(reuse.value());
  auto timestamps = ReadSingleSysctl(procfs, "net.ipv4.tcp_timestamps");
  if (!timestamps.ok()) return timestamps.status();
  s.timestamps = static_cast<int>(timestamps.value());
  auto delay = ReadSingleSysctl(procfs, "net.ipv4.tcp_tw_reuse_delay");
  if (delay.ok()) {
    if (delay.value() < 0) return Status::Corruption("net.ipv4.tcp_tw_reuse_delay: negative");
    s.tw_reuse_delay_ms = static_cast<uint32_t>(std::min<long long>(delay.value(), UINT32_MAX));
  } else if (!delay.status().IsNotFound()) {
    return delay.status();
  }
  return s;
}

PortLimits LimitsOf(const Config& c) {
  auto size = [](int v) { return static_cast<size_t>(v < 0 ? 0 : v); };
  PortLimits limits;
  limits.top_destinations = size(c.ports_top_destinations);
  limits.top_services = size(c.ports_top_services);
  limits.max_listeners = size(c.ports_max_listeners);
  limits.max_destinations = size(c.ports_max_destinations);
  limits.rate_window_ms = static_cast<uint32_t>(c.ports_rate_window.count());
  return limits;
}

class PortsCollector final : public Collector, public SocketStreamSink {
 public:
  explicit PortsCollector(const Config& config) : model_(LimitsOf(config)) {}

  Status Begin(const PollContext& ctx) override {
    auto settings = ReadPortSettings(ctx.procfs);
    if (!settings.ok()) return settings.status();
    const double now = std::chrono::duration<double>(ctx.clock->Now().time_since_epoch()).count();
    model_.Begin(settings.value(), now);
    return Status::Ok();
  }
  SocketStreamSink* socket_sink() override { return this; }
  void Reset() override { model_.Reset(); }
  void OnSocket(const InetSocket& s) override { model_.Add(s); }

  Status Collect(const PollContext&, MetricFamilies* out) override {
    const PortReport r = model_.Report();

    FamilyBuilder::Gauge("sockdiag_ephemeral_ports_usable",
                         "Local ports connect() can pick for one destination: the size of "
                         "ip_local_port_range minus the ip_local_reserved_ports inside it, at the "
                         "last poll.")
        .Add(static_cast<double>(r.usable_ports))
        .AppendTo(out);

    auto eph = FamilyBuilder::Gauge(
        "sockdiag_ephemeral_port_sockets",
        "TCP sockets whose local port lies in ip_local_port_range (listeners excluded), by "
        "family and state, at the last poll.");
    for (size_t f = 0; f < 2; ++f) {
      for (uint8_t st = 1; st < kTcpStateCount; ++st) {
        if (st == kTcpListen) continue;
        eph.Add({{"family", kFamilies[f]}, {"state", TcpStateName(st)}},
                static_cast<double>(r.ephemeral_sockets[f][st]));
      }
    }
    eph.AppendTo(out);

    auto ports = FamilyBuilder::Gauge(
        "sockdiag_destination_ephemeral_ports",
        "Local ephemeral ports held toward a destination (local address, remote address, remote "
        "port), every state including TIME_WAIT, for the top --ports.top-destinations "
        "destinations at the last poll.");
    auto util = FamilyBuilder::Gauge(
        "sockdiag_destination_ephemeral_port_utilization",
        "Ports toward a destination that would block a new connect() to it, divided by "
        "sockdiag_ephemeral_ports_usable, for the top --ports.top-destinations destinations at "
        "the last poll.");
    auto closes = FamilyBuilder::Gauge(
        "sockdiag_destination_closes_per_second",
        "Connections toward a destination closed per second on this side (its TIME_WAIT "
        "sockets younger than --ports.rate-window, divided by the window), at the last poll.");
    auto growth = FamilyBuilder::Gauge(
        "sockdiag_destination_connection_growth_per_second",
        "Change per second of the ports held toward a destination in every state but "
        "TIME_WAIT, between the last two polls (smoothed over --ports.rate-window; negative when "
        "shrinking).");
    auto exhaustion = FamilyBuilder::Gauge(
        "sockdiag_destination_ephemeral_port_exhaustion_seconds",
        "Seconds until the ports that block a new connect() toward a destination reach "
        "sockdiag_ephemeral_ports_usable if today's close rate and growth hold; 3600 (the "
        "horizon) means not within an hour, 0 exhausted now.");
    auto steady = FamilyBuilder::Gauge(
        "sockdiag_destination_ephemeral_port_steady_utilization",
        "Utilization a destination settles at once the 60 s TIME_WAIT window has filled at "
        "today's close rate (growth excluded); may exceed 1.");
    for (const auto& d : r.top_destinations) {
      Labels labels = {{"family", FamilyLabel(d.family)},
                       {"local_address", FormatAddress(d.family, d.local_addr)},
                       {"remote_address", FormatAddress(d.family, d.remote_addr)},
                       {"remote_port", std::to_string(d.remote_port)}};
      ports.Add(labels, static_cast<double>(d.ports));
      util.Add(labels, d.utilization);
      closes.Add(labels, d.closes_per_second);
      growth.Add(labels, d.growth_per_second);
      exhaustion.Add(labels, d.exhaustion_seconds);
      steady.Add(std::move(labels), d.steady_utilization);
    }
    for (auto* family : {&ports, &util, &closes, &growth, &exhaustion, &steady}) {
      family->AppendTo(out);
    }

    FamilyBuilder::Gauge("sockdiag_ephemeral_port_utilization_max",
                         "Highest sockdiag_destination_ephemeral_port_utilization over every "
                         "tracked destination (not only the top-K), at the last poll.")
        .Add(r.utilization_max)
        .AppendTo(out);
    FamilyBuilder::Gauge("sockdiag_ephemeral_port_exhaustion_seconds_min",
                         "Lowest sockdiag_destination_ephemeral_port_exhaustion_seconds over every "
                         "tracked destination (not only the top-K); 3600 when none heads for "
                         "exhaustion within an hour.")
        .Add(r.exhaustion_seconds_min)
        .AppendTo(out);
    FamilyBuilder::Gauge("sockdiag_ephemeral_port_steady_utilization_max",
                         "Highest sockdiag_destination_ephemeral_port_steady_utilization over "
                         "every tracked destination (not only the top-K); 0 when none.")
        .Add(r.steady_utilization_max)
        .AppendTo(out);
    FamilyBuilder::Gauge("sockdiag_destinations",
                         "Distinct destinations holding ephemeral ports that were tracked at the "
                         "last poll (at most --ports.max-destinations).")
        .Add(static_cast<double>(r.destinations))
        .AppendTo(out);
    FamilyBuilder::Gauge("sockdiag_destinations_dropped",
                         "Distinct destinations not tracked at the last poll because "
                         "--ports.max-destinations was reached (estimated when large).")
        .Add(static_cast<double>(r.destinations_dropped))
        .AppendTo(out);
    FamilyBuilder::Gauge("sockdiag_destination_sockets_dropped",
                         "Sockets of the destinations dropped at --ports.max-destinations at the "
                         "last poll.")
        .Add(static_cast<double>(r.sockets_dropped))
        .AppendTo(out);

    auto services = FamilyBuilder::Gauge(
        "sockdiag_tcp_port_sockets",
        "TCP sockets by service port (inbound: the local port listened on; outbound: the remote "
        "port), top --ports.top-services ports per direction plus port=\"other\", at the last "
        "poll. Listeners are inbound with state=\"listen\"; the sum equals "
        "sockdiag_tcp_sockets.");
    for (const auto& sp : r.service_ports) {
      const std::string port = sp.port ? std::to_string(*sp.port) : "other";
      for (uint8_t st = 1; st < kTcpStateCount; ++st) {
        // "other" has every state (outbound never listens), named ports
        // only the states they hold.
        if (sp.port ? sp.sockets[st] == 0
                    : (st == kTcpListen && sp.direction == Direction::kOutbound)) {
          continue;
        }
        services.Add({{"direction", DirectionName(sp.direction)},
                      {"port", port},
                      {"state", TcpStateName(st)}},
                     static_cast<double>(sp.sockets[st]));
      }
    }
    services.AppendTo(out);

    auto qlen = FamilyBuilder::Gauge(
        "sockdiag_tcp_listen_queue_length",
        "Connections waiting in a listener's accept queue (the kernel admits backlog + 1), for "
        "the --ports.max-listeners listeners with the longest queues at the last poll.");
    auto qlim = FamilyBuilder::Gauge(
        "sockdiag_tcp_listen_queue_limit",
        "Accept queue limit of a listener (its listen() backlog, capped by net.core.somaxconn), "
        "for the same listeners as sockdiag_tcp_listen_queue_length, at the last poll.");
    for (const auto& l : r.listeners) {
      Labels labels = {{"address", FormatAddress(l.family, l.addr)},
                       {"port", std::to_string(l.port)}};
      qlen.Add(labels, static_cast<double>(l.queue_length));
      qlim.Add(std::move(labels), static_cast<double>(l.queue_limit));
    }
    qlen.AppendTo(out);
    qlim.AppendTo(out);

    auto tw = FamilyBuilder::Gauge(
        "sockdiag_tcp_time_wait_expiring",
        "TIME_WAIT sockets whose timer ends within this many seconds (cumulative), i.e. ports "
        "freeing soon, at the last poll.");
    for (size_t i = 0; i < r.time_wait_expiring.size(); ++i) {
      tw.Add({{"within", std::to_string(PortReport::kTimeWaitWithinSeconds[i])}},
             static_cast<double>(r.time_wait_expiring[i]));
    }
    tw.AppendTo(out);
    return Status::Ok();
  }

 private:
  PortModel model_;
};

}  // namespace

std::unique_ptr<Collector> NewPortsCollector(const Config& config) {
  return std::make_unique<PortsCollector>(config);
}

}  // namespace sockdiag
