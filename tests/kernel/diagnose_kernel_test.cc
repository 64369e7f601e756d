// `sockdiag_exporter diagnose` on real populations in a private namespace:
// each field case's shape must yield its finding and exit status, from the
// real binary (RunExporter), in text and JSON.

#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <catch2/catch.hpp>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <sstream>
#include <string>

#include "kernel/kernel_support.h"

using namespace sockdiag::testing;

namespace {

bool Contains(const std::string& haystack, const std::string& needle) {
  return haystack.find(needle) != std::string::npos;
}

// The text with every run of whitespace made one space: finding messages
// are word-wrapped at 80 columns.
std::string Flat(const std::string& text) {
  std::string out;
  for (char c : text) {
    const bool space = c == ' ' || c == '\n';
    if (space && !out.empty() && out.back() == ' ') continue;
    out += space ? ' ' : c;
  }
  return out;
}

// Evaluates a Python expression over the parsed JSON `d` with Python's own
// parser (an independent check that the output is JSON); returns what
// json.dumps prints for it, e.g. "470", "\"critical\"", "true".
std::string JsonValue(const std::string& json, const std::string& expr) {
  auto temp = [](const std::string& content) {
    char path[] = "/tmp/sockdiag-diagnose-kt-XXXXXX";
    const int fd = mkstemp(path);
    REQUIRE(fd >= 0);
    REQUIRE(write(fd, content.data(), content.size()) == static_cast<ssize_t>(content.size()));
    close(fd);
    return std::string(path);
  };
  const std::string json_path = temp(json), expr_path = temp(expr);
  const std::string cmd =
      "python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); "
      "print(json.dumps(eval(open(sys.argv[2]).read())))' " +
      json_path + " " + expr_path;
  FILE* p = popen(cmd.c_str(), "r");
  REQUIRE(p != nullptr);
  std::string out;
  char buf[4096];
  size_t n;
  while ((n = fread(buf, 1, sizeof buf, p)) > 0) out.append(buf, n);
  const int status = pclose(p);
  unlink(json_path.c_str());
  unlink(expr_path.c_str());
  INFO("python expression " << expr << " on:\n" << json);
  REQUIRE(WIFEXITED(status));
  REQUIRE(WEXITSTATUS(status) == 0);
  if (!out.empty() && out.back() == '\n') out.pop_back();
  return out;
}

// Ids of the findings of a JSON report, space-separated.
std::string FindingIds(const std::string& json) {
  return JsonValue(json, "\" \".join(f[\"id\"] for f in d[\"findings\"])");
}

RunResult Diagnose(const std::vector<std::string>& flags) {
  std::vector<std::string> args = {"diagnose"};
  args.insert(args.end(), flags.begin(), flags.end());
  return RunExporter(args, std::chrono::seconds(20));
}

// Field case 1 at small scale: 470 client TIME_WAIT toward 127.0.0.2:3306
// with 500 usable ports and no TIME_WAIT reuse: 94% of the ports blocked.
// Made in a burst of a second or two: 470 closes in the last 10 s (47/s)
// also forecast the remaining 30 ports gone in under a second.
void MakeCase1(std::vector<Fd>* keep) {
  WriteSysctl("net.ipv4.ip_local_port_range", "40000 40499");
  WriteSysctl("net.ipv4.tcp_tw_reuse", "0");
  Endpoint db{"127.0.0.2", 3306};
  keep->push_back(Listen(db));
  MakeClientTimeWait(keep->back().get(), db, 470);
}

}  // namespace

