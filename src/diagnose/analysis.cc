// The analysis behind `sockdiag_exporter diagnose`: the MetricFamilies of
// one or two polls in, a DiagnoseReport with its findings out. Pure.

#include <arpa/inet.h>
#include <sys/socket.h>

#include <algorithm>
#include <array>
#include <charconv>
#include <cmath>
#include <map>
#include <set>

#include "diagnose/diagnose.h"
#include "diagnose/text_format.h"
#include "model/port_settings.h"
#include "netlink/address.h"
#include "netlink/inet_diag.h"

namespace sockdiag {
namespace {

using namespace text;

using LabelMap = std::map<std::string, std::string>;

struct Sample {
  LabelMap labels;
  double value;
};

double ValueOf(const prometheus::ClientMetric& m, prometheus::MetricType type) {
  switch (type) {
    case prometheus::MetricType::Counter:
      return m.counter.value;
    case prometheus::MetricType::Untyped:
      return m.untyped.value;
    default:
      return m.gauge.value;
  }
}

// Name-indexed read access to one poll's families.
class View {
 public:
  explicit View(const MetricFamilies* families) {
    if (families == nullptr) return;
    for (const auto& f : *families) index_[f.name].push_back(&f);
  }

  bool Has(const std::string& name) const { return index_.count(name) != 0; }

  // Every sample of `name` whose labels include all of `match`.
  std::vector<Sample> All(const std::string& name, const LabelMap& match = {}) const {
    std::vector<Sample> out;
    auto it = index_.find(name);
    if (it == index_.end()) return out;
    for (const auto* f : it->second) {
      for (const auto& m : f->metric) {
        Sample s;
        for (const auto& l : m.label) s.labels[l.name] = l.value;
        if (!Includes(s.labels, match)) continue;
        s.value = ValueOf(m, f->type);
        out.push_back(std::move(s));
      }
    }
    return out;
  }

  std::optional<double> Get(const std::string& name, const LabelMap& match = {}) const {
    auto all = All(name, match);
    if (all.empty()) return std::nullopt;
    return all.front().value;
  }

  // Sum over matching samples; nullopt when the family is absent.
  std::optional<double> Sum(const std::string& name, const LabelMap& match = {}) const {
    if (!Has(name)) return std::nullopt;
    double sum = 0;
    for (const auto& s : All(name, match)) sum += s.value;
    return sum;
  }

 private:
  static bool Includes(const LabelMap& labels, const LabelMap& match) {
    for (const auto& [k, v] : match) {
      auto it = labels.find(k);
      if (it == labels.end() || it->second != v) return false;
    }
    return true;
  }

  std::map<std::string, std::vector<const prometheus::MetricFamily*>> index_;
};

uint64_t Count(double v) {
  if (!(v > 0)) return 0;
  return static_cast<uint64_t>(std::llround(v));
}
std::optional<uint64_t> Count(std::optional<double> v) {
  if (!v) return std::nullopt;
  return Count(*v);
}

// Rate of a counter between the two polls; nullopt without both values, a
// positive interval, or when the counter went backwards (a reset).
std::optional<double> Rate(const View& first, const View& last, double interval,
                           const std::string& name, const LabelMap& match = {}) {
  auto a = first.Sum(name, match), b = last.Sum(name, match);
  if (!a || !b || !(interval > 0) || *b < *a) return std::nullopt;
  return (*b - *a) / interval;
}


bool ParseAddress(const std::string& text, uint8_t* family, std::array<uint8_t, 16>* addr) {
  addr->fill(0);
  if (inet_pton(AF_INET, text.c_str(), addr->data()) == 1) {
    *family = AF_INET;
    return true;
  }
  if (inet_pton(AF_INET6, text.c_str(), addr->data()) == 1) {
    *family = AF_INET6;
    return true;
  }
  return false;
}

bool IsLoopbackText(const std::string& text) {
  uint8_t family = 0;
  std::array<uint8_t, 16> addr;
  return ParseAddress(text, &family, &addr) && IsLoopbackAddress(family, addr);
}

using Finding = DiagnoseReport::Finding;

Finding MakeFinding(std::string id, Severity severity, std::string subject, double value,
                    std::optional<double> threshold, std::string message) {
  Finding f;
  f.id = std::move(id);
  f.severity = severity;
  f.subject = std::move(subject);
  f.value = value;
  f.threshold = threshold;
  f.message = std::move(message);
  return f;
}

class Analyzer {
 public:
  explicit Analyzer(const DiagnoseInput& in)
      : first_(in.first), last_(in.last), interval_(in.first ? in.interval_seconds : 0) {
    r_.target = in.target;
    r_.netns_inode = in.netns_inode;
    r_.interval_seconds = interval_;
  }

  DiagnoseReport Run() {
    Collectors();
    Sysctls();
    Sockets();
    Ports();
    ServicePorts();
    Destinations();
    Listeners();
    Conntrack();
    SysctlVerdicts();
    PortFindings();
    ForecastFindings();
    CloseWaitFindings();
    ListenFindings();
    TimeWaitFindings();
    ConntrackFindings();
    ExporterFindings();
    std::stable_sort(r_.findings.begin(), r_.findings.end(),
                     [](const Finding& a, const Finding& b) { return a.severity > b.severity; });
    return std::move(r_);
  }

