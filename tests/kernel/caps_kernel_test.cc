// Least privilege, for real: the exporter run with a reduced capability
// bounding set (setpriv), or as an unprivileged user, reports what it holds
// and what its features need, in the log and in sockdiag_capability.

#include <catch2/catch.hpp>
#include <string>

#include "kernel/kernel_support.h"
#include "kernel/web_support.h"

using namespace sockdiag::testing;

namespace {

// Runs as root with only `caps` (e.g. "+net_admin") in the bounding set, so
// exec gives the exporter exactly those.
std::vector<std::string> Bounded(const std::string& caps) {
  return {"setpriv", "--bounding-set=-all" + caps, "--"};
}

// Flags with the ctnetlink collectors (on by default, CAP_NET_ADMIN) off.
std::vector<std::string> NoConntrack(std::vector<std::string> flags) {
  flags.push_back("--no-collector.conntrack");
  flags.push_back("--no-collector.conntrack_table");
  return flags;
}

bool Has(const std::string& haystack, const std::string& needle) {
  return haystack.find(needle) != std::string::npos;
}

}  // namespace

TEST_CASE("caps: sockets mode needs no capability and works without any", "[kernel][caps]") {
  EnterFreshNetns();
  Fd listener = Listen({"127.0.0.1", 7000});
  ExporterProcess exporter(NoConntrack({"--poll.interval=200ms"}), Launch{Bounded("")});
  REQUIRE(exporter.WaitReady());
  Scrape s = exporter.ScrapeMetrics();
  CHECK(s.Value("sockdiag_collector_success", {{"collector", "sockets"}}) == 1);
  CHECK(s.Value("sockdiag_collector_success", {{"collector", "sysctl"}}) == 1);
  CHECK(s.Value("sockdiag_collector_success", {{"collector", "netstat"}}) == 1);
  CHECK(s.Value("sockdiag_tcp_sockets", {{"family", "ipv4"}, {"state", "listen"}}) == 2);
  CHECK(s.All("sockdiag_capability").empty());
  const std::string log = exporter.Stderr();
  INFO(log);
  CHECK(Has(log, "msg=capabilities held=none needed=none"));
  CHECK_FALSE(Has(log, "level=warn"));
}

TEST_CASE("caps: an unprivileged user with no capability serves sockets metrics",
          "[kernel][caps]") {
  EnterFreshNetns();
  ExporterProcess exporter(NoConntrack({"--poll.interval=200ms"}),
                           Launch{{"setpriv", "--reuid=65534", "--regid=65534", "--clear-groups",
                                   "--inh-caps=-all", "--bounding-set=-all", "--"}});
  REQUIRE(exporter.WaitReady());
  Scrape s = exporter.ScrapeMetrics();
  CHECK(s.Value("sockdiag_collector_success", {{"collector", "sockets"}}) == 1);
  CHECK(s.Value("sockdiag_tcp_sockets", {{"family", "ipv4"}, {"state", "listen"}}) == 1);
  CHECK(Has(exporter.Stderr(), "held=none needed=none"));
}

TEST_CASE("caps: pods mode without SYS_ADMIN and SYS_PTRACE warns and reports them missing",
          "[kernel][caps]") {
  EnterFreshNetns();
  ExporterProcess exporter(NoConntrack({"--netns.mode=pods", "--poll.interval=200ms"}),
                           Launch{Bounded(",+net_admin")});
  REQUIRE(exporter.WaitReady());
  Scrape s = exporter.ScrapeMetrics();
  CHECK(s.Value("sockdiag_capability", {{"capability", "CAP_SYS_ADMIN"}, {"needed", "true"}}) == 0);
  CHECK(s.Value("sockdiag_capability", {{"capability", "CAP_SYS_PTRACE"}, {"needed", "true"}}) ==
        0);
  // Held but needed by nothing enabled here.
  CHECK(s.Value("sockdiag_capability", {{"capability", "CAP_NET_ADMIN"}, {"needed", "false"}}) ==
        1);
  CHECK(s.All("sockdiag_capability").size() == 3);
  const std::string log = exporter.Stderr();
  INFO(log);
  CHECK(Has(log,
            "held=CAP_NET_ADMIN needed=\"CAP_SYS_PTRACE(netns.mode=pods),CAP_SYS_ADMIN("
            "netns.mode=pods)\""));
  CHECK(Has(log,
            "level=warn msg=\"missing capability: the features needing it will fail\" "
            "capability=CAP_SYS_ADMIN features=\"netns.mode=pods\""));
  CHECK(Has(log, "capability=CAP_SYS_PTRACE"));
  CHECK(Has(log,
            "holding capabilities no enabled feature needs: drop them\" unneeded=CAP_NET_ADMIN"));
}

