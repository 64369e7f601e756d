// Ephemeral-port pressure, service ports and listen queues against known
// populations in a private namespace (the shapes of field cases 1-4, small).
//
// The harness's own scrapes connect to the exporter on 127.0.0.1:10061 and
// end with RST: a poll may catch one such connection (one more outbound
// destination and one more socket each way on port 10061), so every scrape
// is taken with ScrapeUntil on the exact expected values, then asserted.
// Port ranges used here exclude 10061.

#include <arpa/inet.h>
#include <fcntl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <cerrno>
#include <map>
#include <string>

#include "kernel/kernel_support.h"

using namespace sockdiag::testing;

namespace {

using Labels = std::map<std::string, std::string>;

Labels Dest(const std::string& local, const std::string& remote, const std::string& port,
            const std::string& family = "ipv4") {
  return {{"family", family},
          {"local_address", local},
          {"remote_address", remote},
          {"remote_port", port}};
}

Labels Svc(const std::string& direction, const std::string& port, const std::string& state) {
  return {{"direction", direction}, {"port", port}, {"state", state}};
}

constexpr const char* kDestPorts = "sockdiag_destination_ephemeral_ports";
constexpr const char* kDestUtil = "sockdiag_destination_ephemeral_port_utilization";
constexpr const char* kUtilMax = "sockdiag_ephemeral_port_utilization_max";

// The service-port breakdown accounts for every TCP socket of the poll.
bool SumsMatch(const Scrape& s) {
  return s.Sum("sockdiag_tcp_port_sockets") == s.Sum("sockdiag_tcp_sockets") &&
         s.Sum("sockdiag_tcp_sockets") > 0;
}

// Starts a non-blocking connect() and leaves it in flight.
Fd ConnectNonBlocking(const std::string& host, uint16_t port) {
  Fd fd(socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0));
  REQUIRE(fd.get() >= 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(port);
  REQUIRE(inet_pton(AF_INET, host.c_str(), &a.sin_addr) == 1);
  int rc = connect(fd.get(), reinterpret_cast<sockaddr*>(&a), sizeof(a));
  REQUIRE(rc == -1);
  REQUIRE(errno == EINPROGRESS);
  return fd;
}

}  // namespace

TEST_CASE("client TIME_WAIT churn to one destination under tw_reuse 0 and 2", "[kernel][ports]") {
  EnterFreshNetns();
  WriteSysctl("net.ipv4.ip_local_port_range", "20000 20999");  // 1000 usable.
  WriteSysctl("net.ipv4.tcp_tw_reuse", "0");
  WriteSysctl("net.ipv4.tcp_timestamps", "1");
  Endpoint db{"127.0.0.2", 3306};
  Fd l = Listen(db);
  MakeClientTimeWait(l.get(), db, 50);
  REQUIRE(SsCount("time-wait", "dst 127.0.0.2 dport = :3306") == 50);

  ExporterProcess exporter({"--poll.interval=200ms"});
  REQUIRE(exporter.WaitReady());
  const Labels a = Dest("127.0.0.1", "127.0.0.2", "3306");
  Scrape s = exporter.ScrapeUntil([&](const Scrape& x) {
    return x.Value(kDestPorts, a) == 50 && x.Value("sockdiag_destinations") == 1 &&
           x.Value(kUtilMax) == 50.0 / 1000.0;
  });
  CHECK(s.Value("sockdiag_ephemeral_ports_usable") == 1000);
  CHECK(s.Value(kDestPorts, a) == 50);
  CHECK(s.Value(kDestUtil, a) == 50.0 / 1000.0);
  CHECK(s.Value(kUtilMax) == 50.0 / 1000.0);
  CHECK(s.Value("sockdiag_destinations") == 1);
  CHECK(s.Value("sockdiag_destinations_dropped") == 0);
  CHECK(s.Value("sockdiag_tcp_port_sockets", Svc("outbound", "3306", "time_wait")) == 50);
  CHECK(s.Value("sockdiag_tcp_port_sockets", Svc("inbound", "3306", "listen")) == 1);
  CHECK_FALSE(s.Get("sockdiag_tcp_port_sockets", Svc("inbound", "3306", "time_wait")));
  CHECK(s.Value("sockdiag_ephemeral_port_sockets", {{"family", "ipv4"}, {"state", "time_wait"}}) ==
        50);
  // Fresh TIME_WAIT sockets have close to 60 s left.
  CHECK(s.Value("sockdiag_tcp_time_wait_expiring", {{"within", "30"}}) == 0);
  CHECK(s.Value("sockdiag_tcp_time_wait_expiring", {{"within", "60"}}) == 50);
  CHECK(SumsMatch(s));
  CHECK(s.Value("sockdiag_collector_success", {{"collector", "ports"}}) == 1);

  SECTION("tcp_tw_reuse=2 to loopback: TIME_WAIT no longer blocks") {
    WriteSysctl("net.ipv4.tcp_tw_reuse", "2");
    s = exporter.ScrapeUntil(
        [&](const Scrape& x) { return x.Value(kDestUtil, a) == 0 && x.Value(kUtilMax) == 0; });
    CHECK(s.Value(kDestPorts, a) == 50);  // Still held, just reusable.
    CHECK(s.Value(kDestUtil, a) == 0);
    CHECK(s.Value(kUtilMax) == 0);

    // Without timestamps no TIME_WAIT socket may be reused.
    WriteSysctl("net.ipv4.tcp_timestamps", "0");
    s = exporter.ScrapeUntil(
        [&](const Scrape& x) { return x.Value(kDestUtil, a) == 50.0 / 1000.0; });
    CHECK(s.Value(kDestUtil, a) == 50.0 / 1000.0);
  }
}

