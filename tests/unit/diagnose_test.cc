// The analysis of `sockdiag_exporter diagnose` on synthetic polls: every
// finding fires just above its threshold and not at it, rates come from the
// two polls, and the renderers keep their promises (80 columns, valid JSON
// with the keys docs/diagnose.md documents).

#include "diagnose/diagnose.h"

#include <unistd.h>

#include <algorithm>
#include <catch2/catch.hpp>
#include <cstdio>
#include <fstream>
#include <map>
#include <set>
#include <sstream>
#include <string>

#include "unit/golden.h"

using namespace sockdiag;

namespace {

using LabelMap = std::map<std::string, std::string>;

const char* const kStates[] = {"established", "syn_sent",  "syn_recv", "fin_wait1",
                               "fin_wait2",   "time_wait", "close",    "close_wait",
                               "last_ack",    "listen",    "closing"};

// Sets the sample of `name` with exactly `labels`, creating the family or
// sample as needed.
void Set(MetricFamilies* f, const std::string& name, const LabelMap& labels, double value,
         prometheus::MetricType type = prometheus::MetricType::Gauge) {
  prometheus::MetricFamily* family = nullptr;
  for (auto& x : *f) {
    if (x.name == name) family = &x;
  }
  if (family == nullptr) {
    f->push_back({});
    family = &f->back();
    family->name = name;
    family->type = type;
  }
  for (auto& m : family->metric) {
    LabelMap have;
    for (const auto& l : m.label) have[l.name] = l.value;
    if (have == labels) {
      (type == prometheus::MetricType::Counter ? m.counter.value : m.gauge.value) = value;
      return;
    }
  }
  prometheus::ClientMetric m;
  for (const auto& [k, v] : labels) m.label.push_back({k, v});
  (type == prometheus::MetricType::Counter ? m.counter.value : m.gauge.value) = value;
  family->metric.push_back(std::move(m));
}

void Remove(MetricFamilies* f, const std::string& name, const LabelMap& labels) {
  for (auto& x : *f) {
    if (x.name != name) continue;
    std::erase_if(x.metric, [&](const prometheus::ClientMetric& m) {
      LabelMap have;
      for (const auto& l : m.label) have[l.name] = l.value;
      return have == labels;
    });
  }
}

// A healthy namespace, as the collectors would report it.
MetricFamilies Healthy() {
  MetricFamilies f;
  for (const char* fam : {"ipv4", "ipv6"}) {
    for (const char* st : kStates)
      Set(&f, "sockdiag_tcp_sockets", {{"family", fam}, {"state", st}}, 0);
    Set(&f, "sockdiag_udp_sockets", {{"family", fam}}, 1);
  }
  Set(&f, "sockdiag_tcp_sockets", {{"family", "ipv4"}, {"state", "established"}}, 20);
  Set(&f, "sockdiag_tcp_sockets", {{"family", "ipv4"}, {"state", "listen"}}, 1);
  auto sysctl = [&](const std::string& name, double v, const std::string& field = "") {
    LabelMap l = {{"name", name}};
    if (!field.empty()) l["field"] = field;
    Set(&f, "sockdiag_sysctl", l, v);
  };
  sysctl("net.ipv4.ip_local_port_range", 32768, "low");
  sysctl("net.ipv4.ip_local_port_range", 60999, "high");
  sysctl("net.ipv4.tcp_tw_reuse", 2);
  sysctl("net.ipv4.tcp_timestamps", 1);
  sysctl("net.ipv4.tcp_fin_timeout", 60);
  sysctl("net.ipv4.tcp_max_tw_buckets", 131072);
  sysctl("net.core.somaxconn", 4096);
  sysctl("net.netfilter.nf_conntrack_max", 262144);
  Set(&f, "sockdiag_ephemeral_ports_reserved", {}, 0);
  Set(&f, "sockdiag_ephemeral_ports_usable", {}, 28232);
  Set(&f, "sockdiag_ephemeral_port_utilization_max", {}, 0.0004);
  Set(&f, "sockdiag_destinations", {}, 1);
  Set(&f, "sockdiag_destinations_dropped", {}, 0);
  const LabelMap dest = {{"family", "ipv4"},
                         {"local_address", "10.0.0.1"},
                         {"remote_address", "10.0.0.5"},
                         {"remote_port", "3306"}};
  Set(&f, "sockdiag_destination_ephemeral_ports", dest, 10);
  Set(&f, "sockdiag_destination_ephemeral_port_utilization", dest, 10.0 / 28232);
  Set(&f, "sockdiag_destination_closes_per_second", dest, 0);
  Set(&f, "sockdiag_destination_connection_growth_per_second", dest, 0);
  Set(&f, "sockdiag_destination_ephemeral_port_exhaustion_seconds", dest, 3600);
  Set(&f, "sockdiag_destination_ephemeral_port_steady_utilization", dest, 10.0 / 28232);
  Set(&f, "sockdiag_ephemeral_port_exhaustion_seconds_min", {}, 3600);
  Set(&f, "sockdiag_ephemeral_port_steady_utilization_max", {}, 10.0 / 28232);
  Set(&f, "sockdiag_tcp_port_sockets",
      {{"direction", "outbound"}, {"port", "3306"}, {"state", "established"}}, 10);
  Set(&f, "sockdiag_tcp_port_sockets",
      {{"direction", "inbound"}, {"port", "8080"}, {"state", "established"}}, 10);
  Set(&f, "sockdiag_tcp_port_sockets",
      {{"direction", "inbound"}, {"port", "8080"}, {"state", "listen"}}, 1);
  Set(&f, "sockdiag_tcp_listen_queue_length", {{"address", "0.0.0.0"}, {"port", "8080"}}, 0);
  Set(&f, "sockdiag_tcp_listen_queue_limit", {{"address", "0.0.0.0"}, {"port", "8080"}}, 4096);
  const auto counter = prometheus::MetricType::Counter;
  for (const char* c :
       {"sockdiag_tcp_active_opens_total", "sockdiag_tcp_passive_opens_total",
        "sockdiag_tcp_time_wait_reused_total", "sockdiag_tcp_time_wait_overflows_total",
        "sockdiag_tcp_listen_overflows_total", "sockdiag_conntrack_insert_failed_total",
        "sockdiag_conntrack_drop_total", "sockdiag_conntrack_early_drop_total"}) {
    Set(&f, c, {}, 0, counter);
  }
  Set(&f, "sockdiag_conntrack_entries", {}, 100);
  Set(&f, "sockdiag_conntrack_entries_limit", {}, 262144);
  Set(&f, "sockdiag_conntrack_snat_port_utilization_max", {}, 0);
  Set(&f, "sockdiag_conntrack_table_entries", {{"protocol", "tcp"}, {"state", "time_wait"}}, 0);
  for (const char* c : {"sockets", "sysctl", "netstat", "ports", "conntrack", "conntrack_table"}) {
    Set(&f, "sockdiag_collector_success", {{"collector", c}}, 1);
  }
  return f;
}

struct Scenario {
  MetricFamilies first = Healthy(), last = Healthy();
  bool with_first = true;

