// PortModel on synthetic socket sequences (the ports collector on a fixture
// procfs tree: ports_collector_test.cc).

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <cmath>
#include <cstring>
#include <map>
#include <string>

#include "model/port_model.h"
#include "netlink/address.h"
#include "unit/inet_sockets.h"

using namespace sockdiag;
using sockdiag::testing::Addr;
using sockdiag::testing::FamilyOf;
using sockdiag::testing::Listener;
using sockdiag::testing::Tcp;

namespace {

// n sockets in `state` to remote:rport from local, on consecutive local ports.
void AddMany(PortModel& m, int n, uint8_t state, const std::string& local,
             const std::string& remote, uint16_t rport, uint16_t first_port = 40000) {
  for (int i = 0; i < n; ++i) {
    m.Add(Tcp(state, local, static_cast<uint16_t>(first_port + i), remote, rport));
  }
}

PortSettings Settings(int tw_reuse, int timestamps, uint32_t low = 32768, uint32_t high = 60999) {
  PortSettings s;
  s.range_low = low;
  s.range_high = high;
  s.tw_reuse = tw_reuse;
  s.timestamps = timestamps;
  return s;
}

const PortReport::ServicePort* FindService(const PortReport& r, Direction d,
                                           std::optional<uint16_t> port) {
  for (const auto& sp : r.service_ports) {
    if (sp.direction == d && sp.port == port) return &sp;
  }
  return nullptr;
}

uint64_t SumServices(const PortReport& r) {
  uint64_t sum = 0;
  for (const auto& sp : r.service_ports) {
    for (uint64_t c : sp.sockets) sum += c;
  }
  return sum;
}

}  // namespace

TEST_CASE("usable ports are the range minus reserved ports inside it", "[unit][ports]") {
  PortSettings s;
  CHECK(s.UsablePorts() == 28232);  // 32768-60999.
  s.range_low = 40000;
  s.range_high = 40999;
  s.reserved_in_range = 11;
  CHECK(s.UsablePorts() == 989);
  s.reserved_in_range = 1000;
  CHECK(s.UsablePorts() == 0);
  s.range_low = 41000;  // Inverted: nothing usable.
  s.reserved_in_range = 0;
  CHECK(s.UsablePorts() == 0);
  s.range_low = 5;
  s.range_high = 5;
  CHECK(s.UsablePorts() == 1);
}

TEST_CASE("TIME_WAIT reuse for every tw_reuse and timestamps combination", "[unit][ports]") {
  // The kernel's rule (tcp_twsk_unique): timestamps on (1 or 2), and
  // tcp_tw_reuse 1, or 2 toward loopback only.
  struct Row {
    int tw_reuse, timestamps;
    bool loopback, reusable;
  };
  const Row rows[] = {
      {0, 0, false, false}, {0, 0, true, false}, {0, 1, false, false}, {0, 1, true, false},
      {0, 2, false, false}, {0, 2, true, false}, {1, 0, false, false}, {1, 0, true, false},
      {1, 1, false, true},  {1, 1, true, true},  {1, 2, false, true},  {1, 2, true, true},
      {2, 0, false, false}, {2, 0, true, false}, {2, 1, false, false}, {2, 1, true, true},
      {2, 2, false, false}, {2, 2, true, true},
  };
  for (const Row& r : rows) {
    INFO("tw_reuse=" << r.tw_reuse << " timestamps=" << r.timestamps << " loopback=" << r.loopback);
    CHECK(Settings(r.tw_reuse, r.timestamps).TimeWaitReusable(r.loopback) == r.reusable);
  }
}