TEST_CASE("top-K keeps the destination with most ports while the max comes from another",
          "[kernel][ports]") {
  EnterFreshNetns();
  WriteSysctl("net.ipv4.ip_local_port_range", "20000 29999");  // 10000 usable.
  // No reuse while building A, or connect() could recycle its own TIME_WAIT.
  WriteSysctl("net.ipv4.tcp_tw_reuse", "0");
  Endpoint ep_a{"127.0.0.2", 3306}, ep_b{"127.0.0.3", 5432};
  Fd la = Listen(ep_a), lb = Listen(ep_b);
  MakeClientTimeWait(la.get(), ep_a, 1000);
  auto est = MakeEstablished(lb.get(), ep_b, 500);
  REQUIRE(SsCount("time-wait") == 1000);
  WriteSysctl("net.ipv4.tcp_tw_reuse", "2");

  ExporterProcess exporter(
      {"--poll.interval=200ms", "--ports.top-destinations=1", "--ports.top-services=1"});
  REQUIRE(exporter.WaitReady());
  const Labels a = Dest("127.0.0.1", "127.0.0.2", "3306");
  const Labels b = Dest("127.0.0.1", "127.0.0.3", "5432");
  // A's TIME_WAIT block until they are older than tcp_tw_reuse_delay (1 s).
  Scrape s = exporter.ScrapeUntil([&](const Scrape& x) {
    return x.Value(kDestPorts, a) == 1000 && x.Value("sockdiag_destinations") == 2 &&
           x.Value(kUtilMax) == 500.0 / 10000.0 && x.Value(kDestUtil, a) == 0 &&
           x.Value("sockdiag_tcp_port_sockets", Svc("outbound", "other", "established")) == 500;
  });
  // Only A (most ports held) has series; B's 500 blocking ports set the max.
  CHECK(s.All(kDestPorts).size() == 1);
  CHECK(s.All(kDestUtil).size() == 1);
  CHECK(s.Value(kDestPorts, a) == 1000);
  CHECK(s.Value(kDestUtil, a) == 0);
  CHECK_FALSE(s.Get(kDestPorts, b));
  CHECK(s.Value(kUtilMax) == 500.0 / 10000.0);
  CHECK(s.Value("sockdiag_destinations") == 2);
  // Top-1 service port per direction, the rest in "other".
  CHECK(s.Value("sockdiag_tcp_port_sockets", Svc("outbound", "3306", "time_wait")) == 1000);
  CHECK(s.Value("sockdiag_tcp_port_sockets", Svc("outbound", "other", "established")) == 500);
  CHECK(s.Value("sockdiag_tcp_port_sockets", Svc("inbound", "5432", "established")) == 500);
  CHECK(s.Value("sockdiag_tcp_port_sockets", Svc("inbound", "5432", "listen")) == 1);
  CHECK(s.Value("sockdiag_tcp_port_sockets", Svc("inbound", "other", "listen")) == 2);
  CHECK(SumsMatch(s));

  SECTION("with K=0 no destination has series, the max and count remain") {
    ExporterProcess k0({"--poll.interval=200ms", "--ports.top-destinations=0"}, 10062);
    REQUIRE(k0.WaitReady());
    Scrape z = k0.ScrapeUntil([&](const Scrape& x) {
      return x.Value(kUtilMax) == 500.0 / 10000.0 && x.Value("sockdiag_destinations") == 2;
    });
    CHECK(z.All(kDestPorts).empty());
    CHECK(z.Value(kUtilMax) == 500.0 / 10000.0);
    CHECK(z.Value("sockdiag_destinations") == 2);
  }
}