TEST_CASE("caps: pods mode with exactly SYS_ADMIN and SYS_PTRACE has nothing to report",
          "[kernel][caps]") {
  EnterFreshNetns();
  ExporterProcess exporter(NoConntrack({"--netns.mode=pods", "--poll.interval=200ms"}),
                           Launch{Bounded(",+sys_admin,+sys_ptrace")});
  REQUIRE(exporter.WaitReady());
  Scrape s = exporter.ScrapeMetrics();
  CHECK(s.Value("sockdiag_capability", {{"capability", "CAP_SYS_ADMIN"}, {"needed", "true"}}) == 1);
  CHECK(s.Value("sockdiag_capability", {{"capability", "CAP_SYS_PTRACE"}, {"needed", "true"}}) ==
        1);
  CHECK(s.All("sockdiag_capability").size() == 2);
  CHECK(s.Value("sockdiag_netns_polled") >= 1);
  CHECK_FALSE(Has(exporter.Stderr(), "level=warn"));
}

TEST_CASE("caps: running as full root warns about every unneeded capability", "[kernel][caps]") {
  EnterFreshNetns();
  ExporterProcess exporter({"--poll.interval=200ms"});
  REQUIRE(exporter.WaitReady());
  Scrape s = exporter.ScrapeMetrics();
  CHECK(s.Value("sockdiag_capability", {{"capability", "CAP_SYS_ADMIN"}, {"needed", "false"}}) ==
        1);
  // The default conntrack collectors need it.
  CHECK(s.Value("sockdiag_capability", {{"capability", "CAP_NET_ADMIN"}, {"needed", "true"}}) == 1);
  CHECK(Has(exporter.Stderr(), "level=warn"));
  CHECK(Has(exporter.Stderr(), "unneeded=CAP_CHOWN,"));
}

TEST_CASE("caps: the default collectors need exactly CAP_NET_ADMIN (conntrack)", "[kernel][caps]") {
  EnterFreshNetns();
  ExporterProcess exporter({"--poll.interval=200ms"}, Launch{Bounded(",+net_admin")});
  REQUIRE(exporter.WaitReady());
  Scrape s = exporter.ScrapeMetrics();
  CHECK(s.Value("sockdiag_capability", {{"capability", "CAP_NET_ADMIN"}, {"needed", "true"}}) == 1);
  CHECK(s.All("sockdiag_capability").size() == 1);
  const std::string log = exporter.Stderr();
  INFO(log);
  CHECK(Has(log,
            "held=CAP_NET_ADMIN needed=\"CAP_NET_ADMIN(collector.conntrack "
            "collector.conntrack_table)\""));
  CHECK_FALSE(Has(log, "level=warn"));
}

TEST_CASE("caps: the default collectors without CAP_NET_ADMIN warn and report it missing",
          "[kernel][caps]") {
  EnterFreshNetns();
  ExporterProcess exporter({"--poll.interval=200ms"}, Launch{Bounded("")});
  REQUIRE(exporter.WaitReady());
  Scrape s = exporter.ScrapeMetrics();
  CHECK(s.Value("sockdiag_capability", {{"capability", "CAP_NET_ADMIN"}, {"needed", "true"}}) == 0);
  CHECK(s.Value("sockdiag_collector_success", {{"collector", "sockets"}}) == 1);
  CHECK(Has(exporter.Stderr(),
            "capability=CAP_NET_ADMIN "
            "features=collector.conntrack,collector.conntrack_table"));
}