TEST_CASE("destination utilization follows the capacity model", "[unit][ports]") {
  // Per destination: 10 TIME_WAIT + 5 ESTABLISHED + 1 FIN_WAIT2; range of
  // 1000 ports. Blocking = 16 unless TIME_WAIT is reusable (then 6).
  struct Dest {
    const char* local;
    const char* remote;
    bool loopback;
  };
  const Dest dests[] = {
      {"127.0.0.1", "127.0.0.2", true},
      {"10.0.0.1", "10.0.0.5", false},
      {"::1", "::1", true},
      {"2001:db8::1", "2001:db8::2", false},
      {"::ffff:127.0.0.1", "::ffff:127.0.0.3", true},
      {"127.0.0.1", "10.0.0.9", true},  // The kernel also accepts a loopback source.
  };
  for (int reuse : {0, 1, 2}) {
    for (int ts : {0, 1}) {
      for (const auto& d : dests) {
        PortModel m(PortLimits{});
        m.Begin(Settings(reuse, ts, 40000, 40999));
        AddMany(m, 10, kTcpTimeWait, d.local, d.remote, 3306, 40000);
        AddMany(m, 5, kTcpEstablished, d.local, d.remote, 3306, 40100);
        AddMany(m, 1, kTcpFinWait2, d.local, d.remote, 3306, 40200);
        const PortReport r = m.Report();
        const bool reusable = ts != 0 && (reuse == 1 || (reuse == 2 && d.loopback));
        const uint64_t blocking = reusable ? 6 : 16;
        INFO("tw_reuse=" << reuse << " timestamps=" << ts << " " << d.local << " -> " << d.remote);
        REQUIRE(r.top_destinations.size() == 1);
        const auto& top = r.top_destinations[0];
        CHECK(top.ports == 16);
        CHECK(top.blocking == blocking);
        CHECK(top.utilization == static_cast<double>(blocking) / 1000.0);
        CHECK(r.utilization_max == static_cast<double>(blocking) / 1000.0);
        CHECK(r.destinations == 1);
        CHECK(FormatAddress(top.family, top.local_addr) == d.local);
        CHECK(FormatAddress(top.family, top.remote_addr) == d.remote);
        CHECK(top.remote_port == 3306);
        CHECK(top.family == FamilyOf(d.local));
      }
    }
  }
}

TEST_CASE("top-K orders destinations by ports held and the max covers all of them",
          "[unit][ports]") {
  PortLimits limits;
  limits.top_destinations = 1;
  PortModel m(limits);
  m.Begin(Settings(2, 1, 20000, 29999));  // Usable 10000.
  // A: 1000 reusable TIME_WAIT (loopback, tw_reuse=2); B: 500 ESTABLISHED.
  AddMany(m, 1000, kTcpTimeWait, "127.0.0.1", "127.0.0.2", 3306, 20000);
  AddMany(m, 500, kTcpEstablished, "127.0.0.1", "127.0.0.3", 5432, 21000);
  PortReport r = m.Report();
  REQUIRE(r.top_destinations.size() == 1);
  CHECK(FormatAddress(AF_INET, r.top_destinations[0].remote_addr) == "127.0.0.2");
  CHECK(r.top_destinations[0].ports == 1000);
  CHECK(r.top_destinations[0].utilization == 0);
  CHECK(r.utilization_max == 500.0 / 10000.0);
  CHECK(r.destinations == 2);

  SECTION("with K=2 both are listed, most ports first") {
    PortLimits two;
    two.top_destinations = 2;
    PortModel m2(two);
    m2.Begin(Settings(2, 1, 20000, 29999));
    AddMany(m2, 500, kTcpEstablished, "127.0.0.1", "127.0.0.3", 5432, 21000);
    AddMany(m2, 1000, kTcpTimeWait, "127.0.0.1", "127.0.0.2", 3306, 20000);
    r = m2.Report();
    REQUIRE(r.top_destinations.size() == 2);
    CHECK(r.top_destinations[0].ports == 1000);
    CHECK(r.top_destinations[1].ports == 500);
    CHECK(r.top_destinations[1].utilization == 500.0 / 10000.0);
  }
  SECTION("K=0 lists none but still computes the max") {
    PortLimits none;
    none.top_destinations = 0;
    PortModel m0(none);
    m0.Begin(Settings(2, 1, 20000, 29999));
    AddMany(m0, 500, kTcpEstablished, "127.0.0.1", "127.0.0.3", 5432, 21000);
    r = m0.Report();
    CHECK(r.top_destinations.empty());
    CHECK(r.utilization_max == 500.0 / 10000.0);
    CHECK(r.destinations == 1);
  }
}