TEST_CASE("a narrowed port range and reserved ports change usable exactly", "[kernel][ports]") {
  EnterFreshNetns();
  WriteSysctl("net.ipv4.ip_local_port_range", "40000 40999");
  WriteSysctl("net.ipv4.ip_local_reserved_ports", "40010-40019,40500,50000");
  ExporterProcess exporter({"--poll.interval=200ms"});
  REQUIRE(exporter.WaitReady());
  Scrape s = exporter.ScrapeUntil(
      [](const Scrape& x) { return x.Value("sockdiag_ephemeral_ports_usable") == 989; });
  CHECK(s.Value("sockdiag_ephemeral_ports_usable") == 989);  // 1000 - 11 reserved inside.

  WriteSysctl("net.ipv4.ip_local_port_range", "30000 30099");
  WriteSysctl("net.ipv4.ip_local_reserved_ports", "30000-30009");
  s = exporter.ScrapeUntil(
      [](const Scrape& x) { return x.Value("sockdiag_ephemeral_ports_usable") == 90; });
  CHECK(s.Value("sockdiag_ephemeral_ports_usable") == 90);

  // The utilization divides by the narrowed capacity: 9 of 90 ports.
  Endpoint db{"127.0.0.2", 3306};
  Fd l = Listen(db);
  auto est = MakeEstablished(l.get(), db, 9);
  const Labels a = Dest("127.0.0.1", "127.0.0.2", "3306");
  s = exporter.ScrapeUntil([&](const Scrape& x) { return x.Value(kDestUtil, a) == 9.0 / 90.0; });
  CHECK(s.Value(kDestUtil, a) == 9.0 / 90.0);
  CHECK(s.Value(kDestPorts, a) == 9);
}

TEST_CASE("server-side TIME_WAIT on a listening port is inbound for that port", "[kernel][ports]") {
  EnterFreshNetns();
  WriteSysctl("net.ipv4.ip_local_port_range", "20000 20999");
  WriteSysctl("net.ipv4.tcp_tw_reuse", "0");
  Endpoint web{"127.0.0.1", 8080};
  Fd l = Listen(web);
  MakeServerTimeWait(l.get(), web, 7);
  MakeClientTimeWait(l.get(), web, 3);
  REQUIRE(SsCount("time-wait", "sport = :8080") == 7);

  ExporterProcess exporter({"--poll.interval=200ms"});
  REQUIRE(exporter.WaitReady());
  const Labels a = Dest("127.0.0.1", "127.0.0.1", "8080");
  Scrape s = exporter.ScrapeUntil([&](const Scrape& x) {
    return x.Value("sockdiag_tcp_port_sockets", Svc("inbound", "8080", "time_wait")) == 7 &&
           x.Value(kDestPorts, a) == 3 && x.Value("sockdiag_destinations") == 1;
  });
  CHECK(s.Value("sockdiag_tcp_port_sockets", Svc("inbound", "8080", "time_wait")) == 7);
  CHECK(s.Value("sockdiag_tcp_port_sockets", Svc("outbound", "8080", "time_wait")) == 3);
  // Server-side TIME_WAIT holds port 8080, not an ephemeral port.
  CHECK(s.Value(kDestPorts, a) == 3);
  CHECK(s.Value("sockdiag_destinations") == 1);
  CHECK(s.Value("sockdiag_ephemeral_port_sockets", {{"family", "ipv4"}, {"state", "time_wait"}}) ==
        3);
  CHECK(s.Value("sockdiag_tcp_time_wait_expiring", {{"within", "60"}}) == 10);
  CHECK(SumsMatch(s));
}