TEST_CASE("diagnose: field case 1 names the destination running out of ports",
          "[kernel][diagnose]") {
  EnterFreshNetns();
  std::vector<Fd> keep;
  MakeCase1(&keep);
  REQUIRE(SsCount("time-wait") == 470);

  RunResult text = Diagnose({});
  INFO(text.out << text.err);
  CHECK(text.exit_code == 1);
  CHECK(text.err.empty());
  CHECK(Contains(text.out,
                 "127.0.0.1 -> 127.0.0.2:3306                    470   94%       100%  no"));
  CHECK(Contains(Flat(text.out),
                 "CRITICAL 94% of usable ports toward 127.0.0.2:3306 (from 127.0.0.1) are held, "
                 "100% in TIME_WAIT"));
  CHECK(Contains(Flat(text.out),
                 "100% in TIME_WAIT: connections to it are opened and closed ~7.8/s"));
  CHECK(Contains(text.out, "TIME_WAIT reuse: no."));
  CHECK(Contains(Flat(text.out),
                 "CRITICAL At today's rate, ports toward 127.0.0.2:3306 (from 127.0.0.1) run out "
                 "in <1 s (47 closes/s, 60 s TIME_WAIT, no reuse)."));
  CHECK(Contains(text.out, "Not healthy: 2 critical, 0 warning finding(s) (exit status 1)."));

  RunResult json = Diagnose({"--format=json"});
  CHECK(json.exit_code == 1);
  CHECK(JsonValue(json.out, "d['exit_status']") == "1");
  CHECK(JsonValue(json.out, "d['ephemeral_ports']['usable']") == "500");
  CHECK(JsonValue(json.out, "d['destinations'][0]['remote_address']") == "\"127.0.0.2\"");
  CHECK(JsonValue(json.out, "d['destinations'][0]['remote_port']") == "3306");
  CHECK(JsonValue(json.out, "d['destinations'][0]['ports_held']") == "470");
  CHECK(JsonValue(json.out, "d['destinations'][0]['utilization']") == "0.94");
  CHECK(JsonValue(json.out, "d['destinations'][0]['time_wait_ports']") == "470");
  CHECK(JsonValue(json.out, "d['destinations'][0]['time_wait_reusable']") == "false");
  CHECK(JsonValue(json.out, "d['sockets']['tcp']['time_wait']") == "470");
  CHECK(JsonValue(json.out, "d['time_wait_reuse']") == "\"no\"");
  CHECK(FindingIds(json.out) ==
        "\"ephemeral_ports_exhausting ephemeral_ports_exhaustion_forecast\"");
  CHECK(JsonValue(json.out, "d['findings'][0]['severity']") == "\"critical\"");
  CHECK(JsonValue(json.out, "d['findings'][1]['severity']") == "\"critical\"");
  CHECK(JsonValue(json.out, "d['destinations'][0]['closes_per_second']") == "47");
  CHECK(JsonValue(json.out, "d['destinations'][0]['exhaustion_seconds'] < 1") == "true");
  CHECK(JsonValue(json.out, "d['destinations'][0]['steady_utilization']") == "5.64");
  CHECK(JsonValue(json.out, "d['ephemeral_ports']['exhaustion_seconds_min'] < 1") == "true");
  CHECK(JsonValue(json.out, "d['findings'][0]['subject']") == "\"127.0.0.1 -> 127.0.0.2:3306\"");
}

TEST_CASE("diagnose: field case 3 says reuse is possible yet the churn continues",
          "[kernel][diagnose]") {
  EnterFreshNetns();
  WriteSysctl("net.ipv4.ip_local_port_range", "40000 40499");
  // The TIME_WAIT population first (no reuse, so exactly 400 sockets), then
  // the "fix": tcp_tw_reuse=1 with timestamps on.
  WriteSysctl("net.ipv4.tcp_tw_reuse", "0");
  Endpoint mysql{"127.0.0.2", 3306};
  Fd l = Listen(mysql);
  MakeClientTimeWait(l.get(), mysql, 400);
  WriteSysctl("net.ipv4.tcp_tw_reuse", "1");
  WriteSysctl("net.ipv4.tcp_timestamps", "1");
  REQUIRE(SsCount("time-wait") == 400);

  RunResult json = Diagnose({"--format=json"});
  INFO(json.out << json.err);
  CHECK(json.exit_code == 1);
  CHECK(JsonValue(json.out, "d['time_wait_reuse']") == "\"outbound\"");
  CHECK(JsonValue(json.out, "d['destinations'][0]['time_wait_reusable']") == "true");
  CHECK(JsonValue(json.out, "d['destinations'][0]['utilization']") == "0");
  CHECK(JsonValue(json.out, "d['destinations'][0]['time_wait_ports']") == "400");
  CHECK(JsonValue(json.out,
                  "[s['states'] for s in d['service_ports'] if s['direction'] == "
                  "'outbound' and s['port'] == '3306']") == "[{\"time_wait\": 400}]");
  CHECK(FindingIds(json.out) == "\"time_wait_churn\"");
  CHECK(JsonValue(json.out, "d['findings'][0]['subject']") == "\"127.0.0.1 -> 127.0.0.2:3306\"");

  RunResult text = Diagnose({});
  CHECK(text.exit_code == 1);
  CHECK(Contains(Flat(text.out),
                 "TIME_WAIT reuse is possible toward 127.0.0.2:3306 (tcp_tw_reuse=1,"));
  CHECK(Contains(Flat(text.out), "yet the churn continues"));
  CHECK(Contains(Flat(text.out), "~6.7 connections/s are opened and closed toward it"));
  CHECK(Contains(Flat(text.out), "TIME_WAIT reuse: yes, for outbound connections"));
  CHECK(
      Contains(text.out, "tcp_tw_recycle      -            Absent (removed in Linux 4.12): good."));
}