TEST_CASE("destinations need an outbound socket on an ephemeral local port", "[unit][ports]") {
  PortModel m(PortLimits{});
  m.Begin(Settings(0, 1, 40000, 40999));
  m.Add(Listener("0.0.0.0", 40500));                                    // Listener in range.
  m.Add(Tcp(kTcpEstablished, "127.0.0.1", 40500, "127.0.0.1", 40001));  // Its accepted socket.
  m.Add(Tcp(kTcpEstablished, "127.0.0.1", 2000, "127.0.0.1", 3306));    // Local port below range.
  m.Add(Tcp(kTcpTimeWait, "127.0.0.1", 40001, "127.0.0.1", 40500));     // The client: counts.
  const PortReport r = m.Report();
  CHECK(r.destinations == 1);
  REQUIRE(r.top_destinations.size() == 1);
  CHECK(r.top_destinations[0].remote_port == 40500);
  CHECK(r.top_destinations[0].ports == 1);
  // Ephemeral sockets: local port in range, listener excluded.
  CHECK(r.ephemeral_sockets[0][kTcpEstablished] == 1);
  CHECK(r.ephemeral_sockets[0][kTcpTimeWait] == 1);
  CHECK(r.ephemeral_sockets[0][kTcpListen] == 0);
}

TEST_CASE("service ports: direction, top-K, other and the exact sum", "[unit][ports]") {
  PortLimits limits;
  limits.top_services = 2;
  PortModel m(limits);
  m.Begin(Settings(2, 1));
  m.Add(Listener("0.0.0.0", 8080));
  m.Add(Listener("::", 8080));
  m.Add(Listener("127.0.0.1", 9090));
  m.Add(Listener("127.0.0.1", 22));
  // Outbound: 4 to :6379 from ephemeral ports (40000+, not listened on).
  AddMany(m, 4, kTcpEstablished, "10.0.0.1", "10.0.0.7", 6379);
  for (int i = 0; i < 6; ++i) {
    m.Add(Tcp(kTcpTimeWait, "10.0.0.1", 8080, "10.0.0.9", static_cast<uint16_t>(50000 + i)));
  }
  m.Add(Tcp(kTcpEstablished, "::1", 8080, "::1", 50100));
  m.Add(Tcp(kTcpEstablished, "127.0.0.1", 9090, "127.0.0.1", 50200));
  m.Add(Tcp(kTcpCloseWait, "127.0.0.1", 22, "127.0.0.1", 50300));
  // Outbound: 3306 x 7, 5432 x 3, 443 x 1.
  // Inbound: server ends on 8080 (server-side TIME_WAIT and established), 9090, 22.
  AddMany(m, 7, kTcpTimeWait, "10.0.0.1", "10.0.0.5", 3306, 41000);
  AddMany(m, 3, kTcpEstablished, "10.0.0.1", "10.0.0.6", 5432, 42000);
  AddMany(m, 1, kTcpSynSent, "10.0.0.1", "10.0.0.8", 443, 43000);
  // Server end whose listener is gone: fixed port 7000 <- ephemeral 45000.
  m.Add(Tcp(kTcpEstablished, "10.0.0.1", 7000, "10.0.0.3", 45000));
  // A fixed local port to a fixed remote port: outbound by the remote port.
  m.Add(Tcp(kTcpEstablished, "10.0.0.1", 1000, "10.0.0.3", 443));
  // UDP and unknown states are not TCP sockets of any state: ignored.
  InetSocket udp = Tcp(kTcpClose, "10.0.0.1", 53, "10.0.0.2", 53);
  udp.protocol = IPPROTO_UDP;
  m.Add(udp);
  InetSocket odd = Tcp(kTcpEstablished, "10.0.0.1", 40000, "10.0.0.2", 80);
  odd.state = 13;
  m.Add(odd);

  const PortReport r = m.Report();
  CHECK(r.tcp_sockets == 4 + 4 + 6 + 1 + 1 + 1 + 7 + 3 + 1 + 1 + 1);
  CHECK(SumServices(r) == r.tcp_sockets);

  // Inbound top-2: 8080 (2 listeners + 6 TW + 1 est = 9), then 9090 (2) and
  // 22 (2) tie: the lower port wins. 7000 (1) and 9090 go to other.
  const auto* in8080 = FindService(r, Direction::kInbound, 8080);
  REQUIRE(in8080 != nullptr);
  CHECK(in8080->sockets[kTcpListen] == 2);
  CHECK(in8080->sockets[kTcpTimeWait] == 6);
  CHECK(in8080->sockets[kTcpEstablished] == 1);
  const auto* in22 = FindService(r, Direction::kInbound, 22);
  REQUIRE(in22 != nullptr);
  CHECK(in22->sockets[kTcpCloseWait] == 1);
  CHECK(FindService(r, Direction::kInbound, 9090) == nullptr);
  const auto* in_other = FindService(r, Direction::kInbound, std::nullopt);
  REQUIRE(in_other != nullptr);
  CHECK(in_other->sockets[kTcpListen] == 1);       // 9090's listener.
  CHECK(in_other->sockets[kTcpEstablished] == 2);  // 9090's and 7000's connections.

  // Outbound top-2: 3306 (7) and 6379 (4); 5432 (3) and 443 (SYN_SENT + the
  // fixed-port connection) go to other.
  const auto* out3306 = FindService(r, Direction::kOutbound, 3306);
  REQUIRE(out3306 != nullptr);
  CHECK(out3306->sockets[kTcpTimeWait] == 7);
  REQUIRE(FindService(r, Direction::kOutbound, 6379) != nullptr);
  CHECK(FindService(r, Direction::kOutbound, 5432) == nullptr);
  CHECK(FindService(r, Direction::kOutbound, 45000) == nullptr);  // Never an ephemeral port.
  const auto* out_other = FindService(r, Direction::kOutbound, std::nullopt);
  REQUIRE(out_other != nullptr);
  CHECK(out_other->sockets[kTcpEstablished] == 3 + 1);
  CHECK(out_other->sockets[kTcpSynSent] == 1);
  CHECK(out_other->sockets[kTcpListen] == 0);
  // Order: inbound top, inbound other, outbound top, outbound other.
  REQUIRE(r.service_ports.size() == 6);
  CHECK(r.service_ports[0].port == 8080);
  CHECK(r.service_ports[1].port == 22);
  CHECK_FALSE(r.service_ports[2].port.has_value());
  CHECK(r.service_ports[3].port == 3306);
  CHECK(r.service_ports[4].port == 6379);
  CHECK_FALSE(r.service_ports[5].port.has_value());

  SECTION("top-services 0 leaves only other, and the sum still holds") {
    PortLimits zero;
    zero.top_services = 0;
    PortModel m0(zero);
    m0.Begin(Settings(2, 1));
    m0.Add(Listener("0.0.0.0", 8080));
    AddMany(m0, 3, kTcpTimeWait, "10.0.0.1", "10.0.0.5", 3306);
    const PortReport r0 = m0.Report();
    REQUIRE(r0.service_ports.size() == 2);
    CHECK(SumServices(r0) == 4);
    CHECK(r0.service_ports[0].sockets[kTcpListen] == 1);
    CHECK(r0.service_ports[1].sockets[kTcpTimeWait] == 3);
  }
}