TEST_CASE("a listener that never accepts reports backlog + 1 and overflows rise",
          "[kernel][ports]") {
  EnterFreshNetns();
  ExporterProcess exporter({"--poll.interval=200ms", "--ports.max-listeners=1"});
  REQUIRE(exporter.WaitReady());
  Scrape before = exporter.ScrapeMetrics();
  const double overflows0 = before.Value("sockdiag_tcp_listen_overflows_total");
  REQUIRE(overflows0 >= 0);

  const int backlog = 3;
  Fd l = Listen({"127.0.0.2", 7000}, backlog);
  std::vector<Fd> clients;
  // The kernel queues backlog + 1 connections before the queue counts as full.
  for (int i = 0; i < backlog + 1; ++i) clients.push_back(Connect({"127.0.0.2", 7000}));
  // The next SYN finds the queue full: dropped, ListenOverflows++.
  Fd extra = ConnectNonBlocking("127.0.0.2", 7000);

  const Labels q = {{"address", "127.0.0.2"}, {"port", "7000"}};
  Scrape s = exporter.ScrapeUntil([&](const Scrape& x) {
    return x.Value("sockdiag_tcp_listen_queue_length", q) == backlog + 1 &&
           x.Value("sockdiag_tcp_listen_overflows_total") > overflows0;
  });
  CHECK(s.Value("sockdiag_tcp_listen_queue_length", q) == backlog + 1);
  CHECK(s.Value("sockdiag_tcp_listen_queue_limit", q) == backlog);
  CHECK(s.Value("sockdiag_tcp_listen_overflows_total") > overflows0);
  // --ports.max-listeners=1: only the longest queue, not the exporter's own.
  CHECK(s.All("sockdiag_tcp_listen_queue_length").size() == 1);
  CHECK(s.All("sockdiag_tcp_listen_queue_limit").size() == 1);
}

TEST_CASE("IPv6 destinations over ::1 and IPv4-mapped addresses", "[kernel][ports]") {
  EnterFreshNetns();
  WriteSysctl("net.ipv4.ip_local_port_range", "20000 20999");  // Also governs IPv6.
  WriteSysctl("net.ipv4.tcp_tw_reuse", "0");
  Endpoint v6{"::1", 3306};
  Fd l6 = Listen(v6);
  MakeClientTimeWait(l6.get(), v6, 20);
  auto est6 = MakeEstablished(l6.get(), v6, 5);
  // An AF_INET6 socket to an IPv4 listener through a mapped address.
  Fd l4 = Listen({"127.0.0.2", 5432});
  auto mapped = MakeEstablished(l4.get(), {"::ffff:127.0.0.2", 5432}, 4);

  ExporterProcess exporter({"--poll.interval=200ms"});
  REQUIRE(exporter.WaitReady());
  const Labels a = Dest("::1", "::1", "3306", "ipv6");
  const Labels m = Dest("::ffff:127.0.0.1", "::ffff:127.0.0.2", "5432", "ipv6");
  Scrape s = exporter.ScrapeUntil([&](const Scrape& x) {
    return x.Value(kDestPorts, a) == 25 && x.Value(kDestPorts, m) == 4 &&
           x.Value("sockdiag_destinations") == 2;
  });
  CHECK(s.Value(kDestPorts, a) == 25);
  CHECK(s.Value(kDestUtil, a) == 25.0 / 1000.0);
  CHECK(s.Value(kDestPorts, m) == 4);
  CHECK(s.Value(kDestUtil, m) == 4.0 / 1000.0);
  CHECK(s.Value(kUtilMax) == 25.0 / 1000.0);
  CHECK(s.Value("sockdiag_ephemeral_port_sockets", {{"family", "ipv6"}, {"state", "time_wait"}}) ==
        20);
  CHECK(s.Value("sockdiag_ephemeral_port_sockets",
                {{"family", "ipv6"}, {"state", "established"}}) == 9);
  CHECK(s.Value("sockdiag_tcp_port_sockets", Svc("inbound", "3306", "established")) == 5);
  CHECK(s.Value("sockdiag_tcp_port_sockets", Svc("outbound", "3306", "time_wait")) == 20);
  CHECK(s.Value("sockdiag_tcp_listen_queue_limit", {{"address", "::1"}, {"port", "3306"}}) == 4096);
  CHECK(SumsMatch(s));

  SECTION("tw_reuse=2 frees the ::1 TIME_WAIT ports") {
    WriteSysctl("net.ipv4.tcp_tw_reuse", "2");
    s = exporter.ScrapeUntil(
        [&](const Scrape& x) { return x.Value(kDestUtil, a) == 5.0 / 1000.0; });
    CHECK(s.Value(kDestUtil, a) == 5.0 / 1000.0);
  }
}
