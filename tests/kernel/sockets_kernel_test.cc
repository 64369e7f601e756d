// Socket-state counts against a known population in a private namespace.

#include <catch2/catch.hpp>
#include <chrono>
#include <map>
#include <string>

#include "kernel/kernel_support.h"

using namespace sockdiag::testing;

namespace {

using Expected = std::map<std::pair<std::string, std::string>, double>;  // (family, state)

constexpr const char* kStates[] = {"established", "syn_sent", "syn_recv",   "fin_wait1",
                                   "fin_wait2",   "time_wait", "close",      "close_wait",
                                   "last_ack",    "listen",    "closing"};

// Calls check(family, state, got, want) for every family and state.
template <typename Check>
void ForEachCount(const Scrape& s, const Expected& want, Check check) {
  for (const char* fam : {"ipv4", "ipv6"}) {
    for (const char* st : kStates) {
      auto it = want.find({fam, st});
      const double expect = it == want.end() ? 0 : it->second;
      check(fam, st, s.Value("sockdiag_tcp_sockets", {{"family", fam}, {"state", st}}), expect);
    }
  }
}

bool Matches(const Scrape& s, const Expected& want) {
  bool all = true;
  ForEachCount(s, want, [&](const char*, const char*, double got, double expect) {
    all = all && got == expect;
  });
  return all;
}

void RequireCounts(const Scrape& s, const Expected& want) {
  ForEachCount(s, want, [](const char* fam, const char* st, double got, double expect) {
    INFO("family=" << fam << " state=" << st);
    CHECK(got == expect);
  });
}

}  // namespace

TEST_CASE("exact TCP counts by state and family for a known population", "[kernel][sockets]") {
  EnterFreshNetns();
  Endpoint v4{"127.0.0.1", 8080}, v6{"::1", 8081};
  Fd l4 = Listen(v4), l6 = Listen(v6);
  auto est4 = MakeEstablished(l4.get(), v4, 5);
  auto cw4 = MakeCloseWait(l4.get(), v4, 3);
  MakeClientTimeWait(l4.get(), v4, 4);
  auto est6 = MakeEstablished(l6.get(), v6, 2);
  MakeServerTimeWait(l6.get(), v6, 2);
  MakeClientTimeWait(l6.get(), v6, 1);

  Expected want = {
      {{"ipv4", "established"}, 10},
      {{"ipv4", "close_wait"}, 3},
      {{"ipv4", "fin_wait2"}, 3},  // The clients of the CLOSE_WAIT pairs.
      {{"ipv4", "time_wait"}, 4},
      {{"ipv4", "listen"}, 2},  // Ours and the exporter's.
      {{"ipv6", "established"}, 4},
      {{"ipv6", "time_wait"}, 3},
      {{"ipv6", "listen"}, 1},
  };
  // Cross-check the population with ss, independently of the exporter.
  REQUIRE(SsCount("time-wait") == 7);
  REQUIRE(SsCount("close-wait") == 3);

  ExporterProcess exporter({"--poll.interval=200ms"});
  REQUIRE(exporter.WaitReady());
  Scrape s = exporter.ScrapeUntil([&](const Scrape& x) { return Matches(x, want); });
  RequireCounts(s, want);
  CHECK(s.Value("sockdiag_udp_sockets", {{"family", "ipv4"}}) == 0);
  CHECK(s.Value("sockdiag_collector_success", {{"collector", "sockets"}}) == 1);

  SECTION("closing the CLOSE_WAIT ends moves them out at the next poll") {
    cw4.clear();  // Server closes: CLOSE_WAIT -> LAST_ACK -> gone; clients' FIN_WAIT2 -> TIME_WAIT.
    want[{"ipv4", "close_wait"}] = 0;
    want[{"ipv4", "fin_wait2"}] = 0;
    want[{"ipv4", "time_wait"}] = 7;
    Scrape after = exporter.ScrapeUntil([&](const Scrape& x) { return Matches(x, want); });
    RequireCounts(after, want);
  }
}

TEST_CASE("UDP sockets are counted by family", "[kernel][sockets]") {
  EnterFreshNetns();
  std::vector<Fd> udp;
  for (int i = 0; i < 3; ++i) udp.emplace_back(socket(AF_INET, SOCK_DGRAM, 0));
  for (int i = 0; i < 2; ++i) udp.emplace_back(socket(AF_INET6, SOCK_DGRAM, 0));
  // Unbound UDP sockets are not hashed; bind them to be visible, as real ones are.
  for (auto& fd : udp) {
    sockaddr_storage ss{};
    socklen_t len;
    int family = 0;
    socklen_t flen = sizeof(family);
    getsockopt(fd.get(), SOL_SOCKET, SO_DOMAIN, &family, &flen);
    if (family == AF_INET6) {
      auto* a = reinterpret_cast<sockaddr_in6*>(&ss);
      a->sin6_family = AF_INET6;
      a->sin6_addr = in6addr_loopback;
      len = sizeof(*a);
    } else {
      auto* a = reinterpret_cast<sockaddr_in*>(&ss);
      a->sin_family = AF_INET;
      a->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
      len = sizeof(*a);
    }
    REQUIRE(bind(fd.get(), reinterpret_cast<sockaddr*>(&ss), len) == 0);
  }
  ExporterProcess exporter({"--poll.interval=200ms"});
  REQUIRE(exporter.WaitReady());
  Scrape s = exporter.ScrapeMetrics();
  CHECK(s.Value("sockdiag_udp_sockets", {{"family", "ipv4"}}) == 3);
  CHECK(s.Value("sockdiag_udp_sockets", {{"family", "ipv6"}}) == 2);
}