  Scenario& Gauge(const std::string& name, const LabelMap& labels, double v) {
    Set(&first, name, labels, v);
    Set(&last, name, labels, v);
    return *this;
  }
  Scenario& Counter(const std::string& name, double before, double after) {
    Set(&first, name, {}, before, prometheus::MetricType::Counter);
    Set(&last, name, {}, after, prometheus::MetricType::Counter);
    return *this;
  }
  Scenario& Sysctl(const std::string& name, double v) {
    return Gauge("sockdiag_sysctl", {{"name", name}}, v);
  }
  Scenario& Drop(const std::string& name, const LabelMap& labels) {
    Remove(&first, name, labels);
    Remove(&last, name, labels);
    return *this;
  }
  // A destination with `held` ports and utilization `util`; the outbound
  // service port gets `time_wait` of them in TIME_WAIT, the rest established.
  Scenario& Destination(const std::string& local, const std::string& remote,
                        const std::string& port, double held, double util, double time_wait) {
    const LabelMap d = {{"family", remote.find(':') == std::string::npos ? "ipv4" : "ipv6"},
                        {"local_address", local},
                        {"remote_address", remote},
                        {"remote_port", port}};
    Gauge("sockdiag_destination_ephemeral_ports", d, held);
    Gauge("sockdiag_destination_ephemeral_port_utilization", d, util);
    Gauge("sockdiag_tcp_port_sockets",
          {{"direction", "outbound"}, {"port", port}, {"state", "time_wait"}}, time_wait);
    Gauge("sockdiag_tcp_port_sockets",
          {{"direction", "outbound"}, {"port", port}, {"state", "established"}}, held - time_wait);
    time_wait_total += time_wait;
    utilization_max = std::max(utilization_max, util);
    Gauge("sockdiag_tcp_sockets", {{"family", "ipv4"}, {"state", "time_wait"}}, time_wait_total);
    Gauge("sockdiag_ephemeral_port_utilization_max", {}, utilization_max);
    return *this;
  }
  double time_wait_total = 0, utilization_max = 0;
  Scenario& Usable(double n) { return Gauge("sockdiag_ephemeral_ports_usable", {}, n); }
  // The ports collector's rates and forecast for a destination; the
  // namespace-wide min and max follow.
  Scenario& Forecast(const std::string& local, const std::string& remote, const std::string& port,
                     double seconds, double closes, double growth, double steady) {
    const LabelMap d = {{"family", remote.find(':') == std::string::npos ? "ipv4" : "ipv6"},
                        {"local_address", local},
                        {"remote_address", remote},
                        {"remote_port", port}};
    Gauge("sockdiag_destination_closes_per_second", d, closes);
    Gauge("sockdiag_destination_connection_growth_per_second", d, growth);
    Gauge("sockdiag_destination_ephemeral_port_exhaustion_seconds", d, seconds);
    Gauge("sockdiag_destination_ephemeral_port_steady_utilization", d, steady);
    exhaustion_min = std::min(exhaustion_min, seconds);
    steady_max = std::max(steady_max, steady);
    Gauge("sockdiag_ephemeral_port_exhaustion_seconds_min", {}, exhaustion_min);
    Gauge("sockdiag_ephemeral_port_steady_utilization_max", {}, steady_max);
    return *this;
  }
  double exhaustion_min = 3600, steady_max = 0;