 private:
  const DiagnoseThresholds& t_ = kDiagnoseThresholds;

  std::optional<double> Sysctl(const std::string& name, const std::string& field = "") const {
    LabelMap match = {{"name", name}};
    if (!field.empty()) match["field"] = field;
    return last_.Get("sockdiag_sysctl", match);
  }
  std::optional<double> CounterRate(const std::string& name) const {
    return Rate(first_, last_, interval_, name);
  }
  bool CollectorOk(const std::string& name) const {
    for (const auto& [n, ok] : r_.collectors) {
      if (n == name) return ok;
    }
    return false;
  }
  bool CollectorRan(const std::string& name) const {
    for (const auto& c : r_.collectors) {
      if (c.first == name) return true;
    }
    return false;
  }

  void Collectors() {
    for (const auto& s : last_.All("sockdiag_collector_success")) {
      r_.collectors.emplace_back(s.labels.count("collector") ? s.labels.at("collector") : "",
                                 s.value == 1);
    }
  }

  void Sysctls() {
    sysctl_present_ = last_.Has("sockdiag_sysctl");
    tw_reuse_ = Sysctl("net.ipv4.tcp_tw_reuse");
    timestamps_ = Sysctl("net.ipv4.tcp_timestamps");
    if (tw_reuse_ && timestamps_) {
      settings_.tw_reuse = static_cast<int>(*tw_reuse_);
      settings_.timestamps = static_cast<int>(*timestamps_);
      reuse_known_ = true;
    }
  }

  void Sockets() {
    auto& s = r_.sockets;
    s.available = last_.Has("sockdiag_tcp_sockets");
    for (uint8_t st = 1; st < kTcpStateCount; ++st) {
      const std::string name = TcpStateName(st);
      const uint64_t n = Count(last_.Sum("sockdiag_tcp_sockets", {{"state", name}}).value_or(0));
      s.tcp.emplace_back(name, n);
      s.tcp_total += n;
    }
    s.tcp_ipv4 = Count(last_.Sum("sockdiag_tcp_sockets", {{"family", "ipv4"}}).value_or(0));
    s.tcp_ipv6 = Count(last_.Sum("sockdiag_tcp_sockets", {{"family", "ipv6"}}).value_or(0));
    s.udp = Count(last_.Sum("sockdiag_udp_sockets"));
    s.time_wait = Count(last_.Sum("sockdiag_tcp_sockets", {{"state", "time_wait"}}).value_or(0));
    s.close_wait = Count(last_.Sum("sockdiag_tcp_sockets", {{"state", "close_wait"}}).value_or(0));
    if (auto before = first_.Sum("sockdiag_tcp_sockets", {{"state", "close_wait"}})) {
      s.close_wait_change =
          static_cast<int64_t>(s.close_wait) - static_cast<int64_t>(Count(*before));
    }
    s.close_rate = static_cast<double>(s.time_wait) / kTimeWaitSeconds;
    s.active_opens_rate = CounterRate("sockdiag_tcp_active_opens_total");
    s.passive_opens_rate = CounterRate("sockdiag_tcp_passive_opens_total");
    s.time_wait_reused_rate = CounterRate("sockdiag_tcp_time_wait_reused_total");
    s.max_tw_buckets = Count(Sysctl("net.ipv4.tcp_max_tw_buckets"));
  }

  void Ports() {
    auto& p = r_.ports;
    p.range_low = Count(Sysctl("net.ipv4.ip_local_port_range", "low"));
    p.range_high = Count(Sysctl("net.ipv4.ip_local_port_range", "high"));
    p.reserved = Count(last_.Get("sockdiag_ephemeral_ports_reserved"));
    p.usable = Count(last_.Get("sockdiag_ephemeral_ports_usable"));
    p.utilization_max = last_.Get("sockdiag_ephemeral_port_utilization_max");
    p.destinations = Count(last_.Get("sockdiag_destinations"));
    p.destinations_dropped = Count(last_.Get("sockdiag_destinations_dropped"));
    p.exhaustion_seconds_min = last_.Get("sockdiag_ephemeral_port_exhaustion_seconds_min");
    p.steady_utilization_max = last_.Get("sockdiag_ephemeral_port_steady_utilization_max");
  }

  void ServicePorts() {
    std::map<std::pair<std::string, std::string>, DiagnoseReport::ServicePort> by_port;
    for (const auto& s : last_.All("sockdiag_tcp_port_sockets")) {
      const auto dir = s.labels.find("direction"), port = s.labels.find("port"),
                 state = s.labels.find("state");
      if (dir == s.labels.end() || port == s.labels.end() || state == s.labels.end()) continue;
      if (state->second == "listen") continue;  // Listeners are in their own section.
      auto& sp = by_port[{dir->second, port->second}];
      sp.direction = dir->second;
      sp.port = port->second;
      const uint64_t n = Count(s.value);
      sp.sockets += n;
      if (n > 0) sp.states.emplace_back(state->second, n);
    }
    for (auto& [key, sp] : by_port) {
      if (sp.sockets > 0) r_.service_ports.push_back(std::move(sp));
    }
    std::stable_sort(r_.service_ports.begin(), r_.service_ports.end(),
                     [](const auto& a, const auto& b) { return a.sockets > b.sockets; });
    for (const auto& sp : r_.service_ports) {
      if (const uint64_t cw = sp.State("close_wait"); cw > 0) {
        r_.close_wait.push_back({sp.direction, sp.port, cw});
      }
    }
    std::stable_sort(r_.close_wait.begin(), r_.close_wait.end(),
                     [](const auto& a, const auto& b) { return a.sockets > b.sockets; });
  }

