// CivetWeb (plain HTTP) against abusive clients: the real binary in a
// private network namespace, real sockets. Every case ends by checking that
// a real scrape is still answered, within the bound docs/security.md gives
// (measured on 2 cores: see "Limits" there).

#include <fcntl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <catch2/catch.hpp>
#include <chrono>
#include <string>
#include <thread>
#include <vector>

#include "kernel/kernel_support.h"
#include "kernel/web_support.h"

using namespace sockdiag::testing;
using Clock = std::chrono::steady_clock;

namespace {

double Seconds(Clock::time_point since) {
  return std::chrono::duration<double>(Clock::now() - since).count();
}

// A scrape's latency in seconds; FAILs unless it is a 200 with metrics.
double TimedScrape(uint16_t port) {
  const auto t0 = Clock::now();
  HttpResponse r = HttpGet(port, "/metrics");
  const double took = Seconds(t0);
  REQUIRE(r.status == 200);
  REQUIRE(r.body.find("sockdiag_build_info") != std::string::npos);
  return took;
}

std::string Get(const std::string& path, const std::string& extra = "") {
  return "GET " + path + " HTTP/1.1\r\nHost: 127.0.0.1\r\n" + extra + "Connection: close\r\n\r\n";
}

// A connect() that does not wait for the server to accept: a flood as fast
// as the kernel takes it.
Fd ConnectNoWait(uint16_t port) {
  const int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  REQUIRE(fd >= 0);
  sockaddr_in to{};
  to.sin_family = AF_INET;
  to.sin_port = htons(port);
  to.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  connect(fd, reinterpret_cast<sockaddr*>(&to), sizeof(to));  // EINPROGRESS expected.
  return Fd(fd);
}

}  // namespace

TEST_CASE("web abuse: malformed and unwanted requests get 4xx and scrapes go on",
          "[kernel][web][abuse]") {
  EnterFreshNetns();
  ExporterProcess exporter({"--poll.interval=1s"});
  REQUIRE(exporter.WaitReady());
  const uint16_t port = exporter.port();

  struct Case {
    const char* what;
    std::string request;
    int status;  // What CivetWeb 1.15 (plus our hook) answers.
  };
  const std::vector<Case> cases = {
      {"garbage request line", "HELLO\r\n\r\n", 400},
      {"binary junk (a TLS ClientHello)",
       std::string("\x16\x03\x01\x00\xa5\x01\x00\x00\xa1\x03\x03", 11), 400},
      {"three tokens and a slash", "GET / / HTTP/1.1\r\nHost: a\r\n\r\n", 400},
      {"empty request line", "\r\n\r\n", 400},
      {"method only", "GET\r\n\r\n", 400},
      {"HTTP/2 preface", "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", 400},
      {"HTTP/3.0", "GET / HTTP/3.0\r\n\r\n", 505},
      {"20 KB request line", std::string(20000, 'G'), 400},
      {"64 KiB header", Get("/metrics", "X-Big: " + std::string(64 * 1024, 'b') + "\r\n"), 400},
      {"9 KB unknown URI", Get("/" + std::string(9000, 'a')), 404},
      {"unknown path", Get("/admin"), 404},
      {"path traversal", Get("/../../etc/passwd"), 404},
      {"unknown method", "BREW /metrics HTTP/1.1\r\nHost: a\r\n\r\n", 400},
      {"POST with a body", "POST /metrics HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\r\nhello",
       405},
      {"chunked DELETE",
       "DELETE / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", 405},
  };
  for (const Case& c : cases) {
    INFO(c.what);
    std::string response;
    const auto t0 = Clock::now();
    const int status = RawRequest(port, c.request, &response);
    if (status == 0 && c.status == 400) {
      // CivetWeb echoes a malformed protocol token into its status line
      // ("HTTP// HTTP/1.1... 400 Bad Request"): still a 400.
      CHECK(response.find(" 400 Bad Request") != std::string::npos);
    } else {
      CHECK(status == c.status);
    }
    CHECK(Seconds(t0) < 1.0);  // Answered at once, not at a timeout.
    CHECK(response.find("sockdiag_") == std::string::npos);
  }
  CHECK(TimedScrape(port) < 1.0);
}