TEST_CASE("a sysctl changed in the namespace shows at the next poll", "[kernel][sysctl]") {
  EnterFreshNetns();
  WriteSysctl("net.ipv4.tcp_fin_timeout", "17");
  WriteSysctl("net.ipv4.ip_local_port_range", "40000 40999");
  WriteSysctl("net.ipv4.ip_local_reserved_ports", "40010-40019,40500,50000");
  ExporterProcess exporter({"--poll.interval=200ms"});
  REQUIRE(exporter.WaitReady());
  Scrape s = exporter.ScrapeMetrics();
  CHECK(s.Value("sockdiag_sysctl", {{"name", "net.ipv4.tcp_fin_timeout"}}) == 17);
  CHECK(s.Value("sockdiag_sysctl", {{"name", "net.ipv4.ip_local_port_range"}, {"field", "low"}}) ==
        40000);
  CHECK(s.Value("sockdiag_sysctl", {{"name", "net.ipv4.ip_local_port_range"}, {"field", "high"}}) ==
        40999);
  // 40010-40019 and 40500 are inside the range; 50000 is not.
  CHECK(s.Value("sockdiag_ephemeral_ports_reserved") == 11);
  CHECK_FALSE(s.Get("sockdiag_sysctl", {{"name", "net.ipv4.tcp_tw_recycle"}}).has_value());

  WriteSysctl("net.ipv4.tcp_tw_reuse", "0");
  Scrape after = exporter.ScrapeUntil([](const Scrape& x) {
    return x.Value("sockdiag_sysctl", {{"name", "net.ipv4.tcp_tw_reuse"}}) == 0;
  });
  CHECK(after.Value("sockdiag_sysctl", {{"name", "net.ipv4.tcp_tw_reuse"}}) == 0);
  WriteSysctl("net.ipv4.tcp_tw_reuse", "1");
  after = exporter.ScrapeUntil([](const Scrape& x) {
    return x.Value("sockdiag_sysctl", {{"name", "net.ipv4.tcp_tw_reuse"}}) == 1;
  });
  CHECK(after.Value("sockdiag_sysctl", {{"name", "net.ipv4.tcp_tw_reuse"}}) == 1);
}

TEST_CASE("TCP counters follow real connection churn", "[kernel][netstat]") {
  EnterFreshNetns();
  Endpoint ep{"127.0.0.1", 3306};
  Fd l = Listen(ep);
  ExporterProcess exporter({"--poll.interval=200ms"});
  REQUIRE(exporter.WaitReady());
  Scrape before = exporter.ScrapeMetrics();
  const double opens0 = before.Value("sockdiag_tcp_active_opens_total");
  REQUIRE(opens0 >= 0);
  MakeClientTimeWait(l.get(), ep, 25);
  // Our scrapes add active opens too; the population adds exactly 25 more
  // than the scrapes do, which all go to port 10061 (not 3306) - so bound it.
  Scrape after = exporter.ScrapeUntil([&](const Scrape& x) {
    return x.Value("sockdiag_tcp_active_opens_total") >= opens0 + 25 &&
           x.Value("sockdiag_tcp_passive_opens_total") >= 25;
  });
  CHECK(after.Value("sockdiag_tcp_active_opens_total") >= opens0 + 25);
  CHECK(after.Value("sockdiag_tcp_time_wait_closed_total") >= 0);
  CHECK(after.Value("sockdiag_collector_success", {{"collector", "netstat"}}) == 1);
}

TEST_CASE("a scrape during a poll of 100k sockets returns at once with the last snapshot",
          "[kernel][sockets][slow]") {
  EnterFreshNetns();
  WriteSysctl("net.ipv4.ip_local_port_range", "1024 65535");
  WriteSysctl("net.ipv4.tcp_max_tw_buckets", "262144");
  // No TIME_WAIT reuse, or connect() would recycle ports and keep fewer.
  WriteSysctl("net.ipv4.tcp_tw_reuse", "0");
  // Start first: its port 10061 lies inside the widened range.
  ExporterProcess exporter({"--poll.interval=100ms"});
  REQUIRE(exporter.WaitReady());
  // 100k TIME_WAIT sockets hold no file descriptors: four destinations of
  // 25k ports each, so connect() never searches a nearly full range.
  std::vector<Fd> listeners;
  for (const char* host : {"127.0.0.2", "127.0.0.3", "127.0.0.4", "127.0.0.5"}) {
    Endpoint ep{host, 9000};
    listeners.push_back(Listen(ep, 65535));
    MakeClientTimeWait(listeners.back().get(), ep, 25000);
  }
  Scrape s = exporter.ScrapeUntil([](const Scrape& x) {
    return x.Value("sockdiag_tcp_sockets", {{"family", "ipv4"}, {"state", "time_wait"}}) == 100000;
  });
  REQUIRE(s.Value("sockdiag_tcp_sockets", {{"family", "ipv4"}, {"state", "time_wait"}}) == 100000);
  const double poll_seconds = s.Value("sockdiag_poll_duration_seconds");
  INFO("poll took " << poll_seconds << " s");
  REQUIRE(poll_seconds > 0);
  // With a 100 ms interval the poller is busy most of the time; every scrape
  // must still answer faster than one poll takes, i.e. it never waits for one.
  double worst = 0;
  for (int i = 0; i < 40; ++i) {
    auto t0 = std::chrono::steady_clock::now();
    HttpResponse r = HttpGet(exporter.port(), "/metrics");
    double took = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    REQUIRE(r.status == 200);
    worst = std::max(worst, took);
  }
  INFO("slowest scrape " << worst << " s");
  CHECK(worst < poll_seconds);
}
