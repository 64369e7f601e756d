// `sockdiag_exporter diagnose`: a one-shot report for the person on the node.
//
// The subcommand polls one network namespace twice, a short interval apart
// (so counters give rates), with the exporter's own collectors, then turns
// the resulting MetricFamilies into a DiagnoseReport: sockets by state, the
// destinations closest to running out of ephemeral ports, service ports by
// direction, CLOSE_WAIT holders, listen queues near full, the sysctls that
// matter with a verdict, conntrack fill and errors, and findings that say in
// plain words what causes a problem and what to change. Findings use the
// thresholds of dashboards/alerts.yaml (see kDiagnoseThresholds).
//
// AnalyzeDiagnosis and the renderers are pure: MetricFamilies in, text out,
// no kernel access, so every finding is unit-tested on synthetic families.
// RunDiagnose is the impure driver (flags, setns, polls, printing).
//
// Thread-safety: the pure functions are reentrant. RunDiagnose moves the
// calling thread into the requested network namespace and never back, so it
// is meant to be the last thing main() does.
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "flags.h"
#include "sockdiag/config.h"
#include "sockdiag/metric_builder.h"
#include "sockdiag/status.h"

namespace sockdiag {

// Options of the subcommand beyond the exporter's own flags.
struct DiagnoseOptions {
  enum class Format { kText, kJson };
  // "" = the caller's namespace; digits = that process's namespace
  // (<procfs>/<pid>/ns/net); anything else = a namespace file such as
  // /var/run/netns/NAME.
  std::string netns;
  Format format = Format::kText;
  // Time between the two polls; counter rates are computed over it.
  std::chrono::milliseconds interval{1000};
};

// Parses `diagnose`'s arguments (without "diagnose" itself): --netns,
// --format and --interval, then every other argument through ParseFlags.
// InvalidArgument with a one-line message on bad input, including flags that
// make no sense for a one-shot run (--netns.mode=pods).
Result<FlagAction> ParseDiagnoseFlags(const std::vector<std::string>& args, Config* config,
                                      DiagnoseOptions* options);

// diagnose's own flags, storing into *options (borrowed).
std::vector<FlagSpec> DiagnoseFlags(DiagnoseOptions* options);

// `diagnose --help` text.
std::string DiagnoseUsageText(std::string_view program);

// The thresholds findings use: the same numbers as dashboards/alerts.yaml
// (a unit test checks them against that file). A value must be strictly
// above a threshold to fire, as the alerts' `>`.
struct DiagnoseThresholds {
  double port_utilization_warning = 0.7;  // SockdiagEphemeralPortsExhausting
  double port_utilization_critical = 0.9;
  double snat_utilization_warning = 0.7;  // SockdiagSnatPortsExhausting
  double snat_utilization_critical = 0.9;
  double conntrack_fill_warning = 0.75;  // SockdiagConntrackTableFilling
  double conntrack_fill_critical = 0.9;
  double close_wait_sockets = 100;  // SockdiagCloseWaitGrowing
  // SockdiagEphemeralPortsExhaustionForecast: a forecast strictly below
  // these many seconds fires.
  double exhaustion_forecast_warning_seconds = 300;
  double exhaustion_forecast_critical_seconds = 60;
  // Listener fill listed as "near full" (the Overview dashboard's orange).
  double listen_queue_near_full = 0.7;
};
inline constexpr DiagnoseThresholds kDiagnoseThresholds{};

// TIME_WAIT lasts a fixed 60 s on Linux (TCP_TIMEWAIT_LEN): TIME_WAIT / 60 s
// is the close rate over the last minute.
inline constexpr double kTimeWaitSeconds = 60;

// What the analysis is given. `last` is required; `first` (an earlier poll
// of the same namespace, `interval_seconds` before) adds counter rates.
struct DiagnoseInput {
  const MetricFamilies* first = nullptr;
  const MetricFamilies* last = nullptr;
  double interval_seconds = 0;
  // What was examined, for the header: "current network namespace",
  // "network namespace of pid 42", ...
  std::string target;
  std::optional<uint64_t> netns_inode;
};

enum class Severity { kInfo, kWarning, kCritical };
// "info", "warning", "critical".
const char* SeverityName(Severity s);

struct DiagnoseReport {
  std::string target;
  std::optional<uint64_t> netns_inode;
  double interval_seconds = 0;

  struct Sockets {
    // TCP sockets by state name (all 11 states, both families summed),
    // in the kernel's state order.
    std::vector<std::pair<std::string, uint64_t>> tcp;
    uint64_t tcp_total = 0, tcp_ipv4 = 0, tcp_ipv6 = 0;
    std::optional<uint64_t> udp;
    uint64_t time_wait = 0;
    uint64_t close_wait = 0;
    std::optional<int64_t> close_wait_change;  // last - first poll
    double close_rate = 0;                     // time_wait / 60 s
    std::optional<double> active_opens_rate, passive_opens_rate, time_wait_reused_rate;
    std::optional<uint64_t> max_tw_buckets;
    bool available = false;  // The sockets collector reported.
  } sockets;