TEST_CASE("web abuse: 1000 idle connections delay scrapes by seconds at most and are all closed",
          "[kernel][web][abuse]") {
  EnterFreshNetns();
  ExporterProcess exporter({"--poll.interval=1s"});
  REQUIRE(exporter.WaitReady());
  const uint16_t port = exporter.port();

  const auto opened = Clock::now();
  std::vector<Fd> idle;
  for (int i = 0; i < 1000; ++i) idle.push_back(ConnectNoWait(port));
  // Each of the 256 workers gives an idle connection the 2 s request
  // timeout; the kernel's accept backlog drops the SYNs beyond it and
  // clients retry them (1 s, 3 s, 7 s later), so the flood lasts ~10 s and a
  // scrape can wait a few seconds. Measured on 2 cores: slowest 2.0-4.0 s.
  double worst = 0;
  int scrapes = 0;
  while (Seconds(opened) < 10) {
    worst = std::max(worst, TimedScrape(port));
    ++scrapes;
  }
  INFO("slowest of " << scrapes << " scrapes in the 10 s after 1000 idle connects: " << worst
                     << " s");
  CHECK(worst < 8.0);  // Within Prometheus's 10 s scrape timeout, with margin.
  // The server closes every idle connection it accepted: none of its ends
  // stays ESTABLISHED once the clients' SYN retries are over.
  const int established = SsCount("established", "'( sport = :10061 )'");
  INFO("server-side established at 10 s: " << established);
  CHECK(WaitUntil([] { return SsCount("established", "'( sport = :10061 )'") == 0; },
                  std::chrono::seconds(20)));
  INFO("all closed after " << Seconds(opened) << " s");
  CHECK(Seconds(opened) < 30);
  CHECK(TimedScrape(port) < 1.0);
}

TEST_CASE("web abuse: slow-loris clients get 400 after 2 s and never block scrapes for long",
          "[kernel][web][abuse]") {
  EnterFreshNetns();
  ExporterProcess exporter({"--poll.interval=1s"});
  REQUIRE(exporter.WaitReady());
  const uint16_t port = exporter.port();

  // 300 clients trickling a never-ending head, one byte each every ~300 ms.
  std::vector<Fd> loris;
  for (int i = 0; i < 300; ++i) {
    loris.push_back(Connect({"127.0.0.1", port}));
    REQUIRE(SendAll(loris.back().get(), "GET /metrics HTTP/1.1\r\nHost: a\r\n"));
  }
  const auto started = Clock::now();
  double worst = 0;
  int scrapes = 0;
  while (Seconds(started) < 6) {
    for (const Fd& fd : loris) SendAll(fd.get(), "X");
    worst = std::max(worst, TimedScrape(port));
    ++scrapes;
    std::this_thread::sleep_for(std::chrono::milliseconds(300));
  }
  INFO("slowest of " << scrapes << " scrapes under 300 slow-loris clients: " << worst << " s");
  CHECK(worst < 4.0);  // Measured: 2.0 s at most.

  // The request timeout (2 s from the first byte) cut every one off with a
  // 400: none is ever served.
  int cut = 0;
  for (const Fd& fd : loris) {
    std::string r = ReadUntilClose(fd.get(), std::chrono::seconds(5));
    cut += StatusCode(r) == 400 && r.find("sockdiag_") == std::string::npos ? 1 : 0;
  }
  CHECK(cut == 300);
  CHECK(TimedScrape(port) < 1.0);
}

TEST_CASE("web abuse: an idle connection is closed after the 2 s request timeout",
          "[kernel][web][abuse]") {
  EnterFreshNetns();
  ExporterProcess exporter({"--poll.interval=1s"});
  REQUIRE(exporter.WaitReady());
  Fd silent = Connect({"127.0.0.1", exporter.port()});
  Fd partial = Connect({"127.0.0.1", exporter.port()});
  REQUIRE(SendAll(partial.get(), "GET /metrics HTTP/1.1\r\n"));
  const auto t0 = Clock::now();
  CHECK(ReadUntilClose(silent.get(), std::chrono::seconds(10)).empty());
  const double silent_s = Seconds(t0);
  CHECK(StatusCode(ReadUntilClose(partial.get(), std::chrono::seconds(10))) == 400);
  const double partial_s = Seconds(t0);
  INFO("silent closed after " << silent_s << " s, partial after " << partial_s << " s");
  CHECK(silent_s > 1.5);
  CHECK(silent_s < 3.0);
  CHECK(partial_s < 3.0);
}

TEST_CASE("web abuse: a wrk load of 50 connections is served without errors",
          "[kernel][web][load]") {
  EnterFreshNetns();
  if (Shell("command -v wrk >/dev/null") != 0) FAIL("wrk missing (apt-get install wrk)");
  ExporterProcess exporter({"--poll.interval=200ms", "--web.max-requests=100"});
  REQUIRE(exporter.WaitReady());
  TempDir dir;
  const int rc =
      Shell("wrk -t2 -c50 -d3s --latency http://127.0.0.1:" + std::to_string(exporter.port()) +
            "/metrics > " + (dir / "wrk") + " 2>&1");
  REQUIRE(rc == 0);
  std::string out;
  {
    FILE* f = fopen((dir / "wrk").c_str(), "r");
    REQUIRE(f != nullptr);
    char buf[4096];
    size_t n = 0;
    while ((n = fread(buf, 1, sizeof(buf), f)) > 0) out.append(buf, n);
    fclose(f);
  }
  INFO(out);
  CHECK(out.find("Non-2xx") == std::string::npos);
  CHECK(out.find("Requests/sec") != std::string::npos);
  CHECK(TimedScrape(exporter.port()) < 1.0);
}
