// Fault matrix: each fault keeps the exporter serving and shows in a metric.

#include <dirent.h>
#include <sched.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <fstream>
#include <string>
#include <thread>

#include "kernel/kernel_support.h"

using namespace sockdiag::testing;

namespace {

int CountEntries(const std::string& dir) {
  int n = 0;
  if (DIR* d = opendir(dir.c_str())) {
    while (struct dirent* e = readdir(d)) n += e->d_name[0] != '.';
    closedir(d);
  }
  return n;
}

void WriteFile(const std::string& path, const std::string& text) {
  std::ofstream out(path);
  out << text;
  REQUIRE(out.good());
}

// A throwaway directory tree, removed on destruction.
struct TempDir {
  std::string path;
  TempDir() {
    char t[] = "/tmp/sockdiag-fault-XXXXXX";
    REQUIRE(mkdtemp(t) != nullptr);
    path = t;
  }
  ~TempDir() { (void)std::system(("rm -rf " + path).c_str()); }
};

// The poller opens /proc entries and sockets for a moment on every poll:
// the steady count is the minimum over a few samples.
int SteadyCount(const std::string& dir) {
  int least = CountEntries(dir);
  for (int i = 0; i < 30; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(3));
    least = std::min(least, CountEntries(dir));
  }
  return least;
}

}  // namespace

TEST_CASE("a garbage procfs tree fails sysctl and netstat with success 0, sockets serve on",
          "[kernel][faults]") {
  EnterFreshNetns();
  TempDir root;
  (void)std::system(("mkdir -p " + root.path + "/sys/net/ipv4 " + root.path + "/net").c_str());
  WriteFile(root.path + "/sys/net/ipv4/ip_local_port_range", "not numbers\n");
  WriteFile(root.path + "/net/netstat", "TcpExt: TW TWRecycled\nTcpExt: 1\n");  // Truncated.
  WriteFile(root.path + "/net/snmp", "\x01\x02garbage");
  ExporterProcess exporter({"--path.procfs=" + root.path, "--poll.interval=200ms"});
  REQUIRE(exporter.WaitReady());
  Scrape s = exporter.ScrapeMetrics();
  CHECK(s.Value("sockdiag_collector_success", {{"collector", "sysctl"}}) == 0);
  CHECK(s.Value("sockdiag_collector_success", {{"collector", "netstat"}}) == 0);
  CHECK(s.Value("sockdiag_collector_success", {{"collector", "sockets"}}) == 1);
  CHECK(s.All("sockdiag_sysctl").empty());
  CHECK(s.All("sockdiag_tcp_time_wait_closed_total").empty());
}

TEST_CASE("an unreadable optional sysctl is counted and the others still export",
          "[kernel][faults]") {
  EnterFreshNetns();
  TempDir root;
  (void)std::system(("mkdir -p " + root.path + "/sys/net/ipv4 " + root.path + "/net").c_str());
  WriteFile(root.path + "/sys/net/ipv4/ip_local_port_range", "32768 60999\n");
  WriteFile(root.path + "/sys/net/ipv4/tcp_tw_reuse", "2\n");
  WriteFile(root.path + "/sys/net/ipv4/tcp_timestamps", "yes\n");  // Corrupt.
  (void)mkdir((root.path + "/sys/net/ipv4/tcp_fin_timeout").c_str(), 0755);  // EISDIR on read.
  ExporterProcess exporter({"--path.procfs=" + root.path, "--poll.interval=200ms"});
  REQUIRE(exporter.WaitReady());
  Scrape s = exporter.ScrapeMetrics();
  CHECK(s.Value("sockdiag_collector_success", {{"collector", "sysctl"}}) == 1);
  CHECK(s.Value("sockdiag_sysctl", {{"name", "net.ipv4.tcp_tw_reuse"}}) == 2);
  CHECK(s.Value("sockdiag_sysctl_read_errors") == 2);
  CHECK_FALSE(s.Get("sockdiag_sysctl", {{"name", "net.ipv4.tcp_timestamps"}}).has_value());
  CHECK(exporter.Stderr().find("cannot read sysctl") != std::string::npos);
}