TEST_CASE("listeners: largest queue first, capped, merged per address and port", "[unit][ports]") {
  PortLimits limits;
  limits.max_listeners = 3;
  PortModel m(limits);
  m.Begin(Settings(2, 1));
  m.Add(Listener("0.0.0.0", 80, 0, 4096));
  m.Add(Listener("127.0.0.1", 3306, 5, 4));
  m.Add(Listener("::", 443, 2, 511));
  m.Add(Listener("::", 443, 1, 511));  // SO_REUSEPORT sibling.
  m.Add(Listener("0.0.0.0", 22, 0, 128));
  m.Add(Listener("::", 22, 0, 128));
  const PortReport r = m.Report();
  REQUIRE(r.listeners.size() == 3);
  CHECK(r.listeners[0].port == 3306);
  CHECK(r.listeners[0].queue_length == 5);
  CHECK(r.listeners[0].queue_limit == 4);
  CHECK(r.listeners[1].port == 443);
  CHECK(FormatAddress(r.listeners[1].family, r.listeners[1].addr) == "::");
  CHECK(r.listeners[1].queue_length == 3);
  CHECK(r.listeners[1].queue_limit == 1022);
  // Ties at 0: IPv4 before IPv6, then address, then port.
  CHECK(FormatAddress(r.listeners[2].family, r.listeners[2].addr) == "0.0.0.0");
  CHECK(r.listeners[2].port == 22);

  PortLimits none;
  none.max_listeners = 0;
  PortModel m0(none);
  m0.Begin(Settings(2, 1));
  m0.Add(Listener("0.0.0.0", 80, 1, 1));
  CHECK(m0.Report().listeners.empty());
}

