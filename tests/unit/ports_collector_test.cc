// The ports collector on a fixture procfs tree (the model itself:
// ports_test.cc).

#include <prometheus/check_names.h>

#include <catch2/catch.hpp>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <string>

#include "collectors/collectors.h"
#include "model/port_model.h"
#include "unit/inet_sockets.h"

using namespace sockdiag;
using sockdiag::testing::Listener;
using sockdiag::testing::Tcp;

namespace {

// A procfs tree in a temporary directory holding the port sysctls.
class FakeProc {
 public:
  FakeProc() {
    char tmpl[] = "/tmp/sockdiag-ports-test-XXXXXX";
    REQUIRE(mkdtemp(tmpl) != nullptr);
    root_ = tmpl;
    std::filesystem::create_directories(root_ / "sys/net/ipv4");
  }
  ~FakeProc() { std::filesystem::remove_all(root_); }
  void Set(const std::string& name, const std::string& value) {
    std::ofstream(root_ / "sys/net/ipv4" / name) << value << "\n";
  }
  void Remove(const std::string& name) { std::filesystem::remove(root_ / "sys/net/ipv4" / name); }
  std::string root() const { return root_.string(); }

 private:
  std::filesystem::path root_;
};

std::map<std::string, double> Samples(const MetricFamilies& families, const std::string& name) {
  std::map<std::string, double> out;
  for (const auto& f : families) {
    if (f.name != name) continue;
    for (const auto& m : f.metric) {
      std::string key;
      for (const auto& l : m.label) key += l.name + "=" + l.value + ",";
      out[key] = f.type == prometheus::MetricType::Counter ? m.counter.value : m.gauge.value;
    }
  }
  return out;
}

}  // namespace