  const DiagnoseReport::ServicePort* Outbound(const std::string& port) const {
    for (const auto& sp : r_.service_ports) {
      if (sp.direction == "outbound" && sp.port == port) return &sp;
    }
    return nullptr;
  }

  void Destinations() {
    const uint64_t usable = r_.ports.usable.value_or(0);
    for (const auto& s : last_.All("sockdiag_destination_ephemeral_ports")) {
      DiagnoseReport::Destination d;
      auto label = [&](const char* k) {
        auto it = s.labels.find(k);
        return it == s.labels.end() ? std::string() : it->second;
      };
      d.local_address = label("local_address");
      d.remote_address = label("remote_address");
      d.family = label("family");
      const std::string port = label("remote_port");
      unsigned port_value = 0;
      std::from_chars(port.data(), port.data() + port.size(), port_value);
      d.remote_port = static_cast<uint16_t>(port_value);
      d.ports_held = Count(s.value);
      const LabelMap dest = {{"local_address", d.local_address},
                             {"remote_address", d.remote_address},
                             {"remote_port", port},
                             {"family", d.family}};
      d.utilization =
          last_.Get("sockdiag_destination_ephemeral_port_utilization", dest).value_or(0);
      d.closes_per_second = last_.Get("sockdiag_destination_closes_per_second", dest);
      d.growth_per_second = last_.Get("sockdiag_destination_connection_growth_per_second", dest);
      d.exhaustion_seconds =
          last_.Get("sockdiag_destination_ephemeral_port_exhaustion_seconds", dest);
      d.steady_utilization =
          last_.Get("sockdiag_destination_ephemeral_port_steady_utilization", dest);
      d.time_wait_reusable =
          reuse_known_ && settings_.TimeWaitReusable(IsLoopbackText(d.local_address) ||
                                                     IsLoopbackText(d.remote_address));
      // From the TIME_WAIT share of its outbound service port: exact when
      // one destination uses that port, an average when several do.
      if (const auto* sp = Outbound(port); sp != nullptr && sp->sockets > 0) {
        const double share =
            static_cast<double>(sp->State("time_wait")) / static_cast<double>(sp->sockets);
        d.time_wait_ports =
            std::min(sp->State("time_wait"), Count(share * static_cast<double>(d.ports_held)));
      }
      if (d.time_wait_reusable && usable > 0) {
        // Held but not blocking: TIME_WAIT that connect() may take over, a
        // lower bound (those younger than the reuse delay, or pinned by a
        // tcp_timestamps change, block).
        const uint64_t blocking =
            std::min(d.ports_held, Count(d.utilization * static_cast<double>(usable)));
        d.time_wait_ports = std::max(d.time_wait_ports.value_or(0), d.ports_held - blocking);
      }
      if (d.time_wait_ports) {
        if (d.ports_held > 0) {
          d.time_wait_share =
              static_cast<double>(*d.time_wait_ports) / static_cast<double>(d.ports_held);
        }
        d.close_rate = static_cast<double>(*d.time_wait_ports) / kTimeWaitSeconds;
      }
      r_.destinations.push_back(std::move(d));
    }
    std::stable_sort(r_.destinations.begin(), r_.destinations.end(),
                     [](const auto& a, const auto& b) {
                       if (a.utilization != b.utilization) return a.utilization > b.utilization;
                       return a.ports_held > b.ports_held;
                     });
  }

  void Listeners() {
    for (const auto& s : last_.All("sockdiag_tcp_listen_queue_length")) {
      DiagnoseReport::ListenQueue q;
      q.address = s.labels.count("address") ? s.labels.at("address") : "";
      const std::string port = s.labels.count("port") ? s.labels.at("port") : "0";
      unsigned port_value = 0;
      std::from_chars(port.data(), port.data() + port.size(), port_value);
      q.port = static_cast<uint16_t>(port_value);
      q.length = Count(s.value);
      q.limit = Count(
          last_.Get("sockdiag_tcp_listen_queue_limit", {{"address", q.address}, {"port", port}})
              .value_or(0));
      q.fill = static_cast<double>(q.length) / static_cast<double>(std::max<uint64_t>(q.limit, 1));
      q.full = q.length > q.limit;
      if (q.fill >= t_.listen_queue_near_full) r_.listen_queues.push_back(std::move(q));
    }
    std::stable_sort(r_.listen_queues.begin(), r_.listen_queues.end(),
                     [](const auto& a, const auto& b) { return a.fill > b.fill; });
    r_.listen_overflows_rate = CounterRate("sockdiag_tcp_listen_overflows_total");
    r_.listen_overflows_total = Count(last_.Get("sockdiag_tcp_listen_overflows_total"));
    r_.time_wait_overflows_rate = CounterRate("sockdiag_tcp_time_wait_overflows_total");
    r_.time_wait_overflows_total = Count(last_.Get("sockdiag_tcp_time_wait_overflows_total"));
  }