  DiagnoseReport Analyze() const {
    DiagnoseInput in;
    in.first = with_first ? &first : nullptr;
    in.last = &last;
    in.interval_seconds = 1.0;
    in.target = "current network namespace";
    in.netns_inode = 4026531840;
    return AnalyzeDiagnosis(in);
  }
};

std::vector<const DiagnoseReport::Finding*> FindingsWithId(const DiagnoseReport& r,
                                                           const std::string& id) {
  std::vector<const DiagnoseReport::Finding*> out;
  for (const auto& f : r.findings) {
    if (f.id == id) out.push_back(&f);
  }
  return out;
}

// The one finding with this id (a copy: reports are often temporaries).
DiagnoseReport::Finding Only(const DiagnoseReport& r, const std::string& id) {
  auto all = FindingsWithId(r, id);
  INFO("finding " << id);
  REQUIRE(all.size() == 1);
  return *all[0];
}

bool Contains(const std::string& haystack, const std::string& needle) {
  return haystack.find(needle) != std::string::npos;
}

std::string ReadFile(const std::string& path) {
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// Runs python3 with `script` on `input` (as a file, argv[1]); returns stdout
// and the exit status.
std::pair<std::string, int> Python(const std::string& script, const std::string& input) {
  char path[] = "/tmp/sockdiag-diagnose-json-XXXXXX";
  const int fd = mkstemp(path);
  REQUIRE(fd >= 0);
  REQUIRE(write(fd, input.data(), input.size()) == static_cast<ssize_t>(input.size()));
  close(fd);
  char script_path[] = "/tmp/sockdiag-diagnose-py-XXXXXX";
  const int sfd = mkstemp(script_path);
  REQUIRE(sfd >= 0);
  REQUIRE(write(sfd, script.data(), script.size()) == static_cast<ssize_t>(script.size()));
  close(sfd);
  const std::string cmd = std::string("python3 ") + script_path + " " + path;
  FILE* p = popen(cmd.c_str(), "r");
  REQUIRE(p != nullptr);
  std::string out;
  char buf[4096];
  size_t n;
  while ((n = fread(buf, 1, sizeof buf, p)) > 0) out.append(buf, n);
  const int status = pclose(p);
  unlink(path);
  unlink(script_path);
  return {out, WIFEXITED(status) ? WEXITSTATUS(status) : -1};
}

}  // namespace

TEST_CASE("diagnose: a healthy namespace has no finding and exit status 0", "[diagnose]") {
  Scenario s;
  auto r = s.Analyze();
  CHECK(r.findings.empty());
  CHECK(DiagnosisExitStatus(r) == 0);
  CHECK(r.sockets.tcp_total == 21);
  CHECK(r.time_wait_reuse == "loopback_only");
  CHECK(r.tcp_tw_recycle == "absent");
  CHECK(r.conntrack.available);
  REQUIRE(r.destinations.size() == 1);
  CHECK(r.destinations[0].RemoteText() == "10.0.0.5:3306");
  CHECK_FALSE(r.destinations[0].time_wait_reusable);  // tw_reuse=2 and not loopback.
  const std::string text = RenderDiagnosisText(r);
  CHECK(Contains(text, "Healthy: no finding crosses a threshold (exit status 0)."));
  CHECK(Contains(text, "FINDINGS\n  none"));
}

TEST_CASE("diagnose: port exhaustion fires above 0.7 and turns critical above 0.9", "[diagnose]") {
  const double usable = 28232;
  auto at = [&](double util) {
    Scenario s;
    // All held ports in TIME_WAIT, tcp_tw_reuse=0: held = blocking.
    s.Sysctl("net.ipv4.tcp_tw_reuse", 0)
        .Destination("10.0.0.1", "10.0.0.5", "3306", util * usable, util, util * usable);
    return s.Analyze();
  };
  CHECK(FindingsWithId(at(0.7), "ephemeral_ports_exhausting").empty());
  CHECK(DiagnosisExitStatus(at(0.7)) == 0);

  auto warn = at(0.71);
  auto f = Only(warn, "ephemeral_ports_exhausting");
  CHECK(f.severity == Severity::kWarning);
  CHECK(f.threshold == 0.7);
  CHECK(f.subject == "10.0.0.1 -> 10.0.0.5:3306");
  CHECK(DiagnosisExitStatus(warn) == 1);

  CHECK(Only(at(0.9), "ephemeral_ports_exhausting").severity == Severity::kWarning);
  auto crit = at(0.94);
  f = Only(crit, "ephemeral_ports_exhausting");
  CHECK(f.severity == Severity::kCritical);
  CHECK(f.threshold == 0.9);
  // 0.94 * 28232 = 26538 TIME_WAIT: ~442 closes/s.
  CHECK(Contains(f.message,
                 "94% of usable ports toward 10.0.0.5:3306 (from 10.0.0.1) are held, 100% in "
                 "TIME_WAIT: connections to it are opened and closed ~442/s"));
  CHECK(Contains(f.message, "pooling / keep-alive"));
  CHECK(Contains(f.message, "tcp_tw_reuse=0"));
  CHECK(Contains(f.message, "cannot assign requested address"));
  REQUIRE(crit.destinations.size() == 1);
  CHECK(crit.destinations[0].time_wait_ports == 26538u);
  CHECK(crit.destinations[0].close_rate.value() == Approx(26538.0 / 60));
}

TEST_CASE("diagnose: TIME_WAIT share of a destination comes from its outbound service port",
          "[diagnose]") {
  Scenario s;
  s.Usable(500).Sysctl("net.ipv4.tcp_tw_reuse", 0);
  // 400 held, 380 of the port's sockets in TIME_WAIT: 95%.
  s.Destination("10.0.0.1", "10.0.0.5", "3306", 400, 0.8, 380);
  auto r = s.Analyze();
  const auto f = Only(r, "ephemeral_ports_exhausting");
  CHECK(Contains(
      f.message,
      "80% of usable ports toward 10.0.0.5:3306 (from 10.0.0.1) are held, 95% in TIME_WAIT"));
  CHECK(Contains(f.message, "~6.3/s"));  // 380 / 60

  SECTION("mostly ESTABLISHED: the pool is too large, not churn") {
    Scenario e;
    e.Usable(500).Sysctl("net.ipv4.tcp_tw_reuse", 0);
    e.Destination("10.0.0.1", "10.0.0.5", "3306", 400, 0.8, 40);
    const auto g = Only(e.Analyze(), "ephemeral_ports_exhausting");
    CHECK(Contains(g.message, "90% not in TIME_WAIT"));
    CHECK(Contains(g.message, "cap its pool"));
  }
}

TEST_CASE("diagnose: a destination outside the top-K still fires from the max", "[diagnose]") {
  Scenario s;
  s.Gauge("sockdiag_ephemeral_port_utilization_max", {}, 0.7);
  CHECK(FindingsWithId(s.Analyze(), "ephemeral_ports_exhausting").empty());
  s.Gauge("sockdiag_ephemeral_port_utilization_max", {}, 0.95);
  const auto f = Only(s.Analyze(), "ephemeral_ports_exhausting");
  CHECK(f.severity == Severity::kCritical);
  CHECK(Contains(f.message, "--ports.top-destinations"));
}

TEST_CASE("diagnose: the exhaustion forecast fires below 300 s, critical below 60 s",
          "[diagnose]") {
  auto at = [](double seconds) {
    Scenario s;
    s.Usable(3000).Sysctl("net.ipv4.tcp_tw_reuse", 0);
    s.Destination("10.0.0.1", "10.0.0.5", "3306", 1500, 0.5, 1500);
    s.Forecast("10.0.0.1", "10.0.0.5", "3306", seconds, 75, 0, 1.5);
    return s.Analyze();
  };
  CHECK(FindingsWithId(at(300), "ephemeral_ports_exhaustion_forecast").empty());
  CHECK(DiagnosisExitStatus(at(300)) == 0);
  auto f = Only(at(299), "ephemeral_ports_exhaustion_forecast");
  CHECK(f.severity == Severity::kWarning);
  CHECK(f.threshold == 300);
  CHECK(f.value == 299);
  CHECK(f.subject == "10.0.0.1 -> 10.0.0.5:3306");
  CHECK(DiagnosisExitStatus(at(299)) == 1);
  CHECK(Only(at(60), "ephemeral_ports_exhaustion_forecast").severity == Severity::kWarning);
  const auto r = at(40);
  f = Only(r, "ephemeral_ports_exhaustion_forecast");
  CHECK(f.severity == Severity::kCritical);
  CHECK(f.threshold == 60);
  CHECK(Contains(f.message,
                 "At today's rate, ports toward 10.0.0.5:3306 (from 10.0.0.1) run out in ~40 s "
                 "(75 closes/s, 60 s TIME_WAIT, no reuse)."));
  CHECK(Contains(f.message, "pooling / keep-alive"));
  CHECK(Contains(f.message, "needs 150% of the usable ports"));
  REQUIRE(r.destinations.size() == 1);
  CHECK(r.destinations[0].exhaustion_seconds == 40);
  CHECK(r.destinations[0].closes_per_second == 75);
  CHECK(r.ports.exhaustion_seconds_min == 40);
  CHECK(r.ports.steady_utilization_max == 1.5);
  const std::string text = RenderDiagnosisText(r);
  CHECK(Contains(text, "TIME TO EXHAUSTION AT TODAY'S RATES"));
  CHECK(Contains(text, "  10.0.0.5:3306                        ~40 s        75         0    150%"));
  CHECK(Contains(text, "Soonest over every destination: ~40 s; worst steady state 150%"));
  CHECK(Contains(Only(at(0), "ephemeral_ports_exhaustion_forecast").message,
                 "have run out: connect() to it fails now"));
  CHECK(Contains(RenderDiagnosisText(at(3600)), "over an hour"));
  CHECK(Contains(Only(at(200), "ephemeral_ports_exhaustion_forecast").message, "in ~3 min"));

  SECTION("a leak: growth of the connections held") {
    Scenario s;
    s.Usable(3000).Destination("10.0.0.1", "10.0.0.5", "3306", 1000, 0.33, 0);
    s.Forecast("10.0.0.1", "10.0.0.5", "3306", 2000 / 7.2, 0, 7.2, 0.33);
    const auto g = Only(s.Analyze(), "ephemeral_ports_exhaustion_forecast");
    CHECK(g.severity == Severity::kWarning);
    CHECK(Contains(g.message, "run out in ~5 min (+7.2 connections held/s)."));
    CHECK(Contains(g.message, "a leak (connections never closed) or a pool without a cap"));
  }
  SECTION("outside the listed destinations, from the min") {
    Scenario s;
    s.Gauge("sockdiag_ephemeral_port_exhaustion_seconds_min", {}, 30);
    const auto g = Only(s.Analyze(), "ephemeral_ports_exhaustion_forecast");
    CHECK(g.severity == Severity::kCritical);
    CHECK(Contains(g.message, "run out in ~30 s"));
    CHECK(Contains(g.message, "--ports.top-destinations"));
  }
}

TEST_CASE("diagnose: TIME_WAIT reuse is judged as the ports collector does", "[diagnose]") {
  Scenario s;
  s.Usable(500);
  SECTION("tcp_tw_reuse=2 reuses toward loopback only") {
    s.Destination("127.0.0.1", "127.0.0.2", "3306", 100, 0.02, 90);
    s.Destination("10.0.0.1", "10.0.0.5", "5432", 50, 0.1, 0);
    auto r = s.Analyze();
    REQUIRE(r.destinations.size() == 3);
    for (const auto& d : r.destinations) {
      INFO(d.RemoteText());
      CHECK(d.time_wait_reusable == (d.remote_address == "127.0.0.2"));
    }
    CHECK(r.time_wait_reuse == "loopback_only");
  }
  SECTION("reusable TIME_WAIT is exactly held minus blocking") {
    s.Sysctl("net.ipv4.tcp_tw_reuse", 1);
    s.Destination("10.0.0.1", "10.0.0.5", "3306", 400, 0.2, 0);  // Port share says 0.
    auto r = s.Analyze();
    CHECK(r.time_wait_reuse == "outbound");
    REQUIRE(r.destinations[0].remote_address == "10.0.0.5");
    CHECK(r.destinations[0].time_wait_reusable);
    CHECK(r.destinations[0].time_wait_ports == 300u);  // 400 - 0.2 * 500
  }
  SECTION("timestamps off disable reuse") {
    s.Sysctl("net.ipv4.tcp_tw_reuse", 1).Sysctl("net.ipv4.tcp_timestamps", 0);
    s.Destination("127.0.0.1", "127.0.0.2", "3306", 100, 0.2, 100);
    auto r = s.Analyze();
    CHECK(r.time_wait_reuse == "no");
    CHECK_FALSE(r.destinations[0].time_wait_reusable);
  }
}

TEST_CASE("diagnose: churn hidden by tcp_tw_reuse fires above 0.7 of the ports held",
          "[diagnose]") {
  auto at = [](double held) {
    Scenario s;
    s.Usable(500).Sysctl("net.ipv4.tcp_tw_reuse", 1);
    s.Destination("10.0.0.1", "10.0.0.5", "3306", held, 0, held);
    return s.Analyze();
  };
  CHECK(FindingsWithId(at(350), "time_wait_churn").empty());  // 0.70 exactly
  CHECK(DiagnosisExitStatus(at(350)) == 0);
  auto r = at(400);
  const auto f = Only(r, "time_wait_churn");
  CHECK(f.severity == Severity::kWarning);
  CHECK(f.value == Approx(0.8));
  CHECK(Contains(f.message,
                 "TIME_WAIT reuse is possible toward 10.0.0.5:3306 (tcp_tw_reuse=1, "
                 "tcp_timestamps=1)"));
  CHECK(Contains(f.message, "yet the churn continues"));
  CHECK(Contains(f.message, "~6.7 connections/s"));
  CHECK(FindingsWithId(r, "ephemeral_ports_exhausting").empty());
  CHECK(DiagnosisExitStatus(r) == 1);
}

TEST_CASE("diagnose: CLOSE_WAIT is a leak above 100 sockets", "[diagnose]") {
  auto with = [](double n, double before) {
    Scenario s;
    s.Gauge("sockdiag_tcp_sockets", {{"family", "ipv4"}, {"state", "close_wait"}}, n);
    Set(&s.first, "sockdiag_tcp_sockets", {{"family", "ipv4"}, {"state", "close_wait"}}, before);
    s.Gauge("sockdiag_tcp_port_sockets",
            {{"direction", "inbound"}, {"port", "8080"}, {"state", "close_wait"}}, n - 5);
    s.Gauge("sockdiag_tcp_port_sockets",
            {{"direction", "outbound"}, {"port", "6379"}, {"state", "close_wait"}}, 5);
    return s.Analyze();
  };
  auto below = with(100, 100);
  CHECK(FindingsWithId(below, "close_wait_leak").empty());
  CHECK(Only(below, "close_wait_present").severity == Severity::kInfo);
  CHECK(DiagnosisExitStatus(below) == 0);

  auto leak = with(101, 90);
  const auto f = Only(leak, "close_wait_leak");
  CHECK(f.severity == Severity::kWarning);
  CHECK(f.subject == "inbound :8080");
  CHECK(Contains(f.message, "never called close()"));
  CHECK(Contains(f.message, "not a kernel setting"));
  CHECK(Contains(f.message, "Most are inbound on port 8080 (96"));
  CHECK(Contains(f.message, "It grew by 11 in 1.0 s."));
  CHECK(DiagnosisExitStatus(leak) == 1);
  REQUIRE(leak.close_wait.size() == 2);
  CHECK(leak.close_wait[0].port == "8080");
  CHECK(leak.close_wait[1].direction == "outbound");
}

TEST_CASE("diagnose: a full accept queue and listen overflows", "[diagnose]") {
  Scenario s;
  const LabelMap l = {{"address", "127.0.0.1"}, {"port", "9000"}};
  s.Gauge("sockdiag_tcp_listen_queue_limit", l, 4);
  SECTION("length = backlog is not full yet") {
    s.Gauge("sockdiag_tcp_listen_queue_length", l, 4);
    auto r = s.Analyze();
    CHECK(r.findings.empty());
    REQUIRE(r.listen_queues.size() == 1);  // Near full (>= 70%).
    CHECK_FALSE(r.listen_queues[0].full);
  }
  SECTION("length = backlog + 1 is full") {
    s.Gauge("sockdiag_tcp_listen_queue_length", l, 5);
    s.Counter("sockdiag_tcp_listen_overflows_total", 10, 13);
    auto r = s.Analyze();
    const auto f = Only(r, "listen_queue_full");
    CHECK(f.subject == "127.0.0.1:9000");
    CHECK(Contains(f.message, "(5 waiting, backlog 4)"));
    CHECK(Contains(f.message, "3.0 listen overflows/s"));
    CHECK(FindingsWithId(r, "listen_queue_overflowing").empty());
    CHECK(DiagnosisExitStatus(r) == 1);
  }
  SECTION("overflows during the sample without a full queue in view") {
    s.Counter("sockdiag_tcp_listen_overflows_total", 10, 11);
    CHECK(Only(s.Analyze(), "listen_queue_overflowing").severity == Severity::kWarning);
  }
  SECTION("old overflows only are information") {
    s.Counter("sockdiag_tcp_listen_overflows_total", 10, 10);
    auto r = s.Analyze();
    CHECK(Only(r, "listen_overflows_past").severity == Severity::kInfo);
    CHECK(DiagnosisExitStatus(r) == 0);
  }
  SECTION("below 70% is not listed") {
    s.Gauge("sockdiag_tcp_listen_queue_length", l, 2);
    CHECK(s.Analyze().listen_queues.empty());
  }
}

TEST_CASE("diagnose: TIME_WAIT bucket overflow", "[diagnose]") {
  Scenario s;
  s.Sysctl("net.ipv4.tcp_max_tw_buckets", 1000);
  s.Gauge("sockdiag_tcp_sockets", {{"family", "ipv4"}, {"state", "time_wait"}}, 999);
  CHECK(s.Analyze().findings.empty());
  SECTION("table full") {
    s.Gauge("sockdiag_tcp_sockets", {{"family", "ipv4"}, {"state", "time_wait"}}, 1000);
    const auto f = Only(s.Analyze(), "time_wait_buckets_overflowing");
    CHECK(Contains(f.message, "tcp_max_tw_buckets = 1000"));
    CHECK(Contains(f.message, "connection churn"));
  }
  SECTION("overflow counter rising") {
    s.Counter("sockdiag_tcp_time_wait_overflows_total", 5, 25);
    const auto f = Only(s.Analyze(), "time_wait_buckets_overflowing");
    CHECK(f.value == Approx(20));
  }
  SECTION("a counter reset is not a rate") {
    s.Counter("sockdiag_tcp_time_wait_overflows_total", 25, 5);
    auto r = s.Analyze();
    CHECK(FindingsWithId(r, "time_wait_buckets_overflowing").empty());
    CHECK_FALSE(r.time_wait_overflows_rate.has_value());
  }
  SECTION("one poll only: no rate, no finding from counters") {
    s.Counter("sockdiag_tcp_time_wait_overflows_total", 5, 25);
    s.with_first = false;
    auto r = s.Analyze();
    CHECK(FindingsWithId(r, "time_wait_buckets_overflowing").empty());
    CHECK(r.interval_seconds == 0);
    CHECK(Contains(RenderDiagnosisText(r), "One poll; no rates."));
  }
}

TEST_CASE("diagnose: tcp_tw_recycle verdicts", "[diagnose]") {
  Scenario s;
  CHECK(s.Analyze().tcp_tw_recycle == "absent");
  s.Sysctl("net.ipv4.tcp_tw_recycle", 0);
  auto off = s.Analyze();
  CHECK(off.tcp_tw_recycle == "off");
  CHECK(off.findings.empty());
  s.Sysctl("net.ipv4.tcp_tw_recycle", 1);
  auto on = s.Analyze();
  CHECK(on.tcp_tw_recycle == "on");
  const auto f = Only(on, "tcp_tw_recycle_enabled");
  CHECK(Contains(f.message, "behind NAT"));
  CHECK(Contains(f.message, "4.12"));
}

TEST_CASE("diagnose: fin_timeout is said not to be TIME_WAIT", "[diagnose]") {
  auto r = Scenario().Analyze();
  bool found = false;
  for (const auto& sc : r.sysctls) {
    if (sc.name != "net.ipv4.tcp_fin_timeout") continue;
    found = true;
    CHECK(Contains(sc.verdict, "FIN_WAIT2"));
    CHECK(Contains(sc.verdict, "TIME_WAIT is a fixed 60 s"));
  }
  CHECK(found);
}

TEST_CASE("diagnose: conntrack fill fires above 0.75 and turns critical above 0.9", "[diagnose]") {
  auto at = [](double entries) {
    Scenario s;
    s.Gauge("sockdiag_conntrack_entries_limit", {}, 10000);
    s.Gauge("sockdiag_conntrack_entries", {}, entries);
    s.Gauge("sockdiag_conntrack_table_entries", {{"protocol", "tcp"}, {"state", "time_wait"}},
            3000);
    return s.Analyze();
  };
  CHECK(at(7500).findings.empty());
  const auto f = Only(at(7501), "conntrack_table_filling");
  CHECK(f.severity == Severity::kWarning);
  CHECK(Contains(f.message, "3000 of the entries are TCP TIME_WAIT"));
  CHECK(Only(at(9000), "conntrack_table_filling").severity == Severity::kWarning);
  CHECK(Only(at(9001), "conntrack_table_filling").severity == Severity::kCritical);
}

TEST_CASE("diagnose: conntrack error counters fire when they rise during the sample",
          "[diagnose]") {
  Scenario s;
  SECTION("insert_failed") {
    s.Counter("sockdiag_conntrack_insert_failed_total", 7, 9);
    const auto f = Only(s.Analyze(), "conntrack_insert_failing");
    CHECK(f.severity == Severity::kWarning);
    CHECK(f.value == Approx(2));
  }
  SECTION("drop") {
    s.Counter("sockdiag_conntrack_drop_total", 0, 1);
    CHECK(Only(s.Analyze(), "conntrack_dropping").severity == Severity::kCritical);
  }
  SECTION("early_drop") {
    s.Counter("sockdiag_conntrack_early_drop_total", 0, 1);
    CHECK(Only(s.Analyze(), "conntrack_early_dropping").severity == Severity::kWarning);
  }
  SECTION("past errors only are information") {
    s.Counter("sockdiag_conntrack_insert_failed_total", 7, 7);
    s.Counter("sockdiag_conntrack_drop_total", 3, 3);
    auto r = s.Analyze();
    const auto f = Only(r, "conntrack_errors_past");
    CHECK(f.message ==
          "Conntrack counted insert_failed 7, drop 3 since it was loaded, none during "
          "the sample.");
    CHECK(DiagnosisExitStatus(r) == 0);
  }
}

TEST_CASE("diagnose: SNAT port exhaustion", "[diagnose]") {
  Scenario s;
  s.Gauge("sockdiag_conntrack_snat_port_utilization_max", {}, 0.7);
  CHECK(s.Analyze().findings.empty());
  s.Gauge("sockdiag_conntrack_snat_ports",
          {{"nat_address", "192.0.2.1"},
           {"remote_address", "10.0.0.5"},
           {"remote_port", "443"},
           {"protocol", "tcp"}},
          46000);
  s.Gauge("sockdiag_conntrack_snat_port_utilization_max", {}, 0.71);
  const auto f = Only(s.Analyze(), "snat_ports_exhausting");
  CHECK(f.severity == Severity::kWarning);
  CHECK(f.subject == "10.0.0.5:443/tcp via 192.0.2.1");
  CHECK(Contains(f.message, "(10.0.0.5:443/tcp via 192.0.2.1: 46000 ports)"));
  s.Gauge("sockdiag_conntrack_snat_port_utilization_max", {}, 0.91);
  CHECK(Only(s.Analyze(), "snat_ports_exhausting").severity == Severity::kCritical);
}

TEST_CASE("diagnose: conntrack not loaded is routine, a failed collector is reported",
          "[diagnose]") {
  Scenario s;
  s.Drop("sockdiag_conntrack_entries", {}).Drop("sockdiag_conntrack_entries_limit", {});
  s.Gauge("sockdiag_collector_success", {{"collector", "conntrack"}}, 0);
  s.Gauge("sockdiag_collector_success", {{"collector", "conntrack_table"}}, 0);
  SECTION("not loaded") {
    s.Drop("sockdiag_sysctl", {{"name", "net.netfilter.nf_conntrack_max"}});
    auto r = s.Analyze();
    CHECK_FALSE(r.conntrack.available);
    CHECK(Contains(r.conntrack.reason, "not loaded"));
    CHECK(r.findings.empty());
  }
  SECTION("loaded but unreadable") {
    auto r = s.Analyze();
    CHECK(Contains(r.conntrack.reason, "CAP_NET_ADMIN"));
    CHECK(FindingsWithId(r, "collector_failed").size() == 2);
    CHECK(DiagnosisExitStatus(r) == 0);
  }
}

TEST_CASE("diagnose: findings are ordered by severity", "[diagnose]") {
  Scenario s;
  s.Usable(500).Sysctl("net.ipv4.tcp_tw_reuse", 0);
  s.Gauge("sockdiag_tcp_sockets", {{"family", "ipv4"}, {"state", "close_wait"}}, 3);
  s.Sysctl("net.ipv4.tcp_tw_recycle", 1);
  s.Destination("10.0.0.1", "10.0.0.5", "3306", 470, 0.94, 470);
  auto r = s.Analyze();
  REQUIRE(r.findings.size() == 3);
  CHECK(r.findings[0].severity == Severity::kCritical);
  CHECK(r.findings[1].severity == Severity::kWarning);
  CHECK(r.findings[2].severity == Severity::kInfo);
}

TEST_CASE("diagnose: the thresholds are those of dashboards/alerts.yaml", "[diagnose]") {
  const std::string alerts = ReadFile(SOCKDIAG_TEST_DATA "/../../dashboards/alerts.yaml");
  REQUIRE_FALSE(alerts.empty());
  const auto& t = kDiagnoseThresholds;
  auto num = [](double v) {
    std::ostringstream o;
    o << v;
    return o.str();
  };
  CHECK(Contains(alerts, "sockdiag_destination_ephemeral_port_utilization > " +
                             num(t.port_utilization_warning)));
  CHECK(Contains(alerts,
                 "sockdiag_ephemeral_port_utilization_max > " + num(t.port_utilization_warning)));
  CHECK(Contains(alerts, "sockdiag_destination_ephemeral_port_utilization > " +
                             num(t.port_utilization_critical)));
  CHECK(Contains(
      alerts, "sockdiag_conntrack_snat_port_utilization_max > " + num(t.snat_utilization_warning)));
  CHECK(Contains(alerts, "sockdiag_conntrack_snat_port_utilization_max > " +
                             num(t.snat_utilization_critical)));
  CHECK(Contains(alerts, "max by (job, instance) (sockdiag_conntrack_entries_limit)\n          > " +
                             num(t.conntrack_fill_warning)));
  CHECK(Contains(alerts, "max by (job, instance) (sockdiag_conntrack_entries_limit)\n          > " +
                             num(t.conntrack_fill_critical)));
  CHECK(Contains(alerts,
                 "(sockdiag_tcp_sockets{state=\"close_wait\"}) > " + num(t.close_wait_sockets)));
  for (const char* rate : {"rate(sockdiag_tcp_listen_overflows_total[5m]) > 0",
                           "rate(sockdiag_tcp_time_wait_overflows_total[5m]) > 0",
                           "sockdiag_sysctl{name=\"net.ipv4.tcp_tw_recycle\"} > 0",
                           "rate(sockdiag_conntrack_insert_failed_total[5m]) > 0",
                           "rate(sockdiag_conntrack_drop_total[5m]) > 0",
                           "rate(sockdiag_conntrack_early_drop_total[5m]) > 0"}) {
    INFO(rate);
    CHECK(Contains(alerts, rate));
  }
}

namespace {

// A report where every optional part is present, for the renderers.
DiagnoseReport Busy() {
  Scenario s;
  s.Usable(500).Sysctl("net.ipv4.tcp_tw_reuse", 0).Sysctl("net.ipv4.tcp_tw_recycle", 1);
  s.Destination("127.0.0.1", "127.0.0.2", "3306", 470, 0.94, 470);
  s.Forecast("127.0.0.1", "127.0.0.2", "3306", 3.8, 7.9, 0, 0.95);
  s.Destination("2001:db8:ffff:ffff:ffff:ffff:ffff:1", "2001:db8:ffff:ffff:ffff:ffff:ffff:2", "443",
                10, 0.02, 0);
  s.Forecast("2001:db8:ffff:ffff:ffff:ffff:ffff:1", "2001:db8:ffff:ffff:ffff:ffff:ffff:2", "443",
             3600, 0, -0.5, 0.02);
  s.Gauge("sockdiag_tcp_sockets", {{"family", "ipv4"}, {"state", "close_wait"}}, 150);
  s.Gauge("sockdiag_tcp_port_sockets",
          {{"direction", "inbound"}, {"port", "8080"}, {"state", "close_wait"}}, 150);
  s.Gauge("sockdiag_tcp_listen_queue_length", {{"address", "::"}, {"port", "9000"}}, 5);
  s.Gauge("sockdiag_tcp_listen_queue_limit", {{"address", "::"}, {"port", "9000"}}, 4);
  s.Counter("sockdiag_tcp_listen_overflows_total", 1, 4);
  s.Counter("sockdiag_conntrack_insert_failed_total", 1, 2);
  s.Gauge("sockdiag_conntrack_entries", {}, 250000);
  s.Gauge("sockdiag_conntrack_snat_ports",
          {{"nat_address", "192.0.2.1"},
           {"remote_address", "10.0.0.5"},
           {"remote_port", "443"},
           {"protocol", "tcp"}},
          46000);
  s.Gauge("sockdiag_conntrack_snat_port_utilization_max", {}, 0.71);
  s.Gauge("sockdiag_collector_success", {{"collector", "netstat"}}, 0);
  return s.Analyze();
}

}  // namespace

TEST_CASE("diagnose: the text report fits 80 columns", "[diagnose]") {
  for (const auto& r : {Busy(), Scenario().Analyze()}) {
    const std::string text = RenderDiagnosisText(r);
    std::istringstream in(text);
    std::string line;
    int n = 0;
    while (std::getline(in, line)) {
      ++n;
      INFO(line);
      CHECK(line.size() <= 80);
      CHECK(line.find('\t') == std::string::npos);
    }
    CHECK(n > 20);
  }
  const std::string busy = RenderDiagnosisText(Busy());
  for (const char* part :
       {"SOCKETS", "EPHEMERAL PORTS PER DESTINATION", "SERVICE PORTS", "CLOSE_WAIT BY PORT",
        "LISTEN QUEUES NEAR FULL", "SYSCTLS", "CONNTRACK", "FINDINGS",
        "127.0.0.1 -> 127.0.0.2:3306", "[::]:9000", "FULL", "CRITICAL", "WARNING",
        "Not healthy: 3 critical", "TIME TO EXHAUSTION AT TODAY'S RATES"}) {
    INFO(part);
    CHECK(Contains(busy, part));
  }
}

TEST_CASE("diagnose: the reports of a busy namespace match tests/golden/", "[diagnose][golden]") {
  const DiagnoseReport r = Busy();
  sockdiag::testing::CompareWithGolden(RenderDiagnosisText(r), "diagnose_busy.txt");
  sockdiag::testing::CompareWithGolden(RenderDiagnosisJson(r), "diagnose_busy.json");
}

TEST_CASE("diagnose: JSON is valid and has exactly the documented keys", "[diagnose]") {
  // Key paths of the output: objects by name, array elements as [] (the
  // state maps are documented as maps).
  const std::string flatten = R"PY(
import json, sys
d = json.load(open(sys.argv[1]))
out = set()
def walk(v, p):
    if p and not p.endswith("[]"):
        out.add(p)
    if p in ("sockets.tcp", "service_ports[].states"):
        return
    if isinstance(v, dict):
        for k, x in v.items():
            walk(x, (p + "." if p else "") + k)
    elif isinstance(v, list):
        for x in v:
            walk(x, p + "[]")
walk(d, "")
print("\n".join(sorted(out)))
)PY";
  const std::string json = RenderDiagnosisJson(Busy());
  auto [paths_text, status] = Python(flatten, json);
  REQUIRE(status == 0);
  std::set<std::string> emitted;
  std::istringstream in(paths_text);
  for (std::string line; std::getline(in, line);) emitted.insert(line);
  REQUIRE(emitted.size() > 40);