TEST_CASE("the ports collector reads the sysctls and exports every family", "[unit][ports]") {
  FakeProc proc;
  proc.Set("ip_local_port_range", "40000\t40999");
  proc.Set("ip_local_reserved_ports", "40010-40019,40500,50000");
  proc.Set("tcp_tw_reuse", "0");
  proc.Set("tcp_timestamps", "1");
  Config config;
  config.ports_top_destinations = 1;
  ProcFs procfs(proc.root());
  PollContext ctx{config, procfs, "net", nullptr};
  auto collector = NewPortsCollector(config);
  REQUIRE(collector->Begin(ctx).ok());
  SocketStreamSink* sink = collector->socket_sink();
  REQUIRE(sink != nullptr);
  CHECK_FALSE(collector->wants_udp());
  sink->OnSocket(Listener("127.0.0.2", 3306, 1, 8));
  for (int i = 0; i < 3; ++i) {
    sink->OnSocket(
        Tcp(kTcpTimeWait, "127.0.0.1", static_cast<uint16_t>(40100 + i), "127.0.0.2", 3306));
  }
  sink->OnSocket(Tcp(kTcpEstablished, "::ffff:127.0.0.1", 40200, "::ffff:127.0.0.2", 3306));
  MetricFamilies out;
  REQUIRE(collector->Collect(ctx, &out).ok());

  for (const auto& f : out) {
    INFO(f.name);
    CHECK(prometheus::CheckMetricName(f.name));
    for (const auto& m : f.metric) {
      for (const auto& l : m.label) CHECK(prometheus::CheckLabelName(l.name));
    }
  }
  CHECK(Samples(out, "sockdiag_ephemeral_ports_usable")[""] == 989);
  auto dest = Samples(out, "sockdiag_destination_ephemeral_ports");
  REQUIRE(dest.size() == 1);
  CHECK(dest["family=ipv4,local_address=127.0.0.1,remote_address=127.0.0.2,remote_port=3306,"] ==
        3);
  CHECK(Samples(out, "sockdiag_destination_ephemeral_port_utilization").begin()->second ==
        3.0 / 989.0);
  CHECK(Samples(out, "sockdiag_ephemeral_port_utilization_max")[""] == 3.0 / 989.0);
  CHECK(Samples(out, "sockdiag_destinations")[""] == 2);
  CHECK(Samples(out, "sockdiag_destinations_dropped")[""] == 0);
  CHECK(Samples(out, "sockdiag_destination_sockets_dropped")[""] == 0);
  auto eph = Samples(out, "sockdiag_ephemeral_port_sockets");
  CHECK(eph.size() == 20);  // 2 families x 10 non-listen states.
  CHECK(eph["family=ipv4,state=time_wait,"] == 3);
  CHECK(eph["family=ipv6,state=established,"] == 1);
  auto svc = Samples(out, "sockdiag_tcp_port_sockets");
  CHECK(svc["direction=inbound,port=3306,state=listen,"] == 1);
  CHECK(svc["direction=outbound,port=3306,state=time_wait,"] == 3);
  CHECK(svc["direction=outbound,port=3306,state=established,"] == 1);
  CHECK(svc.count("direction=outbound,port=3306,state=close_wait,") == 0);  // Zero: omitted.
  CHECK(svc.count("direction=inbound,port=other,state=listen,") == 1);
  CHECK(svc.count("direction=outbound,port=other,state=listen,") == 0);
  double sum = 0;
  for (const auto& [k, v] : svc) sum += v;
  CHECK(sum == 5);
  CHECK(Samples(out, "sockdiag_tcp_listen_queue_length")["address=127.0.0.2,port=3306,"] == 1);
  CHECK(Samples(out, "sockdiag_tcp_listen_queue_limit")["address=127.0.0.2,port=3306,"] == 8);
  auto tw = Samples(out, "sockdiag_tcp_time_wait_expiring");
  CHECK(tw["within=5,"] == 0);
  CHECK(tw["within=60,"] == 3);
  // The forecast families: the TIME_WAIT are 15 s old (outside the 10 s
  // window), so nothing closes now and nothing heads for exhaustion.
  const std::string a =
      "family=ipv4,local_address=127.0.0.1,remote_address=127.0.0.2,remote_port=3306,";
  CHECK(Samples(out, "sockdiag_destination_closes_per_second") ==
        std::map<std::string, double>{{a, 0}});
  CHECK(Samples(out, "sockdiag_destination_connection_growth_per_second")[a] == 0);
  CHECK(Samples(out, "sockdiag_destination_ephemeral_port_exhaustion_seconds")[a] == 3600);
  CHECK(Samples(out, "sockdiag_destination_ephemeral_port_steady_utilization")[a] == 0);
  CHECK(Samples(out, "sockdiag_ephemeral_port_exhaustion_seconds_min")[""] == 3600);
  // The IPv6 destination's one ESTABLISHED connection stays.
  CHECK(Samples(out, "sockdiag_ephemeral_port_steady_utilization_max")[""] == 1.0 / 989.0);

  SECTION("no reserved-ports file means nothing reserved") {
    proc.Remove("ip_local_reserved_ports");
    REQUIRE(collector->Begin(ctx).ok());
    MetricFamilies again;
    REQUIRE(collector->Collect(ctx, &again).ok());
    CHECK(Samples(again, "sockdiag_ephemeral_ports_usable")[""] == 1000);
    CHECK(Samples(again, "sockdiag_destinations")[""] == 0);  // Begin forgot the last pass.
  }
  SECTION("tcp_tw_reuse_delay is read when the kernel has it") {
    proc.Set("tcp_tw_reuse", "1");
    proc.Set("tcp_tw_reuse_delay", "20000");  // TIME_WAIT younger than 20 s still block.
    REQUIRE(collector->Begin(ctx).ok());
    for (int i = 0; i < 3; ++i) {
      sink->OnSocket(
          Tcp(kTcpTimeWait, "127.0.0.1", static_cast<uint16_t>(40100 + i), "127.0.0.2", 3306));
    }
    MetricFamilies again;
    REQUIRE(collector->Collect(ctx, &again).ok());
    CHECK(Samples(again, "sockdiag_ephemeral_port_utilization_max")[""] == 3.0 / 989.0);
    proc.Set("tcp_tw_reuse_delay", "-1");
    CHECK_FALSE(collector->Begin(ctx).ok());
  }
  SECTION("a missing or malformed sysctl fails Begin with a clear status") {
    proc.Set("ip_local_port_range", "40999 40000");
    Status s = collector->Begin(ctx);
    CHECK_FALSE(s.ok());
    CHECK(s.ToString().find("ip_local_port_range") != std::string::npos);
    proc.Set("ip_local_port_range", "40000 40999");
    proc.Remove("tcp_timestamps");
    s = collector->Begin(ctx);
    CHECK(s.IsNotFound());
    CHECK(s.ToString().find("tcp_timestamps") != std::string::npos);
  }
}

TEST_CASE("the port model's default limits are the --ports.* flags' defaults", "[unit][ports]") {
  const Config c;
  const PortLimits l;
  CHECK(l.top_destinations == static_cast<size_t>(c.ports_top_destinations));
  CHECK(l.top_services == static_cast<size_t>(c.ports_top_services));
  CHECK(l.max_listeners == static_cast<size_t>(c.ports_max_listeners));
  CHECK(l.max_destinations == static_cast<size_t>(c.ports_max_destinations));
}