  void Conntrack() {
    auto& c = r_.conntrack;
    c.entries = Count(last_.Get("sockdiag_conntrack_entries"));
    c.limit = Count(last_.Get("sockdiag_conntrack_entries_limit"));
    c.available = c.entries.has_value();
    if (!c.available) {
      if (!CollectorRan("conntrack")) {
        c.reason = "the conntrack collector is disabled";
      } else if (sysctl_present_ && !Sysctl("net.netfilter.nf_conntrack_max")) {
        conntrack_not_loaded_ = true;
        c.reason = "conntrack is not loaded in this namespace (nothing is tracked)";
      } else {
        c.reason = "the conntrack collector failed; reading conntrack needs CAP_NET_ADMIN";
      }
      return;
    }
    if (c.limit && *c.limit > 0) {
      c.fill = static_cast<double>(*c.entries) / static_cast<double>(*c.limit);
    }
    auto counter = [&](const std::string& name) {
      DiagnoseReport::Counter k;
      k.total = Count(last_.Get(name));
      k.rate = CounterRate(name);
      return k;
    };
    c.insert_failed = counter("sockdiag_conntrack_insert_failed_total");
    c.drop = counter("sockdiag_conntrack_drop_total");
    c.early_drop = counter("sockdiag_conntrack_early_drop_total");
    c.snat_utilization_max = last_.Get("sockdiag_conntrack_snat_port_utilization_max");
    c.tcp_time_wait_entries = Count(last_.Get("sockdiag_conntrack_table_entries",
                                              {{"protocol", "tcp"}, {"state", "time_wait"}}));
    const Sample* worst = nullptr;
    const auto snat = last_.All("sockdiag_conntrack_snat_ports");
    for (const auto& s : snat) {
      if (worst == nullptr || s.value > worst->value) worst = &s;
    }
    if (worst != nullptr && worst->value > 0) {
      auto label = [&](const char* k) {
        auto it = worst->labels.find(k);
        return it == worst->labels.end() ? std::string() : it->second;
      };
      unsigned port = 0;
      const std::string p = label("remote_port");
      std::from_chars(p.data(), p.data() + p.size(), port);
      c.snat_worst = HostPort(label("remote_address"), static_cast<uint16_t>(port)) + "/" +
                     label("protocol") + " via " + label("nat_address");
      c.snat_worst_ports = Count(worst->value);
    }
  }

  void AddSysctl(const std::string& name, std::optional<std::string> value, std::string verdict) {
    r_.sysctls.push_back({name, std::move(value), std::move(verdict)});
  }
  static std::optional<std::string> Text(std::optional<double> v) {
    if (!v) return std::nullopt;
    return std::to_string(static_cast<long long>(std::llround(*v)));
  }

  void SysctlVerdicts() {
    if (!sysctl_present_) return;
    const auto& p = r_.ports;
    if (p.range_low && p.range_high) {
      std::string verdict = Num(p.usable.value_or(0)) + " usable ports per destination";
      if (p.reserved.value_or(0) > 0) verdict += " (" + Num(*p.reserved) + " reserved)";
      AddSysctl("net.ipv4.ip_local_port_range", Num(*p.range_low) + " " + Num(*p.range_high),
                verdict + ".");
    }
    // TIME_WAIT reuse: tcp_tw_reuse x tcp_timestamps, as the ports model.
    std::string reuse_verdict;
    if (!reuse_known_) {
      r_.time_wait_reuse = "unknown";
      reuse_verdict = "Unknown: a sysctl could not be read.";
    } else if (settings_.timestamps == 0) {
      r_.time_wait_reuse = "no";
      reuse_verdict =
          "TIME_WAIT reuse: no. tcp_timestamps=0 disables it: a TIME_WAIT socket holds its port "
          "for 60 s.";
    } else if (settings_.tw_reuse == 1) {
      r_.time_wait_reuse = "outbound";
      reuse_verdict =
          "TIME_WAIT reuse: yes, for outbound connections (it hides churn, it does not remove "
          "it).";
    } else if (settings_.tw_reuse == 2) {
      r_.time_wait_reuse = "loopback_only";
      reuse_verdict =
          "TIME_WAIT reuse: only toward loopback (2). Elsewhere a TIME_WAIT socket holds its "
          "port for 60 s.";
    } else {
      r_.time_wait_reuse = "no";
      reuse_verdict = "TIME_WAIT reuse: no. A TIME_WAIT socket holds its port for 60 s.";
    }
    AddSysctl("net.ipv4.tcp_tw_reuse", Text(tw_reuse_), reuse_verdict);
    AddSysctl("net.ipv4.tcp_timestamps", Text(timestamps_),
              timestamps_ && *timestamps_ == 0 ? "Off: no TIME_WAIT reuse is possible."
                                               : "On: needed for TIME_WAIT reuse.");
    const auto recycle = Sysctl("net.ipv4.tcp_tw_recycle");
    if (!recycle) {
      r_.tcp_tw_recycle = "absent";
      AddSysctl("net.ipv4.tcp_tw_recycle", std::nullopt, "Absent (removed in Linux 4.12): good.");
    } else if (*recycle > 0) {
      r_.tcp_tw_recycle = "on";
      AddSysctl("net.ipv4.tcp_tw_recycle", Text(recycle),
                "ON: drops connections from clients behind NAT. Set it to 0.");
    } else {
      r_.tcp_tw_recycle = "off";
      AddSysctl("net.ipv4.tcp_tw_recycle", Text(recycle),
                "Off (a kernel older than 4.12): keep it off.");
    }
    if (auto fin = Sysctl("net.ipv4.tcp_fin_timeout")) {
      AddSysctl("net.ipv4.tcp_fin_timeout", Text(fin),
                "Orphaned FIN_WAIT2 only; TIME_WAIT is a fixed 60 s whatever this says.");
    }
    if (r_.sockets.max_tw_buckets) {
      const double fill = *r_.sockets.max_tw_buckets > 0
                              ? static_cast<double>(r_.sockets.time_wait) /
                                    static_cast<double>(*r_.sockets.max_tw_buckets)
                              : 1;
      AddSysctl("net.ipv4.tcp_max_tw_buckets", Num(*r_.sockets.max_tw_buckets),
                "TIME_WAIT sockets at most; " + Num(r_.sockets.time_wait) + " now (" +
                    Percent(fill) + ").");
    }
    if (auto somaxconn = Sysctl("net.core.somaxconn")) {
      AddSysctl("net.core.somaxconn", Text(somaxconn), "Caps every listen() backlog.");
    }
    if (auto ct_max = Sysctl("net.netfilter.nf_conntrack_max")) {
      AddSysctl("net.netfilter.nf_conntrack_max", Text(ct_max), "Conntrack entries at most.");
    }
  }