TEST_CASE("polls longer than the interval never overlap and scrapes keep serving",
          "[kernel][faults]") {
  EnterFreshNetns();
  WriteSysctl("net.ipv4.ip_local_port_range", "20000 65000");
  WriteSysctl("net.ipv4.tcp_tw_reuse", "0");
  Endpoint a{"127.0.0.2", 9000}, b{"127.0.0.3", 9000};
  Fd la = Listen(a), lb = Listen(b);
  MakeClientTimeWait(la.get(), a, 20000);
  MakeClientTimeWait(lb.get(), b, 20000);
  // A 1 ms interval is shorter than any poll of 40k sockets.
  ExporterProcess exporter({"--poll.interval=1ms"});
  REQUIRE(exporter.WaitReady());
  const std::string tasks = "/proc/" + std::to_string(exporter.pid()) + "/task";
  const int threads0 = CountEntries(tasks);
  Scrape s = exporter.ScrapeUntil(
      [](const Scrape& x) { return x.Value("sockdiag_polls_skipped_total") >= 5; });
  CHECK(s.Value("sockdiag_polls_skipped_total") >= 5);
  CHECK(s.Value("sockdiag_tcp_sockets", {{"family", "ipv4"}, {"state", "time_wait"}}) == 40000);
  const double poll = s.Value("sockdiag_poll_duration_seconds");
  for (int i = 0; i < 20; ++i) {
    auto t0 = std::chrono::steady_clock::now();
    REQUIRE(HttpGet(exporter.port(), "/metrics").status == 200);
    CHECK(std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count() < poll);
  }
  // Polls run back to back on the one poller thread: no thread piles up.
  CHECK(CountEntries(tasks) == threads0);
}

TEST_CASE("pods mode without CAP_SYS_ADMIN counts namespaces it cannot enter and serves",
          "[kernel][faults][netns]") {
  EnterFreshNetns();
  // Another namespace to (fail to) enter: a child that sits in its own.
  pid_t child = fork();
  REQUIRE(child >= 0);
  if (child == 0) {
    if (unshare(CLONE_NEWNET) != 0) _exit(1);
    pause();
    _exit(0);
  }
  ExporterProcess exporter({"--netns.mode=pods", "--poll.interval=200ms"},
                           10061, {"capsh", "--drop=cap_sys_admin", "--"});
  REQUIRE(exporter.WaitReady());
  Scrape s = exporter.ScrapeUntil(
      [](const Scrape& x) { return x.Value("sockdiag_netns_errors_total") > 0; });
  kill(child, SIGKILL);
  waitpid(child, nullptr, 0);
  CHECK(s.Value("sockdiag_netns_errors_total") > 0);
  CHECK(exporter.Stderr().find("CAP_SYS_ADMIN") != std::string::npos);
  CHECK(HttpGet(exporter.port(), "/metrics").status == 200);
}

TEST_CASE("10000 short-lived namespaces leak no fds or threads in pods mode",
          "[kernel][faults][netns][slow]") {
  EnterFreshNetns();
  ExporterProcess exporter({"--netns.mode=pods", "--poll.interval=5ms", "--netns.max=4096"});
  REQUIRE(exporter.WaitReady());
  const std::string proc = "/proc/" + std::to_string(exporter.pid());
  // Settle, then take the baseline.
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  const int fds0 = SteadyCount(proc + "/fd");
  const int threads0 = CountEntries(proc + "/task");
  Scrape before = exporter.ScrapeMetrics();
  const double polls0 = before.Value("sockdiag_polls_total");
  // Each polled namespace legitimately holds one sock_diag socket; compare
  // fds when as many namespaces are polled as at the start.
  const double netns0 = before.Value("sockdiag_netns_polled");
  // 10000 children, each alive in its own namespace for a moment; up to 64
  // at a time, so many vanish between discovery and polling.
  int running = 0, made = 0;
  while (made < 10000 || running > 0) {
    while (made < 10000 && running < 64) {
      pid_t c = fork();
      REQUIRE(c >= 0);
      if (c == 0) {
        if (unshare(CLONE_NEWNET) != 0) _exit(1);
        usleep(20000);  // Long enough to be polled, short enough to vanish mid-poll.
        _exit(0);
      }
      ++made;
      ++running;
    }
    int status = 0;
    if (waitpid(-1, &status, 0) > 0) {
      --running;
      REQUIRE(WIFEXITED(status));
      REQUIRE(WEXITSTATUS(status) == 0);
    }
  }
  Scrape s = exporter.ScrapeUntil(
      [&](const Scrape& x) { return x.Value("sockdiag_netns_polled") == netns0; });
  INFO("polls during the run: " << s.Value("sockdiag_polls_total") - polls0);
  // Polls overlapped the storm (each sees up to 64 live namespaces); under load
  // a poll can take seconds, so only require that some ran.
  CHECK(s.Value("sockdiag_polls_total") - polls0 >= 2);
  CHECK(s.Value("sockdiag_netns_polled") == netns0);
  CHECK(SteadyCount(proc + "/fd") == fds0);
  CHECK(CountEntries(proc + "/task") == threads0);
  // Only our own namespace (and whatever else runs on the machine) remains.
  CHECK(HttpGet(exporter.port(), "/-/healthy").status == 200);
}