TEST_CASE("diagnose: CLOSE_WAIT above 100 is an application leak on its port",
          "[kernel][diagnose]") {
  EnterFreshNetns();
  Endpoint web{"127.0.0.1", 8080};
  Fd l = Listen(web);
  auto cw = MakeCloseWait(l.get(), web, 100);
  REQUIRE(SsCount("close-wait") == 100);

  RunResult at = Diagnose({"--format=json"});
  INFO(at.out << at.err);
  CHECK(at.exit_code == 0);
  CHECK(FindingIds(at.out) == "\"close_wait_present\"");

  auto more = MakeCloseWait(l.get(), web, 1);
  REQUIRE(SsCount("close-wait") == 101);
  RunResult over = Diagnose({"--format=json"});
  INFO(over.out);
  CHECK(over.exit_code == 1);
  CHECK(FindingIds(over.out) == "\"close_wait_leak\"");
  CHECK(JsonValue(over.out, "d['findings'][0]['subject']") == "\"inbound :8080\"");
  CHECK(JsonValue(over.out, "d['close_wait']") ==
        "[{\"direction\": \"inbound\", \"port\": \"8080\", \"sockets\": 101}]");

  RunResult text = Diagnose({});
  CHECK(Contains(Flat(text.out), "WARNING 101 sockets are in CLOSE_WAIT: the peer closed and the"));
  CHECK(Contains(Flat(text.out),
                 "never called close() - a connection leak in the application, not a"));
  CHECK(Contains(Flat(text.out), "Most are inbound on port 8080 (101"));
  CHECK(Contains(text.out, "  inbound :8080            101"));
}

TEST_CASE("diagnose: a healthy namespace exits 0", "[kernel][diagnose]") {
  EnterFreshNetns();
  Endpoint web{"127.0.0.1", 8080};
  Fd l = Listen(web);
  auto est = MakeEstablished(l.get(), web, 5);
  MakeClientTimeWait(l.get(), web, 3);

  RunResult text = Diagnose({});
  INFO(text.out << text.err);
  CHECK(text.exit_code == 0);
  CHECK(text.err.empty());
  CHECK(Contains(text.out, "TCP 14 (ipv4 14, ipv6 0): established 10, time_wait 3, listen 1"));
  CHECK(Contains(text.out, "FINDINGS\n  none"));
  CHECK(Contains(text.out, "Healthy: no finding crosses a threshold (exit status 0)."));

  RunResult json = Diagnose({"--format=json", "--interval=200ms"});
  CHECK(json.exit_code == 0);
  CHECK(JsonValue(json.out, "d['findings']") == "[]");
  // The measured time between the polls: at least the 200 ms asked for, and
  // below the 1 s default (a loaded machine adds poll time on top).
  CHECK(JsonValue(json.out, "d['interval_seconds'] >= 0.2") == "true");
  CHECK(JsonValue(json.out, "d['interval_seconds'] < 1.0") == "true");
  CHECK(JsonValue(json.out, "d['target']") == "\"current network namespace\"");
  struct stat st;
  REQUIRE(stat("/proc/thread-self/ns/net", &st) == 0);
  CHECK(JsonValue(json.out, "d['netns_inode']") == std::to_string(st.st_ino));
  // The namespace's own TCP counters are read: our 8 connects came before
  // the sample, so the rate is 0 but known.
  CHECK(JsonValue(json.out, "d['sockets']['active_opens_per_second']") == "0");
}