TEST_CASE("TIME_WAIT expiry buckets are cumulative and inclusive", "[unit][ports]") {
  PortModel m(PortLimits{});
  m.Begin(Settings(2, 1));
  for (uint32_t ms : {0u, 5000u, 5001u, 15000u, 29999u, 30001u, 60000u}) {
    InetSocket s = Tcp(kTcpTimeWait, "10.0.0.1", 40000, "10.0.0.2", 80);
    s.local_port = static_cast<uint16_t>(40000 + ms % 1000);
    s.expires_ms = ms;
    m.Add(s);
  }
  InetSocket est = Tcp(kTcpEstablished, "10.0.0.1", 41000, "10.0.0.2", 80);
  est.expires_ms = 1000;  // A keepalive timer: not TIME_WAIT.
  m.Add(est);
  const PortReport r = m.Report();
  CHECK(r.time_wait_expiring[0] == 2);  // within 5
  CHECK(r.time_wait_expiring[1] == 4);  // within 15
  CHECK(r.time_wait_expiring[2] == 5);  // within 30
  CHECK(r.time_wait_expiring[3] == 7);  // within 60
}

TEST_CASE("the destination cap drops new destinations and counts them", "[unit][ports]") {
  PortLimits limits;
  limits.max_destinations = 3;
  limits.top_destinations = 10;
  PortModel m(limits);
  m.Begin(Settings(0, 1, 20000, 29999));
  // Five destinations, seen in order; the last two are beyond the cap.
  for (int d = 0; d < 5; ++d) {
    const std::string remote = "10.0.1." + std::to_string(d + 1);
    AddMany(m, 10 * (d + 1), kTcpEstablished, "10.0.0.1", remote, 443,
            static_cast<uint16_t>(20000 + 100 * d));
  }
  // More sockets of a tracked destination still count after the cap.
  AddMany(m, 5, kTcpEstablished, "10.0.0.1", "10.0.1.1", 443, 21000);
  PortReport r = m.Report();
  CHECK(r.destinations == 3);
  CHECK(r.destinations_dropped == 2);
  CHECK(r.sockets_dropped == 40 + 50);
  REQUIRE(r.top_destinations.size() == 3);
  CHECK(r.top_destinations[0].ports == 30);
  CHECK(r.top_destinations[1].ports == 20);    // 10.0.1.2
  CHECK(r.top_destinations[2].ports == 15);    // 10.0.1.1: 10 + 5
  CHECK(r.utilization_max == 30.0 / 10000.0);  // Over tracked destinations only.

  SECTION("a new pass starts from nothing") {
    m.Begin(Settings(0, 1, 20000, 29999));
    AddMany(m, 2, kTcpEstablished, "10.0.0.1", "10.0.9.9", 443, 20000);
    r = m.Report();
    CHECK(r.destinations == 1);
    CHECK(r.destinations_dropped == 0);
    CHECK(r.sockets_dropped == 0);
  }
  SECTION("Reset forgets the sockets but keeps the settings") {
    m.Reset();
    r = m.Report();
    CHECK(r.destinations == 0);
    CHECK(r.tcp_sockets == 0);
    CHECK(r.sockets_dropped == 0);
    CHECK(r.usable_ports == 10000);
  }
}

