// --netns.mode=pods against real named namespaces (ip netns add).

#include <fcntl.h>
#include <sched.h>
#include <sys/stat.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <cstdlib>
#include <string>

#include "kernel/kernel_support.h"

using namespace sockdiag::testing;

namespace {

double Tcp(const Scrape& s, const std::string& netns, const std::string& state) {
  return s.Value("sockdiag_tcp_sockets", {{"family", "ipv4"}, {"state", state}, {"netns", netns}});
}

}  // namespace

TEST_CASE("pods mode polls every namespace with its own sockets and sysctls", "[kernel][netns]") {
  EnterFreshNetns();
  NamedNetns a("a"), b("b");
  std::vector<Pair> est;
  std::vector<Fd> cw, listeners;
  a.Run([&] {
    WriteSysctl("net.ipv4.ip_local_port_range", "20000 20999");
    Endpoint ep{"127.0.0.1", 8080};
    listeners.push_back(Listen(ep));
    est = MakeEstablished(listeners.back().get(), ep, 3);
    MakeClientTimeWait(listeners.back().get(), ep, 5);
  });
  b.Run([&] {
    WriteSysctl("net.ipv4.ip_local_port_range", "30000 30499");
    Endpoint ep{"127.0.0.1", 3306};
    listeners.push_back(Listen(ep));
    cw = MakeCloseWait(listeners.back().get(), ep, 2);
  });

  ExporterProcess exporter({"--netns.mode=pods", "--poll.interval=200ms"});
  REQUIRE(exporter.WaitReady());
  Scrape s = exporter.ScrapeUntil([&](const Scrape& x) {
    return Tcp(x, a.inode(), "established") == 6 && Tcp(x, b.inode(), "close_wait") == 2;
  });
  CHECK(Tcp(s, a.inode(), "established") == 6);
  CHECK(Tcp(s, a.inode(), "time_wait") == 5);
  CHECK(Tcp(s, a.inode(), "listen") == 1);
  CHECK(Tcp(s, a.inode(), "close_wait") == 0);
  CHECK(Tcp(s, b.inode(), "close_wait") == 2);
  CHECK(Tcp(s, b.inode(), "fin_wait2") == 2);
  CHECK(Tcp(s, b.inode(), "established") == 0);
  CHECK(s.Value("sockdiag_sysctl", {{"name", "net.ipv4.ip_local_port_range"},
                                     {"field", "low"},
                                     {"netns", a.inode()}}) == 20000);
  CHECK(s.Value("sockdiag_sysctl", {{"name", "net.ipv4.ip_local_port_range"},
                                     {"field", "high"},
                                     {"netns", b.inode()}}) == 30499);
  CHECK(s.Value("sockdiag_collector_success", {{"collector", "sockets"}, {"netns", a.inode()}}) ==
        1);
  // Named namespaces hold no process: their TCP counters come from
  // thread-self/net read inside them.
  CHECK(s.Value("sockdiag_collector_success", {{"collector", "netstat"}, {"netns", b.inode()}}) ==
        1);
  CHECK(s.Value("sockdiag_netns_polled") >= 3);

  SECTION("a namespace deleted while polling disappears and polling goes on") {
    est.clear();
    listeners.clear();
    a.Delete();
    Scrape after = exporter.ScrapeUntil([&](const Scrape& x) {
      return x.All("sockdiag_tcp_sockets").size() > 0 &&
             !x.Get("sockdiag_tcp_sockets", {{"family", "ipv4"}, {"state", "listen"}, {"netns", a.inode()}})
                  .has_value();
    });
    CHECK_FALSE(after.Get("sockdiag_tcp_sockets",
                          {{"family", "ipv4"}, {"state", "listen"}, {"netns", a.inode()}})
                    .has_value());
    CHECK(Tcp(after, b.inode(), "close_wait") == 2);
  }
}

TEST_CASE("pods mode respects --netns.max and counts what it skips", "[kernel][netns]") {
  EnterFreshNetns();
  NamedNetns a("m1"), b("m2");
  ExporterProcess exporter({"--netns.mode=pods", "--netns.max=1", "--poll.interval=200ms"});
  REQUIRE(exporter.WaitReady());
  Scrape s = exporter.ScrapeUntil([](const Scrape& x) { return x.Value("sockdiag_netns_skipped_total") > 0; });
  CHECK(s.Value("sockdiag_netns_polled") == 1);
  CHECK(s.Value("sockdiag_netns_skipped_total") >= 2);
}