TEST_CASE("diagnose --netns enters a namespace by path and by pid", "[kernel][diagnose]") {
  EnterFreshNetns();  // Ours stays empty: everything reported must come from the other one.
  NamedNetns ns("diag");
  std::vector<Fd> keep;
  ns.Run([&] { MakeCase1(&keep); });

  RunResult own = Diagnose({"--format=json"});
  CHECK(own.exit_code == 0);
  CHECK(JsonValue(own.out, "d['sockets']['tcp_total']") == "0");

  RunResult by_path = Diagnose({"--netns=" + ns.path(), "--format=json"});
  INFO(by_path.out << by_path.err);
  CHECK(by_path.exit_code == 1);
  CHECK(JsonValue(by_path.out, "d['target']") == "\"network namespace " + ns.path() + "\"");
  CHECK(JsonValue(by_path.out, "d['netns_inode']") == ns.inode());
  CHECK(JsonValue(by_path.out, "d['destinations'][0]['ports_held']") == "470");
  CHECK(JsonValue(by_path.out, "d['ephemeral_ports']['usable']") == "500");
  // Net files come from thread-self/net inside it: the netstat collector
  // reads that namespace's counters.
  CHECK(JsonValue(by_path.out,
                  "[c['success'] for c in d['collectors'] if c['name'] == 'netstat']") == "[true]");
  CHECK(FindingIds(by_path.out) ==
        "\"ephemeral_ports_exhausting ephemeral_ports_exhaustion_forecast\"");

  // A process in the namespace: --netns=PID.
  const pid_t child = fork();
  REQUIRE(child >= 0);
  if (child == 0) {
    const int fd = open(ns.path().c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0 || setns(fd, CLONE_NEWNET) != 0) _exit(1);
    pause();
    _exit(0);
  }
  const std::string child_ns = "/proc/" + std::to_string(child) + "/ns/net";
  REQUIRE(WaitUntil([&] {
    struct stat st;
    return stat(child_ns.c_str(), &st) == 0 && std::to_string(st.st_ino) == ns.inode();
  }));
  RunResult by_pid = Diagnose({"--netns", std::to_string(child), "--format=json"});
  kill(child, SIGKILL);
  waitpid(child, nullptr, 0);
  INFO(by_pid.out << by_pid.err);
  CHECK(by_pid.exit_code == 1);
  CHECK(JsonValue(by_pid.out, "d['target']") ==
        "\"network namespace of pid " + std::to_string(child) + "\"");
  CHECK(JsonValue(by_pid.out, "d['netns_inode']") == ns.inode());
  CHECK(JsonValue(by_pid.out, "d['destinations'][0]['ports_held']") == "470");
  CHECK(JsonValue(by_pid.out, "d['sockets']['tcp']['time_wait']") == "470");
}

TEST_CASE("diagnose: bad usage exits 2 with one line", "[kernel][diagnose]") {
  EnterFreshNetns();
  const std::vector<std::pair<std::vector<std::string>, std::string>> cases = {
      {{"--format=xml"}, "--format: must be text or json"},
      {{"--netns=/nonexistent/netns"}, "No such file or directory"},
      {{"--netns=/proc/self/ns/uts"}, "not a network namespace"},
      {{"--netns=999999999"}, "--netns=999999999: open"},
      {{"--netns.mode=pods"}, "--netns.mode"},
      {{"--interval=5m"}, "--interval"},
      {{"positional"}, "unexpected argument \"positional\""},
      {{"--no-such-flag"}, "unknown flag --no-such-flag"},
  };
  for (const auto& [args, mention] : cases) {
    RunResult r = Diagnose(args);
    INFO(args[0] << ": " << r.err);
    CHECK(r.exit_code == 2);
    CHECK(r.out.empty());
    CHECK(Contains(r.err, "sockdiag_exporter diagnose: error: "));
    CHECK(Contains(r.err, mention));
    CHECK(std::count(r.err.begin(), r.err.end(), '\n') == 1);
  }
  RunResult help = Diagnose({"--help"});
  CHECK(help.exit_code == 0);
  CHECK(Contains(help.out, "usage: sockdiag_exporter diagnose [--netns=PATH|PID]"));
  // The exporter itself still rejects positional arguments.
  RunResult exporter = RunExporter({"diagnosis"});
  CHECK(exporter.exit_code == 2);
}