  std::string ReuseAdvice(const DiagnoseReport::Destination& d) const {
    if (!reuse_known_) return "";
    if (settings_.timestamps == 0) {
      return " TIME_WAIT is not reusable here (tcp_timestamps=0).";
    }
    if (settings_.tw_reuse == 2 && !d.time_wait_reusable) {
      return " TIME_WAIT is not reusable toward it (tcp_tw_reuse=2 reuses only toward "
             "loopback): tcp_tw_reuse=1 would free those ports for connect() but not remove "
             "the churn.";
    }
    if (!d.time_wait_reusable) {
      return " TIME_WAIT is not reusable here (tcp_tw_reuse=" + std::to_string(settings_.tw_reuse) +
             "): tcp_tw_reuse=1 would free those ports for connect() but not remove the churn.";
    }
    return "";
  }

  void PortFindings() {
    const uint64_t usable = r_.ports.usable.value_or(0);
    bool named_over = false;
    for (const auto& d : r_.destinations) {
      const std::string subject = d.local_address + " -> " + d.RemoteText();
      if (d.utilization > t_.port_utilization_warning) {
        named_over = true;
        const bool critical = d.utilization > t_.port_utilization_critical;
        std::string msg = Percent(d.utilization) + " of usable ports toward " + d.RemoteText() +
                          " (from " + d.local_address + ") are held" +
                          (d.time_wait_reusable ? " by sockets connect() cannot reuse" : "");
        if (d.time_wait_share && *d.time_wait_share >= 0.5) {
          msg += ", " + Percent(*d.time_wait_share) +
                 " in TIME_WAIT: connections to it are opened and closed ~" +
                 RateText(*d.close_rate) +
                 "/s (each holds its port 60 s after close) - reuse them (pooling / keep-alive, "
                 "read and close response bodies).";
          msg += ReuseAdvice(d);
        } else if (d.time_wait_share) {
          msg += ", " + Percent(1 - *d.time_wait_share) +
                 " not in TIME_WAIT: the client keeps that many connections to it at once - cap "
                 "its pool, or spread the load over more destination addresses.";
        } else {
          msg += ". Reuse connections to it (pooling / keep-alive) and cap the pool size.";
        }
        msg += " At 100% connect() to it fails with \"cannot assign requested address\".";
        r_.findings.push_back(MakeFinding(
            "ephemeral_ports_exhausting", critical ? Severity::kCritical : Severity::kWarning,
            subject, d.utilization,
            critical ? t_.port_utilization_critical : t_.port_utilization_warning, msg));
      } else if (usable > 0 && d.time_wait_reusable && d.time_wait_ports &&
                 static_cast<double>(d.ports_held) / static_cast<double>(usable) >
                     t_.port_utilization_warning) {
        const double held = static_cast<double>(d.ports_held) / static_cast<double>(usable);
        std::string msg =
            "TIME_WAIT reuse is possible toward " + d.RemoteText() +
            " (tcp_tw_reuse=" + std::to_string(settings_.tw_reuse) +
            ", tcp_timestamps=" + std::to_string(settings_.timestamps) + "), so its " +
            Num(*d.time_wait_ports) +
            " TIME_WAIT ports do not block connect() - yet the churn continues: " + Percent(held) +
            " of the usable ports are held, ~" + RateText(*d.close_rate) +
            " connections/s are opened and closed toward it. Reuse hides the symptom, not the "
            "cost (a handshake per request): use a connection pool / keep-alive.";
        r_.findings.push_back(MakeFinding("time_wait_churn", Severity::kWarning, subject, held,
                                          t_.port_utilization_warning, msg));
      }
    }
    const double max = r_.ports.utilization_max.value_or(0);
    if (!named_over && max > t_.port_utilization_warning) {
      const bool critical = max > t_.port_utilization_critical;
      r_.findings.push_back(MakeFinding(
          "ephemeral_ports_exhausting", critical ? Severity::kCritical : Severity::kWarning,
          "a destination outside the top " + Num(r_.destinations.size()), max,
          critical ? t_.port_utilization_critical : t_.port_utilization_warning,
          Percent(max) + " of usable ports toward one destination are blocked, but it is not "
                         "among the destinations listed: raise --ports.top-destinations to name "
                         "it. A client opens and closes connections to it instead of reusing "
                         "them (pooling / keep-alive)."));
    }
  }