  struct Ports {
    std::optional<uint64_t> range_low, range_high, usable, reserved;
    std::optional<double> utilization_max;
    std::optional<uint64_t> destinations, destinations_dropped;
    // Over every tracked destination: the soonest exhaustion forecast
    // (3600 = not within an hour) and the highest steady-state utilization.
    std::optional<double> exhaustion_seconds_min, steady_utilization_max;
  } ports;

  struct Destination {
    std::string local_address, remote_address, family;
    uint16_t remote_port = 0;
    uint64_t ports_held = 0;
    double utilization = 0;
    // TIME_WAIT sockets toward it: exact when reusable (held - blocking),
    // else estimated from the TIME_WAIT share of its outbound service port;
    // nullopt when that port is not among the exported service ports.
    std::optional<uint64_t> time_wait_ports;
    std::optional<double> time_wait_share;  // time_wait_ports / ports_held
    bool time_wait_reusable = false;
    std::optional<double> close_rate;  // time_wait_ports / 60 s
    // The ports collector's rates and forecast (nullopt when not exported):
    // closes/s over --ports.rate-window, growth of the connections held,
    // seconds until exhaustion (3600: not within an hour), steady state.
    std::optional<double> closes_per_second, growth_per_second, exhaustion_seconds,
        steady_utilization;
    // "127.0.0.2:3306" or "[::1]:443".
    std::string RemoteText() const;
  };
  // Most utilized first (then most ports held).
  std::vector<Destination> destinations;

  struct ServicePort {
    std::string direction, port;  // port: decimal or "other"
    uint64_t sockets = 0;
    std::vector<std::pair<std::string, uint64_t>> states;  // Non-zero states only.
    uint64_t State(std::string_view name) const;
  };
  // Most sockets first.
  std::vector<ServicePort> service_ports;

  struct CloseWait {
    std::string direction, port;
    uint64_t sockets = 0;
  };
  std::vector<CloseWait> close_wait;  // Most first.

  struct ListenQueue {
    std::string address;
    uint16_t port = 0;
    uint64_t length = 0, limit = 0;
    double fill = 0;    // length / limit (length + 1 over a zero limit).
    bool full = false;  // length > limit: the kernel drops new SYNs.
  };
  std::vector<ListenQueue> listen_queues;  // fill >= listen_queue_near_full, fullest first.
  std::optional<double> listen_overflows_rate;
  std::optional<uint64_t> listen_overflows_total;

  struct Sysctl {
    std::string name;
    std::optional<std::string> value;  // nullopt: absent on this kernel.
    std::string verdict;
  };
  std::vector<Sysctl> sysctls;
  // "no", "outbound", "loopback_only" or "unknown".
  std::string time_wait_reuse = "unknown";
  // "absent", "off", "on" or "unknown".
  std::string tcp_tw_recycle = "unknown";
  std::optional<double> time_wait_overflows_rate;
  std::optional<uint64_t> time_wait_overflows_total;

  struct Counter {
    std::optional<uint64_t> total;
    std::optional<double> rate;
  };
  struct Conntrack {
    bool available = false;
    std::string reason;  // Why not available.
    std::optional<uint64_t> entries, limit;
    std::optional<double> fill;
    Counter insert_failed, drop, early_drop;
    std::optional<double> snat_utilization_max;
    // The SNAT tuple using most ports: "127.0.0.4:5432/tcp via 127.0.0.5",
    // or "" when none.
    std::string snat_worst;
    std::optional<uint64_t> snat_worst_ports;
    std::optional<uint64_t> tcp_time_wait_entries;
  } conntrack;

  std::vector<std::pair<std::string, bool>> collectors;  // name, success

  struct Finding {
    std::string id;  // Stable: see docs/diagnose.md.
    Severity severity = Severity::kInfo;
    std::string subject;  // What it is about: a destination, a port, a sysctl.
    double value = 0;
    std::optional<double> threshold;
    std::string message;  // Plain language: what, why, what to change.
  };
  // Most severe first.
  std::vector<Finding> findings;
};

DiagnoseReport AnalyzeDiagnosis(const DiagnoseInput& input);

// 0 when no finding is a warning or worse, else 1.
int DiagnosisExitStatus(const DiagnoseReport& report);

// Human report, at most 80 columns wide (long addresses aside).
std::string RenderDiagnosisText(const DiagnoseReport& report);
// One JSON object; keys are documented in docs/diagnose.md.
std::string RenderDiagnosisJson(const DiagnoseReport& report);

// The subcommand: args are those after "diagnose". Returns the exit status
// (0 healthy, 1 a finding crossed a threshold, 2 bad usage or cannot run).
int RunDiagnose(const char* program, const std::vector<std::string>& args);

}  // namespace sockdiag