  // docs/diagnose.md lists every key as "| `path` | type | meaning |".
  const std::string doc = ReadFile(SOCKDIAG_TEST_DATA "/../../docs/diagnose.md");
  REQUIRE_FALSE(doc.empty());
  std::set<std::string> documented, finding_ids;
  std::istringstream din(doc);
  std::string section;
  for (std::string line; std::getline(din, line);) {
    if (line.starts_with("## ")) section = line;
    if (!line.starts_with("| `")) continue;
    const size_t id_end = line.find('`', 3);
    if (section == "## Findings and thresholds" && id_end != std::string::npos) {
      finding_ids.insert(line.substr(3, id_end - 3));
    }
    if (section != "## JSON output") continue;
    const size_t end = line.find('`', 3);
    if (end != std::string::npos) documented.insert(line.substr(3, end - 3));
  }
  for (const auto& p : emitted) {
    INFO("emitted but not documented: " << p);
    CHECK(documented.count(p) == 1);
  }
  for (const auto& p : documented) {
    INFO("documented but not emitted: " << p);
    CHECK(emitted.count(p) == 1);
  }

  for (const auto& f : Busy().findings) {
    INFO("finding id not documented: " << f.id);
    CHECK(finding_ids.count(f.id) == 1);
  }

  // Values survive a real parser.
  const std::string check = R"PY(
import json, sys
d = json.load(open(sys.argv[1]))
assert d["format_version"] == 1
assert d["exit_status"] == 1
assert d["destinations"][0]["remote_port"] == 3306
assert d["destinations"][0]["utilization"] == 0.94
assert d["destinations"][0]["time_wait_reusable"] is False
assert d["tcp_tw_recycle"] == "on"
ids = [f["id"] for f in d["findings"]]
assert "ephemeral_ports_exhausting" in ids and "close_wait_leak" in ids, ids
assert d["findings"][0]["severity"] == "critical"
print("ok")
)PY";
  auto [ok, check_status] = Python(check, json);
  CHECK(check_status == 0);
  CHECK(ok == "ok\n");
}