  // What drives a destination's forecast, for the finding's parentheses:
  // "75 closes/s, 60 s TIME_WAIT, no reuse", "+7.2 connections held/s".
  static std::string Drivers(const DiagnoseReport::Destination& d) {
    std::vector<std::string> parts;
    const double closes = d.closes_per_second.value_or(0);
    const double growth = d.growth_per_second.value_or(0);
    if (closes > 0) {
      parts.push_back(RateText(closes) + " closes/s");
      parts.push_back(d.time_wait_reusable ? "TIME_WAIT reusable after ~1 s"
                                           : "60 s TIME_WAIT, no reuse");
    }
    if (growth > 0) parts.push_back("+" + RateText(growth) + " connections held/s");
    std::string out;
    for (const auto& p : parts) out += (out.empty() ? "" : ", ") + p;
    return out;
  }

  void ForecastFindings() {
    const double warning = t_.exhaustion_forecast_warning_seconds;
    const double critical = t_.exhaustion_forecast_critical_seconds;
    bool named = false;
    for (const auto& d : r_.destinations) {
      if (!d.exhaustion_seconds || !(*d.exhaustion_seconds < warning)) continue;
      named = true;
      const double left = *d.exhaustion_seconds;
      const bool is_critical = left < critical;
      std::string msg;
      if (left <= 0) {
        msg = "Ports toward " + d.RemoteText() + " (from " + d.local_address +
              ") have run out: connect() to it fails now with \"cannot assign requested "
              "address\".";
      } else {
        msg = "At today's rate, ports toward " + d.RemoteText() + " (from " + d.local_address +
              ") run out in " + DurationText(left);
        const std::string drivers = Drivers(d);
        if (!drivers.empty()) msg += " (" + drivers + ")";
        msg += ".";
      }
      const double closes = d.closes_per_second.value_or(0);
      const double growth = d.growth_per_second.value_or(0);
      if (growth > 0 && (closes == 0 || d.time_wait_reusable)) {
        msg +=
            " The connections held toward it keep growing: a leak (connections never "
            "closed) or a pool without a cap.";
      } else if (closes > 0 && !d.time_wait_reusable) {
        msg +=
            " Each closed connection holds its port 60 s: reuse connections (pooling / "
            "keep-alive) instead of opening one per request.";
      } else if (closes > 0) {
        msg +=
            " Even with TIME_WAIT reuse a closed connection's port waits about a second: "
            "reuse connections (pooling / keep-alive).";
      }
      if (d.steady_utilization && *d.steady_utilization > 1) {
        msg += " At this rate it needs " + Percent(*d.steady_utilization) +
               " of the usable ports: it cannot settle.";
      }
      r_.findings.push_back(MakeFinding("ephemeral_ports_exhaustion_forecast",
                                        is_critical ? Severity::kCritical : Severity::kWarning,
                                        d.local_address + " -> " + d.RemoteText(), left,
                                        is_critical ? critical : warning, msg));
    }
    const auto& min = r_.ports.exhaustion_seconds_min;
    if (!named && min && *min < warning) {
      const bool is_critical = *min < critical;
      r_.findings.push_back(MakeFinding(
          "ephemeral_ports_exhaustion_forecast",
          is_critical ? Severity::kCritical : Severity::kWarning,
          "a destination outside the top " + Num(r_.destinations.size()), *min,
          is_critical ? critical : warning,
          "At today's rates, ports toward one destination run out in " + DurationText(*min) +
              ", but it is not among the destinations listed: raise --ports.top-destinations "
              "to name it."));
    }
  }

  void CloseWaitFindings() {
    const auto& s = r_.sockets;
    if (s.close_wait == 0) return;
    std::string where;
    if (!r_.close_wait.empty()) {
      const auto& top = r_.close_wait.front();
      where = " Most are " + top.direction + " on port " + top.port + " (" + Num(top.sockets) +
              (top.direction == "inbound" ? ": this host's server on that port"
                                          : ": this host's client of that port") +
              ").";
    }
    std::string growth;
    if (s.close_wait_change && *s.close_wait_change > 0) {
      growth = " It grew by " + std::to_string(*s.close_wait_change) + " in " +
               Fixed(r_.interval_seconds, 1) + " s.";
    }
    const std::string subject =
        r_.close_wait.empty() ? ""
                              : r_.close_wait.front().direction + " :" + r_.close_wait.front().port;
    if (static_cast<double>(s.close_wait) > t_.close_wait_sockets) {
      r_.findings.push_back(MakeFinding(
          "close_wait_leak", Severity::kWarning, subject, static_cast<double>(s.close_wait),
          t_.close_wait_sockets,
          Num(s.close_wait) +
              " sockets are in CLOSE_WAIT: the peer closed and the application never called "
              "close() - a connection leak in the application, not a kernel setting." +
              where + growth +
              " Each holds a file descriptor (and, for a client, a port) until the process "
              "closes it or exits: find the code path that drops connections without closing "
              "them."));
    } else {
      r_.findings.push_back(
          MakeFinding("close_wait_present", Severity::kInfo, subject,
                      static_cast<double>(s.close_wait), t_.close_wait_sockets,
                      Num(s.close_wait) +
                          " sockets in CLOSE_WAIT (the application has not called close() "
                          "yet); a leak if the number keeps growing." +
                          where + growth));
    }
  }

