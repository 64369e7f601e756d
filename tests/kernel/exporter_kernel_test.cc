// The real binary: flags, HTTP endpoints, signals.

#include <catch2/catch.hpp>
#include <chrono>
#include <string>

#include "kernel/kernel_support.h"

using namespace sockdiag::testing;

namespace {

size_t Lines(const std::string& s) {
  size_t n = 0;
  for (char c : s) n += c == '\n';
  return n;
}

}  // namespace

TEST_CASE("bad flags: one line naming the flag, exit 2", "[kernel][flags]") {
  EnterFreshNetns();
  const std::vector<std::pair<std::vector<std::string>, std::string>> cases = {
      {{"--poll.interval=-3s"}, "--poll.interval"},
      {{"--poll.interval=abc"}, "--poll.interval"},
      {{"--poll.interval=0s"}, "--poll.interval"},
      {{"--no-such-flag"}, "--no-such-flag"},
      {{"--web.listen-address=nonsense"}, "--web.listen-address"},
      {{"--web.listen-address=127.0.0.1:99999"}, "--web.listen-address"},
      {{"--web.listen-address=300.1.1.1:80"}, "--web.listen-address"},
      {{"--log.level=loud"}, "--log.level"},
      {{"--collector.nosuch"}, "nosuch"},
      {{"--ports.top-destinations=-1"}, "--ports.top-destinations"},
      {{"--web.telemetry-path=metrics"}, "--web.telemetry-path"},
      {{"--poll.interval"}, "--poll.interval"},
      {{"stray"}, "stray"},
  };
  for (const auto& [args, mention] : cases) {
    INFO("args: " << args[0]);
    RunResult r = RunExporter(args);
    CHECK(r.exit_code == 2);
    CHECK(Lines(r.err) == 1);
    CHECK(r.err.find(mention) != std::string::npos);
    CHECK(r.err.find("terminate") == std::string::npos);
  }
}

TEST_CASE("a port already in use is a clear error, exit 2", "[kernel][flags]") {
  EnterFreshNetns();
  Fd taken = Listen({"127.0.0.1", 10061});
  RunResult r = RunExporter({"--web.listen-address=127.0.0.1:10061"});
  CHECK(r.exit_code == 2);
  CHECK(Lines(r.err) == 1);
  CHECK(r.err.find("--web.listen-address") != std::string::npos);
}

TEST_CASE("--help and --version exit 0", "[kernel][flags]") {
  RunResult help = RunExporter({"--help"});
  CHECK(help.exit_code == 0);
  CHECK(help.out.find("--[no-]collector.sockets") != std::string::npos);
  CHECK(help.out.find("--poll.interval") != std::string::npos);
  RunResult version = RunExporter({"--version"});
  CHECK(version.exit_code == 0);
  CHECK(version.out.find("sockdiag_exporter version") != std::string::npos);
}

TEST_CASE("web endpoints: landing page, health, readiness, 404, 405", "[kernel][web]") {
  EnterFreshNetns();
  ExporterProcess exporter({"--poll.interval=1s"});
  REQUIRE(exporter.WaitReady());
  HttpResponse root = HttpGet(exporter.port(), "/");
  CHECK(root.status == 200);
  CHECK(root.body.find("href=\"/metrics\"") != std::string::npos);
  CHECK(HttpGet(exporter.port(), "/-/healthy").status == 200);
  CHECK(HttpGet(exporter.port(), "/-/ready").status == 200);
  CHECK(HttpGet(exporter.port(), "/nope").status == 404);
  CHECK(HttpGet(exporter.port(), "/metrics", "POST").status == 405);
  HttpResponse m = HttpGet(exporter.port(), "/metrics");
  CHECK(m.status == 200);
  CHECK(m.body.find("sockdiag_build_info{") != std::string::npos);
  CHECK(m.body.find("sockdiag_last_poll_timestamp_seconds") != std::string::npos);
}

TEST_CASE("a custom telemetry path serves metrics there only", "[kernel][web]") {
  EnterFreshNetns();
  ExporterProcess exporter({"--web.telemetry-path=/m"});
  REQUIRE(exporter.WaitReady());
  CHECK(HttpGet(exporter.port(), "/m").status == 200);
  CHECK(HttpGet(exporter.port(), "/metrics").status == 404);
}

TEST_CASE("disabled collectors are absent and disable-defaults keeps only explicit ones",
          "[kernel][flags]") {
  EnterFreshNetns();
  ExporterProcess exporter({"--collector.disable-defaults", "--collector.sysctl"});
  REQUIRE(exporter.WaitReady());
  Scrape s = exporter.ScrapeMetrics();
  CHECK(s.Value("sockdiag_collector_success", {{"collector", "sysctl"}}) == 1);
  CHECK_FALSE(s.Get("sockdiag_collector_success", {{"collector", "sockets"}}).has_value());
  CHECK(s.All("sockdiag_tcp_sockets").empty());
}

TEST_CASE("a collector that fails reports success 0 and the rest keeps serving",
          "[kernel][faults]") {
  EnterFreshNetns();
  // A procfs root with nothing in it: sysctl and netstat fail, sockets
  // (netlink) keeps working.
  char dir[] = "/tmp/sockdiag-emptyproc-XXXXXX";
  REQUIRE(mkdtemp(dir) != nullptr);
  ExporterProcess exporter({std::string("--path.procfs=") + dir});
  REQUIRE(exporter.WaitReady());
  Scrape s = exporter.ScrapeMetrics();
  CHECK(s.Value("sockdiag_collector_success", {{"collector", "sysctl"}}) == 0);
  CHECK(s.Value("sockdiag_collector_success", {{"collector", "netstat"}}) == 0);
  CHECK(s.Value("sockdiag_collector_success", {{"collector", "sockets"}}) == 1);
  CHECK(s.Value("sockdiag_tcp_sockets", {{"family", "ipv4"}, {"state", "listen"}}) == 1);
  rmdir(dir);
}

TEST_CASE("SIGTERM stops the exporter within 1 s with exit 0", "[kernel][signals]") {
  EnterFreshNetns();
  ExporterProcess exporter({"--poll.interval=1s"});
  REQUIRE(exporter.WaitReady());
  auto t0 = std::chrono::steady_clock::now();
  int code = exporter.Terminate(std::chrono::seconds(3));
  double took = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  CHECK(code == 0);
  CHECK(took < 1.0);
}