TEST_CASE("diagnose: JSON escapes strings", "[diagnose]") {
  Scenario s;
  DiagnoseInput in;
  in.last = &s.last;
  in.target = "network namespace /var/run/netns/a\"b\\c\n";
  const std::string json = RenderDiagnosisJson(AnalyzeDiagnosis(in));
  CHECK(Contains(json, R"("target": "network namespace /var/run/netns/a\"b\\c\n")"));
  auto [out, status] = Python(
      "import json,sys; print(json.load(open(sys.argv[1]))['target'].endswith('c\\n'))", json);
  CHECK(status == 0);
  CHECK(out == "True\n");
}

TEST_CASE("diagnose flags", "[diagnose][flags]") {
  Config c;
  DiagnoseOptions o;
  REQUIRE(ParseDiagnoseFlags({"--netns=/var/run/netns/x", "--format", "json", "--interval=500ms",
                              "--no-collector.conntrack_table", "--ports.top-destinations=3"},
                             &c, &o)
              .value() == FlagAction::kRun);
  CHECK(o.netns == "/var/run/netns/x");
  CHECK(o.format == DiagnoseOptions::Format::kJson);
  CHECK(o.interval == std::chrono::milliseconds(500));
  CHECK_FALSE(c.IsEnabled("conntrack_table"));
  CHECK(c.IsEnabled("ports"));
  CHECK(c.ports_top_destinations == 3);

  DiagnoseOptions o2;
  REQUIRE(ParseDiagnoseFlags({"--netns", "1234"}, &c, &o2).ok());
  CHECK(o2.netns == "1234");
  CHECK(ParseDiagnoseFlags({"--help"}, &c, &o2).value() == FlagAction::kHelp);

  const std::vector<std::pair<std::vector<std::string>, std::string>> bad = {
      {{"--format=xml"}, "--format"},
      {{"--format"}, "--format"},
      {{"--netns="}, "--netns"},
      {{"--netns=0"}, "--netns"},
      {{"--netns=99999999999"}, "--netns"},
      {{"--interval=2m"}, "--interval"},
      {{"--interval=fast"}, "--interval"},
      {{"--netns.mode=pods"}, "--netns.mode"},
      {{"extra"}, "extra"},
      {{"--unknown"}, "--unknown"},
  };
  for (const auto& [args, mention] : bad) {
    Config cc;
    DiagnoseOptions oo;
    auto r = ParseDiagnoseFlags(args, &cc, &oo);
    INFO(args[0]);
    REQUIRE_FALSE(r.ok());
    CHECK(Contains(r.status().context(), mention));
    CHECK(r.status().context().find('\n') == std::string::npos);
  }
  CHECK(Contains(DiagnoseUsageText("sockdiag_exporter"), "--netns=PATH|PID"));
}