  void ListenFindings() {
    bool any_full = false;
    std::string overflow_text;
    if (r_.listen_overflows_rate && *r_.listen_overflows_rate > 0) {
      overflow_text =
          " The kernel counts " + RateText(*r_.listen_overflows_rate) + " listen overflows/s.";
    }
    for (const auto& q : r_.listen_queues) {
      if (!q.full) continue;
      any_full = true;
      r_.findings.push_back(MakeFinding(
          "listen_queue_full", Severity::kWarning, HostPort(q.address, q.port), q.fill, 1.0,
          "The accept queue of " + HostPort(q.address, q.port) + " is full (" + Num(q.length) +
              " waiting, backlog " + Num(q.limit) + "): new connections to it are dropped." +
              overflow_text +
              " The application does not accept() as fast as clients connect (a stuck or "
              "too-small accept loop or worker pool); a larger backlog (listen() and "
              "net.core.somaxconn) only buys time."));
    }
    if (!any_full && !overflow_text.empty()) {
      r_.findings.push_back(MakeFinding(
          "listen_queue_overflowing", Severity::kWarning, "listeners", *r_.listen_overflows_rate,
          0.0,
          "Connections are dropped because a listener's accept queue overflowed (" +
              RateText(*r_.listen_overflows_rate) +
              "/s during the sample). The application does not accept() as fast as clients "
              "connect."));
    } else if (!any_full && r_.listen_overflows_total.value_or(0) > 0) {
      r_.findings.push_back(MakeFinding(
          "listen_overflows_past", Severity::kInfo, "listeners",
          static_cast<double>(*r_.listen_overflows_total), std::nullopt,
          Num(*r_.listen_overflows_total) +
              " listen overflows since the namespace was created, none during the sample."));
    }
  }

  void TimeWaitFindings() {
    const auto& s = r_.sockets;
    const bool rising = r_.time_wait_overflows_rate && *r_.time_wait_overflows_rate > 0;
    const bool full = s.max_tw_buckets && s.time_wait >= *s.max_tw_buckets;
    if (rising || full) {
      std::string msg =
          "The TIME_WAIT table is full (tcp_max_tw_buckets = " + Num(s.max_tw_buckets.value_or(0)) +
          ", " + Num(s.time_wait) + " TIME_WAIT now)";
      if (rising)
        msg += ": " + RateText(*r_.time_wait_overflows_rate) + " connections/s";
      else
        msg += ": further connections";
      msg +=
          " close without TIME_WAIT (\"time wait bucket table overflow\"), so late segments can "
          "corrupt new connections. The cause is connection churn: make the busiest client or "
          "server above reuse connections.";
      r_.findings.push_back(MakeFinding(
          "time_wait_buckets_overflowing", Severity::kWarning, "net.ipv4.tcp_max_tw_buckets",
          rising ? *r_.time_wait_overflows_rate : static_cast<double>(s.time_wait),
          rising ? 0.0 : static_cast<double>(*s.max_tw_buckets), msg));
    } else if (r_.time_wait_overflows_total.value_or(0) > 0) {
      r_.findings.push_back(MakeFinding(
          "time_wait_buckets_overflowed_past", Severity::kInfo, "net.ipv4.tcp_max_tw_buckets",
          static_cast<double>(*r_.time_wait_overflows_total), std::nullopt,
          Num(*r_.time_wait_overflows_total) +
              " TIME_WAIT bucket overflows since the namespace was created, none during the "
              "sample."));
    }
    if (r_.tcp_tw_recycle == "on") {
      r_.findings.push_back(MakeFinding(
          "tcp_tw_recycle_enabled", Severity::kWarning, "net.ipv4.tcp_tw_recycle",
          Sysctl("net.ipv4.tcp_tw_recycle").value_or(1), 0.0,
          "net.ipv4.tcp_tw_recycle is on: it drops connections from clients behind NAT (they "
          "share timestamps) and was removed from Linux in 4.12. Set it to 0 and fix the "
          "connection churn it was meant to hide."));
    }
  }