TEST_CASE("a million destinations past a small cap are estimated within 2%", "[unit][ports]") {
  PortLimits limits;
  limits.max_destinations = 1000;
  PortModel m(limits);
  m.Begin(Settings(0, 1, 1024, 65535));
  // 1,001,000 distinct destinations: remote 10.x.y.z, port 443.
  InetSocket s = Tcp(kTcpEstablished, "10.0.0.1", 40000, "10.0.0.0", 443);
  for (uint32_t i = 0; i < 1001000; ++i) {
    const uint32_t addr = htonl(0x0a000000u + i + 1);
    std::memcpy(s.remote_addr.data(), &addr, 4);
    m.Add(s);
  }
  const PortReport r = m.Report();
  CHECK(r.destinations == 1000);
  CHECK(r.sockets_dropped == 1000000);
  CHECK(std::fabs(static_cast<double>(r.destinations_dropped) - 1e6) < 2e4);
}

TEST_CASE("many destinations are counted exactly as the table grows and shrinks", "[unit][ports]") {
  PortLimits limits;
  limits.top_destinations = 3;
  PortModel m(limits);
  InetSocket s = Tcp(kTcpEstablished, "10.0.0.1", 1024, "10.0.0.0", 443);
  // Destination d (remote 11.0.0.0 + d) gets (d % 7) + 1 sockets, added in
  // rounds so that the table grows while counts are spread over it.
  // 60000 destinations take a table of several MiB (the mapped, huge-page
  // path); the passes in between shrink it again.
  for (int n : {60000, 20, 5, 60000, 7}) {
    INFO("destinations: " << n);
    m.Begin(Settings(0, 1, 1024, 65535));
    uint64_t total = 0;
    for (int round = 0; round < 7; ++round) {
      for (int d = 0; d < n; ++d) {
        if (round > d % 7) continue;
        s.local_port = static_cast<uint16_t>(1024 + round);
        const uint32_t addr = htonl(0x0b000000u + static_cast<uint32_t>(d));
        std::memcpy(s.remote_addr.data(), &addr, 4);
        m.Add(s);
        total++;
      }
    }
    const PortReport r = m.Report();
    CHECK(r.destinations == static_cast<uint64_t>(n));
    CHECK(r.tcp_sockets == total);
    REQUIRE(r.top_destinations.size() == std::min<size_t>(3, static_cast<size_t>(n)));
    const uint64_t most = static_cast<uint64_t>(std::min(n, 7));
    CHECK(r.top_destinations[0].ports == most);
    CHECK(r.utilization_max == static_cast<double>(most) / 64512.0);
    if (n >= 21) {
      // Ties on 7 ports: smallest remote address first.
      CHECK(FormatAddress(AF_INET, r.top_destinations[0].remote_addr) == "11.0.0.6");
      CHECK(FormatAddress(AF_INET, r.top_destinations[1].remote_addr) == "11.0.0.13");
      CHECK(FormatAddress(AF_INET, r.top_destinations[2].remote_addr) == "11.0.0.20");
    }
  }
}

TEST_CASE("addresses are formatted as inet_ntop does", "[unit][ports]") {
  CHECK(FormatAddress(AF_INET, Addr("127.0.0.2")) == "127.0.0.2");
  CHECK(FormatAddress(AF_INET6, Addr("::1")) == "::1");
  CHECK(FormatAddress(AF_INET6, Addr("::ffff:127.0.0.1")) == "::ffff:127.0.0.1");
  CHECK(FormatAddress(AF_INET6, Addr("2001:db8::2")) == "2001:db8::2");
  CHECK(IsLoopbackAddress(AF_INET, Addr("127.255.0.1")));
  CHECK_FALSE(IsLoopbackAddress(AF_INET, Addr("10.0.0.1")));
  CHECK(IsLoopbackAddress(AF_INET6, Addr("::1")));
  CHECK(IsLoopbackAddress(AF_INET6, Addr("::ffff:127.0.0.9")));
  CHECK_FALSE(IsLoopbackAddress(AF_INET6, Addr("::ffff:10.0.0.1")));
  CHECK_FALSE(IsLoopbackAddress(AF_INET6, Addr("::2")));
}