  void ConntrackFindings() {
    const auto& c = r_.conntrack;
    if (!c.available) return;
    if (c.fill && *c.fill > t_.conntrack_fill_warning) {
      const bool critical = *c.fill > t_.conntrack_fill_critical;
      std::string what;
      if (c.tcp_time_wait_entries && *c.tcp_time_wait_entries > 0) {
        what = " " + Num(*c.tcp_time_wait_entries) +
               " of the entries are TCP TIME_WAIT: connection churn fills it.";
      }
      r_.findings.push_back(MakeFinding(
          "conntrack_table_filling", critical ? Severity::kCritical : Severity::kWarning,
          "nf_conntrack_max", *c.fill,
          critical ? t_.conntrack_fill_critical : t_.conntrack_fill_warning,
          "The conntrack table is " + Percent(*c.fill) + " full (" + Num(*c.entries) + " of " +
              Num(*c.limit) + "): when it is full new flows are dropped." + what +
              " Reduce the churn (reuse connections) before raising nf_conntrack_max."));
    }
    struct Rule {
      const DiagnoseReport::Counter& counter;
      const char* id;
      const char* name;
      Severity severity;
      const char* before_rate;  // The message is before_rate + rate + after_rate.
      const char* after_rate;
    };
    const Rule rules[] = {
        {c.insert_failed, "conntrack_insert_failing", "insert_failed", Severity::kWarning,
         "Conntrack inserts failed at ",
         "/s during the sample: packets of new flows raced for the same entry and one was "
         "dropped (on Kubernetes typically the DNS A+AAAA race through DNAT, or SNAT port "
         "clashes)."},
        {c.drop, "conntrack_dropping", "drop", Severity::kCritical, "Conntrack dropped ",
         " packets/s during the sample because it could not create an entry for them: the "
         "table is full. New connections through this namespace fail."},
        {c.early_drop, "conntrack_early_dropping", "early_drop", Severity::kWarning,
         "Conntrack evicted ",
         " entries/s early during the sample to make room in a full table; drops of new flows "
         "follow."},
    };
    std::string past;
    for (const auto& rule : rules) {
      if (rule.counter.rate && *rule.counter.rate > 0) {
        r_.findings.push_back(
            MakeFinding(rule.id, rule.severity, rule.name, *rule.counter.rate, 0.0,
                        rule.before_rate + RateText(*rule.counter.rate) + rule.after_rate));
      } else if (rule.counter.total.value_or(0) > 0) {
        past += std::string(past.empty() ? "" : ", ") + rule.name + " " + Num(*rule.counter.total);
      }
    }
    if (!past.empty()) {
      r_.findings.push_back(MakeFinding(
          "conntrack_errors_past", Severity::kInfo, "conntrack", 0, std::nullopt,
          "Conntrack counted " + past + " since it was loaded, none during the sample."));
    }
    if (c.snat_utilization_max && *c.snat_utilization_max > t_.snat_utilization_warning) {
      const bool critical = *c.snat_utilization_max > t_.snat_utilization_critical;
      r_.findings.push_back(MakeFinding(
          "snat_ports_exhausting", critical ? Severity::kCritical : Severity::kWarning,
          c.snat_worst, *c.snat_utilization_max,
          critical ? t_.snat_utilization_critical : t_.snat_utilization_warning,
          Percent(*c.snat_utilization_max) +
              " of the NAT port range is used by masqueraded connections toward one destination" +
              (c.snat_worst.empty()
                   ? std::string()
                   : " (" + c.snat_worst + ": " + Num(c.snat_worst_ports.value_or(0)) + " ports)") +
              ". When it is used up new connections to it fail (insert_failed / drop): pool "
              "connections in the clients behind the NAT."));
    }
  }

  void ExporterFindings() {
    for (const auto& [name, ok] : r_.collectors) {
      if (ok) continue;
      const bool conntrack = name == "conntrack" || name == "conntrack_table";
      if (conntrack && conntrack_not_loaded_) continue;  // Routine; said in its section.
      r_.findings.push_back(MakeFinding(
          "collector_failed", Severity::kInfo, name, 0, std::nullopt,
          "The " + name + " collector failed, so its part of this report is missing" +
              (conntrack ? std::string(" (reading conntrack needs CAP_NET_ADMIN)") : "") +
              ". --log.level=warn shows why."));
    }
    if (r_.ports.destinations_dropped.value_or(0) > 0) {
      r_.findings.push_back(
          MakeFinding("destinations_dropped", Severity::kInfo, "--ports.max-destinations",
                      static_cast<double>(*r_.ports.destinations_dropped), std::nullopt,
                      Num(*r_.ports.destinations_dropped) +
                          " destinations were not tracked (--ports.max-destinations): the worst "
                          "utilization is a lower bound."));
    }
  }

  View first_, last_;
  double interval_;
  DiagnoseReport r_;
  bool sysctl_present_ = false;
  bool reuse_known_ = false;
  bool conntrack_not_loaded_ = false;
  std::optional<double> tw_reuse_, timestamps_;
  PortSettings settings_;
};


}  // namespace

const char* SeverityName(Severity s) {
  switch (s) {
    case Severity::kCritical:
      return "critical";
    case Severity::kWarning:
      return "warning";
    default:
      return "info";
  }
}

std::string DiagnoseReport::Destination::RemoteText() const {
  return HostPort(remote_address, remote_port);
}

uint64_t DiagnoseReport::ServicePort::State(std::string_view name) const {
  for (const auto& [state, n] : states) {
    if (state == name) return n;
  }
  return 0;
}

DiagnoseReport AnalyzeDiagnosis(const DiagnoseInput& input) { return Analyzer(input).Run(); }

int DiagnosisExitStatus(const DiagnoseReport& report) {
  for (const auto& f : report.findings) {
    if (f.severity != Severity::kInfo) return 1;
  }
  return 0;
}


}  // namespace sockdiag
