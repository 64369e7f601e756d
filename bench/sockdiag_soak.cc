// sockdiag_soak: the real sockdiag_exporter under connection churn and
// concurrent scrapes, checked for correctness and bounded resources.
//
// The tool moves itself into a private network namespace (loopback only;
// needs root), widens the ephemeral port range there, starts the exporter
// binary given with a short --poll.interval, and then for --duration seconds:
//
//   churn     opens and closes --rate TCP connections per second on loopback:
//             36 flows (127.0.0.2-9 and ::1, service ports 80/443/636/993),
//             each connection held briefly in a ring (so ESTABLISHED sockets
//             exist), then closed by the client or by the server in turn, so
//             TIME_WAIT builds on both sides (rate x 60 s sockets in steady
//             state). A worker that falls behind runs flat out and drops the
//             backlog beyond 1 s: the achieved rate is measured, not assumed.
//   scrapers  --scrapers threads (10) GET /metrics over and over, each pausing
//             --scrape-pause-ms (20) between scrapes, ~450 scrapes/s together
//             (a Prometheus server scrapes once every 15 s); half ask for gzip.
//             Every answer must be HTTP 200 with a Content-Length matching the
//             body, parse as the text exposition format (valid names, labels
//             and values, no duplicate series), carry the poll self-metrics,
//             and report every collector successful.
//   monitor   once a second: the exporter's VmRSS, its fds (connection sockets
//             apart from the rest) and threads, the churn count.
//   sampler   every 10 ms: the kernel's count of TIME_WAIT sockets in the
//             namespace (/proc/net/sockstat "tw", the figure `ss -s` shows)
//             and the tool's counters of TIME_WAIT births.
//   checker   every --check-interval: waits for a fresh poll, runs `ss -Htan`
//             right away and compares state counts (below).
//
// Pass criteria (exit 0; 1 on failure, 2 on usage or setup errors):
//   - zero failed scrapes and zero scrapes reporting a failing collector;
//   - the exporter stays up, polls_total grows between checks, polls plus
//     skipped ticks keep up with --poll.interval, and it exits 0 on SIGTERM;
//   - after --warmup (default min(120 s, half the run)): RSS drift <= 1 MiB
//     (--rss-drift-kib; drift = max - min of the 30 s rolling median of
//     VmRSS, so a sample catching a few requests' buffers in flight is not
//     drift; the raw range is reported too), threads constant, fds other
//     than connection sockets within 2 of their floor and that floor not
//     rising, connection sockets <= scrapers + 3;
//   - LISTEN counts equal exactly: exporter == ss == listeners made + 1;
//   - TIME_WAIT consistent (see below), at every check.
// The achieved churn rate is reported; it fails the run only with
// --require-rate (mean >= 99 % of the target and >= 95 % of the seconds at
// >= 90 % of it), so a slow or loaded machine does not fail a correctness test.
//
// TIME_WAIT tolerance. Two dumps of a hash table that changes while it is
// walked (the exporter's poll, then ss) can only disagree about sockets born
// or dead between the start of the first and the end of the second: a socket
// alive through that whole window is counted by both. So
//     |exporter - ss| <= births(W) + deaths(W),  W = [poll start, ss end].
// At a steady churn rate r with TIME_WAIT's fixed 60 s lifetime this is about
// 2 r |W| (r x skew for births, as many expiring), but expiries are batched
// by the kernel's timer wheel (a 60 s timer fires on a ~2-4 s granularity), so
// thousands can go in one tick; the bound is therefore measured, not assumed:
// births come from the tool's counters (incremented before the first close of
// a connection and after its last, the scrapes' connections included), and
// deaths follow from conservation with the kernel's counter N(t):
// deaths = N(start) + births - N(end). A second, tighter check brackets the
// exporter's own dump [ts, te] alone:
//     N(te) - births(ts, te] <= exporter <= N(ts) + births(ts, te]
// (every socket alive throughout the dump is counted; beyond those only
// sockets born during it or alive at its start can be). Both use a margin of
// a sampling period on each side, and 50 ms before a window for the births
// counter (a loopback FIN processed later than the close that sent it), and
// a slack of 64 for TIME_WAIT sockets still in their FIN_WAIT2 sub-state
// (counted in N, shown by sock_diag as fin_wait2).

#include <arpa/inet.h>
#include <dirent.h>
#include <fcntl.h>
#include <net/if.h>
#include <netinet/in.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <sys/ioctl.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/utsname.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <zlib.h>

#include <algorithm>
#include <atomic>
#include <cctype>
#include <cerrno>
#include <cmath>
#include <cstdarg>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <deque>
#include <fstream>
#include <memory>
#include <mutex>
#include <set>
#include <sstream>
#include <string>
#include <string_view>
#include <thread>
#include <unordered_set>
#include <vector>

#include "support/exposition.h"
#include "support/http.h"
#include "support/process.h"
#include "support/system.h"

namespace {

using sockdiag::testing::ChildProcess;
using sockdiag::testing::HttpOptions;
using sockdiag::testing::HttpRequest;
using sockdiag::testing::HttpResponse;
using sockdiag::testing::ReadFile;
using sockdiag::testing::Scrape;
using sockdiag::testing::SetSysctl;
using sockdiag::testing::SpawnOptions;

// ---------------------------------------------------------------- basics

// Unix time in seconds: the exporter's timestamps are Unix time too.
double Now() {
  timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  return static_cast<double>(ts.tv_sec) + static_cast<double>(ts.tv_nsec) * 1e-9;
}

void SleepFor(double seconds) {
  if (seconds <= 0) return;
  timespec ts;
  ts.tv_sec = static_cast<time_t>(seconds);
  ts.tv_nsec = static_cast<long>((seconds - static_cast<double>(ts.tv_sec)) * 1e9);
  while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
  }
}

[[noreturn]] void SetupError(const std::string& what) {
  std::fprintf(stderr, "sockdiag_soak: %s\n", what.c_str());
  std::exit(2);
}

void WriteSysctl(const std::string& dotted, const std::string& value) {
  const std::string error = SetSysctl(dotted, value);
  if (!error.empty()) SetupError(error);
}

std::string Format(const char* fmt, ...) __attribute__((format(printf, 1, 2)));
std::string Format(const char* fmt, ...) {
  char buf[1024];
  va_list ap;
  va_start(ap, fmt);
  std::vsnprintf(buf, sizeof(buf), fmt, ap);
  va_end(ap);
  return buf;
}

// Collects failures from every thread; keeps the first few messages.
class Failures {
 public:
  void Add(const std::string& msg) {
    std::lock_guard<std::mutex> lock(mu_);
    ++count_;
    if (first_.size() < 20) first_.push_back(Format("[t+%.1fs] ", Now() - start_) + msg);
  }
  size_t count() const {
    std::lock_guard<std::mutex> lock(mu_);
    return count_;
  }
  std::vector<std::string> first() const {
    std::lock_guard<std::mutex> lock(mu_);
    return first_;
  }
  void set_start(double t) { start_ = t; }

 private:
  mutable std::mutex mu_;
  size_t count_ = 0;
  std::vector<std::string> first_;
  double start_ = 0;
};

Failures g_failures;
std::atomic<bool> g_stop{false};

// TIME_WAIT births: `started` is counted before the first close of a
// connection that ends in TIME_WAIT, `done` after its last close.
std::atomic<uint64_t> g_tw_started{0};
std::atomic<uint64_t> g_tw_done{0};

// Churn counters.
std::atomic<uint64_t> g_conn_closed{0};
std::atomic<uint64_t> g_client_closed{0};
std::atomic<uint64_t> g_server_closed{0};
std::atomic<uint64_t> g_connect_errors{0};
std::atomic<uint64_t> g_close_anomalies{0};
std::atomic<uint64_t> g_backlog_dropped{0};

// ---------------------------------------------------------------- options

struct Options {
  std::string exporter;
  std::string exporter_log = "/dev/null";
  std::vector<std::string> exporter_args;
  double duration = 120;
  double warmup = -1;  // Default: min(120, duration / 2).
  double rate = 5000;
  int churn_threads = 1;
  int hold = 128;  // Connections held open per churn worker.
  int scrapers = 10;
  double scrape_pause = 0.02;  // Seconds between a scraper's scrapes.
  std::string poll_interval = "1s";
  double check_interval = 5;
  long rss_drift_kib = 1024;
  bool require_rate = false;
  std::string csv;
};

void Usage() {
  std::fprintf(
      stderr,
      "usage: sockdiag_soak --exporter=PATH [--duration=SECONDS] [--warmup=SECONDS]\n"
      "  [--rate=CONN_PER_S] [--churn-threads=N] [--hold=N] [--scrapers=N]\n"
      "  [--scrape-pause-ms=MS] [--poll-interval=DURATION] [--check-interval=SECONDS]\n"
      "  [--rss-drift-kib=KIB] [--require-rate] [--exporter-log=FILE] [--csv=FILE]\n"
      "  [--exporter-arg=FLAG]...\n"
      "Runs in a private network namespace it creates (root). Exit 0 pass, 1 fail, 2 setup.\n");
}

Options ParseOptions(int argc, char** argv) {
  Options o;
  auto num = [](const std::string& a, size_t at) {
    char* end = nullptr;
    double v = std::strtod(a.c_str() + at, &end);
    if (end == a.c_str() + at || *end != '\0' || !(v >= 0)) {
      Usage();
      SetupError("invalid number in " + a);
    }
    return v;
  };
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    auto is = [&](const char* p) { return a.rfind(p, 0) == 0; };
    if (is("--exporter=")) {
      o.exporter = a.substr(11);
    } else if (is("--exporter-log=")) {
      o.exporter_log = a.substr(15);
    } else if (is("--exporter-arg=")) {
      o.exporter_args.push_back(a.substr(15));
    } else if (is("--duration=")) {
      o.duration = num(a, 11);
    } else if (is("--warmup=")) {
      o.warmup = num(a, 9);
    } else if (is("--rate=")) {
      o.rate = num(a, 7);
    } else if (is("--churn-threads=")) {
      o.churn_threads = static_cast<int>(num(a, 16));
    } else if (is("--hold=")) {
      o.hold = static_cast<int>(num(a, 7));
    } else if (is("--scrapers=")) {
      o.scrapers = static_cast<int>(num(a, 11));
    } else if (is("--scrape-pause-ms=")) {
      o.scrape_pause = num(a, 18) / 1000.0;
    } else if (is("--poll-interval=")) {
      o.poll_interval = a.substr(16);
    } else if (is("--check-interval=")) {
      o.check_interval = num(a, 17);
    } else if (is("--rss-drift-kib=")) {
      o.rss_drift_kib = static_cast<long>(num(a, 16));
    } else if (a == "--require-rate") {
      o.require_rate = true;
    } else if (is("--csv=")) {
      o.csv = a.substr(6);
    } else {
      Usage();
      std::exit(2);
    }
  }
  if (o.exporter.empty()) {
    Usage();
    std::exit(2);
  }
  if (o.churn_threads < 1 || o.churn_threads > 16 || o.hold < 1 || o.scrapers > 64 ||
      o.duration < 10 || o.check_interval < 1) {
    Usage();
    SetupError("option out of range");
  }
  if (o.warmup < 0) o.warmup = std::min(120.0, o.duration / 2);
  if (o.warmup >= o.duration) SetupError("--warmup must be shorter than --duration");
  return o;
}

// ---------------------------------------------------------------- namespace

void EnterPrivateNetns() {
  if (unshare(CLONE_NEWNET) != 0) {
    SetupError(std::string("unshare(CLONE_NEWNET): ") + std::strerror(errno) + " (needs root)");
  }
  int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  ifreq ifr{};
  std::strncpy(ifr.ifr_name, "lo", IFNAMSIZ - 1);
  if (fd < 0 || ioctl(fd, SIOCGIFFLAGS, &ifr) != 0) SetupError("SIOCGIFFLAGS lo");
  ifr.ifr_flags = static_cast<short>(ifr.ifr_flags | IFF_UP);
  if (ioctl(fd, SIOCSIFFLAGS, &ifr) != 0) SetupError("SIOCSIFFLAGS lo up");
  close(fd);
  // 64512 ephemeral ports; no TIME_WAIT reuse and room for every TIME_WAIT
  // socket, so the population is rate x 60 s (nothing recycled or refused).
  WriteSysctl("net.ipv4.ip_local_port_range", "1024 65535");
  WriteSysctl("net.ipv4.tcp_tw_reuse", "0");
  WriteSysctl("net.ipv4.tcp_max_tw_buckets", "4000000");
  WriteSysctl("net.core.somaxconn", "65535");
  rlimit rl{65536, 65536};
  if (setrlimit(RLIMIT_NOFILE, &rl) != 0) {
    getrlimit(RLIMIT_NOFILE, &rl);
    rl.rlim_cur = rl.rlim_max;
    setrlimit(RLIMIT_NOFILE, &rl);
  }
}

// ---------------------------------------------------------------- addresses

struct Addr {
  sockaddr_storage ss{};
  socklen_t len = 0;
  int family = AF_INET;
};

Addr V4(uint32_t host, uint16_t port) {
  Addr a;
  auto* s = reinterpret_cast<sockaddr_in*>(&a.ss);
  s->sin_family = AF_INET;
  s->sin_addr.s_addr = htonl(host);
  s->sin_port = htons(port);
  a.len = sizeof(sockaddr_in);
  a.family = AF_INET;
  return a;
}

Addr V6Loopback(uint16_t port) {
  Addr a;
  auto* s = reinterpret_cast<sockaddr_in6*>(&a.ss);
  s->sin6_family = AF_INET6;
  s->sin6_addr = in6addr_loopback;
  s->sin6_port = htons(port);
  a.len = sizeof(sockaddr_in6);
  a.family = AF_INET6;
  return a;
}

int ListenOn(const Addr& at) {
  int fd = socket(at.family, SOCK_STREAM | SOCK_CLOEXEC, 0);
  int one = 1;
  setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
  if (at.family == AF_INET6) setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one));
  if (fd < 0 || bind(fd, reinterpret_cast<const sockaddr*>(&at.ss), at.len) != 0 ||
      listen(fd, 65535) != 0) {
    SetupError(std::string("listen: ") + std::strerror(errno));
  }
  return fd;
}

// ---------------------------------------------------------------- churn

struct Flow {
  Addr to;
  int listener = -1;
};

// Waits for EOF on fd (the peer's FIN): true when read() returned 0.
bool ReadEof(int fd) {
  pollfd p{fd, POLLIN, 0};
  if (poll(&p, 1, 2000) != 1) return false;
  char b;
  return read(fd, &b, 1) == 0;
}

// One churn worker: its own flows (each listener is accepted on by one
// worker only, so accept() returns the connection just made).
class ChurnWorker {
 public:
  ChurnWorker(std::vector<Flow> flows, double rate, int hold)
      : flows_(std::move(flows)), rate_(rate), hold_(static_cast<size_t>(hold)) {}

  void Run() {
    const double t0 = Now();
    double issued = 0;  // Connections due so far, including dropped backlog.
    while (!g_stop.load(std::memory_order_relaxed)) {
      const double due = rate_ * (Now() - t0) - issued;
      if (due < 1) {
        SleepFor(std::min(0.002, (1 - due) / rate_));
        continue;
      }
      double todo = due;
      if (due > rate_) {  // More than a second behind: run flat out, drop the rest.
        g_backlog_dropped.fetch_add(static_cast<uint64_t>(due - rate_ * 0.1));
        issued += due - rate_ * 0.1;
        todo = rate_ * 0.1;
      }
      const int batch = static_cast<int>(std::min(todo, 64.0));
      for (int i = 0; i < batch; ++i) OpenOne();
      issued += batch;
    }
    while (!ring_.empty()) {
      CloseOne(ring_.front());
      ring_.pop_front();
    }
  }

 private:
  struct Held {
    int client;
    int server;
    bool client_closes;
  };

  void OpenOne() {
    const Flow& f = flows_[next_ % flows_.size()];
    const bool client_closes = (next_ / flows_.size()) % 2 == 0;
    ++next_;
    int c = socket(f.to.family, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (c < 0 || connect(c, reinterpret_cast<const sockaddr*>(&f.to.ss), f.to.len) != 0) {
      g_connect_errors.fetch_add(1);
      if (c >= 0) close(c);
      return;
    }
    pollfd p{f.listener, POLLIN, 0};
    int s = poll(&p, 1, 2000) == 1 ? accept4(f.listener, nullptr, nullptr, SOCK_CLOEXEC) : -1;
    if (s < 0) {
      g_connect_errors.fetch_add(1);
      close(c);
      return;
    }
    ring_.push_back({c, s, client_closes});
    if (ring_.size() > hold_) {
      CloseOne(ring_.front());
      ring_.pop_front();
    }
  }

  // The active closer's socket goes to TIME_WAIT once the other end closes.
  static void CloseOne(const Held& h) {
    const int first = h.client_closes ? h.client : h.server;
    const int second = h.client_closes ? h.server : h.client;
    g_tw_started.fetch_add(1);
    close(first);
    if (!ReadEof(second)) g_close_anomalies.fetch_add(1);
    close(second);
    g_tw_done.fetch_add(1);
    g_conn_closed.fetch_add(1, std::memory_order_relaxed);
    (h.client_closes ? g_client_closed : g_server_closed).fetch_add(1);
  }

  std::vector<Flow> flows_;
  double rate_;
  size_t hold_;
  size_t next_ = 0;
  std::deque<Held> ring_;
};

// ---------------------------------------------------------------- exposition

// What a scrape says about the exporter, beyond being well-formed.
struct ScrapeValues {
  double polls_total = -1;
  double last_poll_ts = -1;
  double poll_duration = -1;
  double polls_skipped = -1;
  double dump_interrupted = -1;
  double tcp[2][12] = {};  // [family][state index as ss names them, see kStates]
  int tcp_series = 0;
  int collectors = 0;
  std::string failing_collectors;
  size_t samples = 0;
};

// sockdiag_tcp_sockets state labels, in an order shared with ss's names.
constexpr const char* kStates[] = {"established", "syn_sent",  "syn_recv", "fin_wait1",
                                   "fin_wait2",   "time_wait", "close",    "close_wait",
                                   "last_ack",    "listen",    "closing"};
constexpr const char* kSsStates[] = {"ESTAB",      "SYN-SENT",  "SYN-RECV", "FIN-WAIT-1",
                                     "FIN-WAIT-2", "TIME-WAIT", "UNCONN",   "CLOSE-WAIT",
                                     "LAST-ACK",   "LISTEN",    "CLOSING"};
constexpr int kNumStates = 11;
constexpr int kTimeWait = 5;
constexpr int kListen = 9;
constexpr int kEstablished = 0;

int StateIndex(std::string_view s) {
  for (int i = 0; i < kNumStates; ++i) {
    if (s == kStates[i]) return i;
  }
  return -1;
}

// Parses a scrape (tests/support: strictly enough that a truncated,
// interleaved or garbled body fails) and reads what the checks need.
// Returns "" or the first error.
std::string ReadScrape(const std::string& body, ScrapeValues* v) {
  std::string error;
  const Scrape s = Scrape::Parse(body, &error);
  if (!error.empty()) return error;
  v->samples = s.size();
  auto one = [&s](const char* name) { return s.Get(name).value_or(-1); };
  v->polls_total = one("sockdiag_polls_total");
  v->last_poll_ts = one("sockdiag_last_poll_timestamp_seconds");
  v->poll_duration = one("sockdiag_poll_duration_seconds");
  v->polls_skipped = one("sockdiag_polls_skipped_total");
  v->dump_interrupted = one("sockdiag_netlink_dump_interrupted_total");
  for (const auto& [labels, value] : s.All("sockdiag_tcp_sockets")) {
    const auto family = labels.find("family"), state = labels.find("state");
    const int st = state == labels.end() ? -1 : StateIndex(state->second);
    const int f = family == labels.end() ? -1
                  : family->second == "ipv4" ? 0
                  : family->second == "ipv6" ? 1
                                             : -1;
    if (st < 0 || f < 0) return "sockdiag_tcp_sockets: unknown family or state";
    v->tcp[f][st] = value;
    ++v->tcp_series;
  }
  for (const auto& [labels, value] : s.All("sockdiag_collector_success")) {
    ++v->collectors;
    if (value != 1) {
      const auto c = labels.find("collector");
      v->failing_collectors += (c == labels.end() ? std::string("?") : c->second) + " ";
    }
  }
  if (v->polls_total < 0 || v->last_poll_ts < 0 || v->poll_duration < 0 ||
      v->tcp_series != 2 * kNumStates || v->collectors == 0) {
    return "poll self-metrics, sockdiag_tcp_sockets or sockdiag_collector_success missing";
  }
  return "";
}

double Sum(const ScrapeValues& v, int state) { return v.tcp[0][state] + v.tcp[1][state]; }

// ---------------------------------------------------------------- HTTP

std::string Gunzip(std::string_view in, std::string* out) {
  z_stream zs{};
  if (inflateInit2(&zs, 16 + MAX_WBITS) != Z_OK) return "inflateInit2";
  zs.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(in.data()));
  zs.avail_in = static_cast<uInt>(in.size());
  char buf[65536];
  int rc;
  do {
    zs.next_out = reinterpret_cast<Bytef*>(buf);
    zs.avail_out = sizeof(buf);
    rc = inflate(&zs, Z_NO_FLUSH);
    if (rc != Z_OK && rc != Z_STREAM_END) {
      inflateEnd(&zs);
      return "gzip body does not inflate";
    }
    out->append(buf, sizeof(buf) - zs.avail_out);
  } while (rc != Z_STREAM_END && zs.avail_in > 0);
  const bool complete = rc == Z_STREAM_END && zs.avail_in == 0;
  inflateEnd(&zs);
  return complete ? "" : "gzip body truncated or trailing bytes";
}

struct ScrapeResult {
  std::string error;  // Empty on success.
  ScrapeValues values;
  double seconds = 0;
};

std::atomic<uint64_t> g_scrapes{0};
std::atomic<uint64_t> g_scrape_failures{0};
std::atomic<uint64_t> g_scrapes_gzip{0};
std::atomic<uint64_t> g_scrape_bytes{0};
std::atomic<uint64_t> g_collector_failures{0};
std::mutex g_latency_mu;
double g_latency_max = 0, g_latency_sum = 0;

// GET `path` from the exporter at `to`. Counts the connection as a TIME_WAIT
// birth (the server closes first). With `metrics`, the body must parse.
ScrapeResult Get(const Addr& to, const char* path, bool gzip, bool metrics) {
  ScrapeResult r;
  const double t0 = Now();
  g_tw_started.fetch_add(1);
  HttpOptions options;
  options.extra_headers =
      std::string("User-Agent: sockdiag_soak\r\n") + (gzip ? "Accept-Encoding: gzip\r\n" : "");
  options.abort = false;  // A normal close: counted as a TIME_WAIT birth above.
  const HttpResponse resp = HttpRequest(to.ss, to.len, path, options);
  g_tw_done.fetch_add(1);
  r.seconds = Now() - t0;
  if (!resp.error.empty()) {
    r.error = resp.error;
    return r;
  }
  if (resp.status != 200) {
    r.error = "not HTTP 200: " + std::to_string(resp.status);
    return r;
  }
  std::string headers = resp.headers;
  for (auto& ch : headers) ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
  const std::string& body = resp.body;
  const size_t cl = headers.find("\r\ncontent-length: ");
  if (cl == std::string::npos ||
      std::strtoul(headers.c_str() + cl + 18, nullptr, 10) != body.size()) {
    r.error = Format("Content-Length missing or not the body size (%zu bytes)", body.size());
    return r;
  }
  if (!metrics) return r;
  if (headers.find("\r\ncontent-type: text/plain") == std::string::npos) {
    r.error = "Content-Type is not text/plain";
    return r;
  }
  const bool gzipped = headers.find("\r\ncontent-encoding: gzip") != std::string::npos;
  if (gzipped != gzip) {
    r.error = gzip ? "gzip asked, plain sent" : "gzip sent unasked";
    return r;
  }
  std::string inflated;
  if (gzipped) {
    r.error = Gunzip(body, &inflated);
    if (!r.error.empty()) return r;
  }
  g_scrape_bytes.fetch_add(gzipped ? inflated.size() : body.size(), std::memory_order_relaxed);
  r.error = ReadScrape(gzipped ? inflated : body, &r.values);
  return r;
}

// Counts a /metrics scrape and records it as failed when it is.
void Account(const ScrapeResult& r, bool gzip, const char* who) {
  g_scrapes.fetch_add(1);
  if (gzip) g_scrapes_gzip.fetch_add(1);
  {
    std::lock_guard<std::mutex> lock(g_latency_mu);
    g_latency_max = std::max(g_latency_max, r.seconds);
    g_latency_sum += r.seconds;
  }
  if (!r.error.empty()) {
    g_scrape_failures.fetch_add(1);
    g_failures.Add(std::string("scrape by ") + who + " failed: " + r.error);
  } else if (!r.values.failing_collectors.empty()) {
    g_collector_failures.fetch_add(1);
    g_failures.Add(std::string("collector failing: ") + r.values.failing_collectors);
  }
}

constexpr uint16_t kExporterPort = 10061;

// Scraper i connects to its own loopback address (127.0.1.i+1), so no
// 4-tuple is reused within TIME_WAIT's 60 s.
void Scraper(int i, double pause) {
  const Addr to = V4(0x7f000101u + static_cast<uint32_t>(i), kExporterPort);
  const bool gzip = i % 2 == 1;
  const std::string who = "scraper " + std::to_string(i);
  while (!g_stop.load(std::memory_order_relaxed)) {
    Account(Get(to, "/metrics", gzip, true), gzip, who.c_str());
    SleepFor(pause);
  }
}

// ---------------------------------------------------------------- sampler

struct Sample {
  double t = 0;
  long tw = 0;  // Kernel TIME_WAIT sockets in the namespace (sockstat "tw").
  uint64_t started = 0, done = 0;
};

long SockstatTw(int fd) {
  char buf[1024];
  ssize_t n = pread(fd, buf, sizeof(buf) - 1, 0);
  if (n <= 0) return -1;
  buf[n] = '\0';
  const char* p = std::strstr(buf, "TCP: ");
  p = p ? std::strstr(p, " tw ") : nullptr;
  return p ? std::strtol(p + 4, nullptr, 10) : -1;
}

// A ring of the last ~80 s of 10 ms samples.
class Sampler {
 public:
  Sampler() : ring_(kCapacity) {}

  void Run() {
    const int fd = open("/proc/net/sockstat", O_RDONLY | O_CLOEXEC);
    if (fd < 0) SetupError("open /proc/net/sockstat");
    while (!g_stop.load(std::memory_order_relaxed)) {
      Sample s;
      s.done = g_tw_done.load();
      s.tw = SockstatTw(fd);
      s.started = g_tw_started.load();
      s.t = Now();
      {
        std::lock_guard<std::mutex> lock(mu_);
        ring_[count_ % kCapacity] = s;
        ++count_;
      }
      SleepFor(0.01);
    }
    close(fd);
  }
  // The latest sample taken at or before t (false when none).
  bool AtOrBefore(double t, Sample* out) const {
    std::lock_guard<std::mutex> lock(mu_);
    for (size_t i = count_; i > count_ - std::min(count_, kCapacity); --i) {
      if (ring_[(i - 1) % kCapacity].t <= t) {
        *out = ring_[(i - 1) % kCapacity];
        return true;
      }
    }
    return false;
  }
  // The earliest sample taken at or after t (false when none yet).
  bool AtOrAfter(double t, Sample* out) const {
    std::lock_guard<std::mutex> lock(mu_);
    for (size_t i = count_ - std::min(count_, kCapacity); i < count_; ++i) {
      if (ring_[i % kCapacity].t >= t) {
        *out = ring_[i % kCapacity];
        return true;
      }
    }
    return false;
  }

 private:
  static constexpr size_t kCapacity = 8192;
  mutable std::mutex mu_;
  std::vector<Sample> ring_;  // GUARDED_BY(mu_)
  size_t count_ = 0;          // Samples taken; GUARDED_BY(mu_)
};

// ---------------------------------------------------------------- monitor

struct ProcSample {
  double t = 0;
  long rss_kib = -1;
  long threads = -1;
  long fds = -1;       // All open fds.
  long conn_fds = -1;  // TCP connection sockets (not netlink, not the listener).
  uint64_t conns = 0;  // Churn connections closed so far.
  uint64_t scrapes = 0;
  double cpu = 0;  // Exporter utime + stime, seconds.
};

std::set<unsigned long> NetlinkInodes() {
  std::set<unsigned long> out;
  std::ifstream in("/proc/net/netlink");
  std::string line;
  std::getline(in, line);
  while (std::getline(in, line)) {
    std::istringstream f(line);
    std::string field;
    for (int i = 0; i < 10 && (f >> field); ++i) {
    }
    out.insert(std::strtoul(field.c_str(), nullptr, 10));
  }
  return out;
}

bool SampleProcess(pid_t pid, ProcSample* s) {
  const std::string dir = "/proc/" + std::to_string(pid);
  const std::string status = ReadFile(dir + "/status");
  if (status.empty()) return false;
  auto field = [&](const char* name) {
    size_t p = status.find(name);
    return p == std::string::npos
               ? -1L
               : std::strtol(status.c_str() + p + std::strlen(name), nullptr, 10);
  };
  s->rss_kib = field("VmRSS:");
  s->threads = field("Threads:");
  const std::set<unsigned long> netlink = NetlinkInodes();
  DIR* d = opendir((dir + "/fd").c_str());
  if (d == nullptr) return false;
  long fds = 0, sockets = 0;
  char target[128];
  while (dirent* e = readdir(d)) {
    if (e->d_name[0] == '.') continue;
    ssize_t n = readlink((dir + "/fd/" + e->d_name).c_str(), target, sizeof(target) - 1);
    if (n <= 0) continue;  // Closed since readdir(): a connection just served.
    ++fds;
    target[n] = '\0';
    unsigned long ino = 0;
    if (std::sscanf(target, "socket:[%lu]", &ino) == 1 && netlink.count(ino) == 0) ++sockets;
  }
  closedir(d);
  s->fds = fds;
  s->conn_fds = std::max(0L, sockets - 1);  // Minus the listening socket.
  const std::string stat = ReadFile(dir + "/stat");
  size_t p = stat.rfind(')');
  if (p != std::string::npos) {
    std::istringstream f(stat.substr(p + 2));
    std::string x;
    double ut = 0, st = 0;
    for (int i = 0; i < 13 && (f >> x); ++i) {
      if (i == 11) ut = std::strtod(x.c_str(), nullptr);
      if (i == 12) st = std::strtod(x.c_str(), nullptr);
    }
    s->cpu = (ut + st) / static_cast<double>(sysconf(_SC_CLK_TCK));
  }
  return true;
}

// ---------------------------------------------------------------- ss

struct SsResult {
  long count[kNumStates] = {};
  long lines = 0;
  double start = 0, end = 0;
  bool ok = false;
};

SsResult RunSs() {
  SsResult r;
  int pipefd[2];
  if (pipe2(pipefd, O_CLOEXEC) != 0) return r;
  r.start = Now();
  pid_t pid = fork();
  if (pid == 0) {
    dup2(pipefd[1], 1);
    execlp("ss", "ss", "-Htan", static_cast<char*>(nullptr));
    _exit(127);
  }
  close(pipefd[1]);
  std::string partial;
  char buf[65536];
  ssize_t n;
  auto tally = [&](std::string_view line) {
    ++r.lines;
    const std::string_view state = line.substr(0, line.find(' '));
    for (int i = 0; i < kNumStates; ++i) {
      if (state == kSsStates[i]) ++r.count[i];
    }
  };
  while ((n = read(pipefd[0], buf, sizeof(buf))) > 0) {
    partial.append(buf, static_cast<size_t>(n));
    size_t start = 0, nl;
    while ((nl = partial.find('\n', start)) != std::string::npos) {
      tally(std::string_view(partial).substr(start, nl - start));
      start = nl + 1;
    }
    partial.erase(0, start);
  }
  close(pipefd[0]);
  int status = 0;
  waitpid(pid, &status, 0);
  r.end = Now();
  r.ok = WIFEXITED(status) && WEXITSTATUS(status) == 0;
  return r;
}

// ---------------------------------------------------------------- checker

struct CheckStats {
  int checks = 0;
  long max_ss_diff = 0;       // max |exporter - ss| TIME_WAIT
  long max_ss_tolerance = 0;  // largest tolerance used
  long ss_tolerance_at_max = 0;
  double max_skew = 0;                   // W = ss end - poll start, seconds
  long max_naive = 0;                    // 2 x rate x |W| at the max skew
  long worst_bracket_margin = 1L << 40;  // min distance to the bracket's edge
  long max_bracket_width = 0;
  long max_est_diff = 0;  // ESTABLISHED |exporter - ss|, reported only
  long tw_at_last = 0, ss_tw_at_last = 0, kernel_tw_at_last = 0;
  long listen_expected = 0;
  double poll_duration_max = 0;
  double ss_seconds_max = 0;
};

constexpr double kMargin = 0.02;    // Around windows (sampling period x 2).
constexpr double kBirthLag = 0.05;  // FIN processed after the close returned.
constexpr long kSlack = 64;         // TIME_WAIT sockets still in FIN_WAIT2.

// Waits for a poll newer than `polls`; returns its scrape (error set if none
// came within the timeout).
ScrapeResult WaitFreshPoll(const Addr& to, double polls, double timeout) {
  const double deadline = Now() + timeout;
  ScrapeResult r;
  while (Now() < deadline) {
    r = Get(to, "/metrics", false, true);
    Account(r, false, "checker");
    if (!r.error.empty()) {
      SleepFor(0.05);
      continue;
    }
    if (r.values.polls_total > polls) return r;
    SleepFor(0.02);
  }
  r.error = "no new poll";
  return r;
}

void Check(const Options& o, const Sampler& sampler, const ScrapeResult& fresh, CheckStats* cs) {
  const ScrapeValues& v = fresh.values;
  const SsResult ss = RunSs();
  if (!ss.ok) {
    g_failures.Add("ss -Htan failed");
    return;
  }
  // Let the sampler pass the end of the window (it may be starved a while
  // on a loaded machine).
  Sample c;
  for (int i = 0; i < 500 && !sampler.AtOrAfter(ss.end + kMargin, &c); ++i) SleepFor(0.01);
  const double poll_end = v.last_poll_ts, poll_start = v.last_poll_ts - v.poll_duration;
  Sample a, a_births, b, s0, s1;
  if (!sampler.AtOrBefore(poll_start - kMargin, &a) ||
      !sampler.AtOrBefore(a.t - kBirthLag, &a_births) ||
      !sampler.AtOrAfter(poll_end + kMargin, &b) || !sampler.AtOrAfter(ss.end + kMargin, &c) ||
      !sampler.AtOrBefore(ss.start - kMargin, &s0) || !sampler.AtOrAfter(ss.end + kMargin, &s1) ||
      a.tw < 0 || b.tw < 0 || c.tw < 0) {
    g_failures.Add("sampler has no samples around the poll (clock or sampler stalled)");
    return;
  }
  ++cs->checks;
  const long exporter_tw = static_cast<long>(Sum(v, kTimeWait));
  const long ss_tw = ss.count[kTimeWait];

  // 1. The exporter's dump against the kernel's counter.
  const long births_poll = static_cast<long>(b.started - a_births.done);
  const long lower = b.tw - births_poll - kSlack, upper = a.tw + births_poll + kSlack;
  cs->worst_bracket_margin =
      std::min(cs->worst_bracket_margin, std::min(exporter_tw - lower, upper - exporter_tw));
  cs->max_bracket_width = std::max(cs->max_bracket_width, upper - lower);
  if (exporter_tw < lower || exporter_tw > upper) {
    g_failures.Add(
        Format("exporter TIME_WAIT %ld outside [%ld, %ld] (kernel %ld at poll start, "
               "%ld at poll end, %ld births during the poll)",
               exporter_tw, lower, upper, a.tw, b.tw, births_poll));
  }
  // ss itself against the same counter: checks the method, not the exporter.
  Sample s0b;
  sampler.AtOrBefore(s0.t - kBirthLag, &s0b);
  const long births_ss = static_cast<long>(s1.started - s0b.done);
  if (ss_tw < s1.tw - births_ss - kSlack || ss_tw > s0.tw + births_ss + kSlack) {
    g_failures.Add(
        Format("ss TIME_WAIT %ld outside the kernel counter's bracket [%ld, %ld]: "
               "the tolerance model is wrong",
               ss_tw, s1.tw - births_ss - kSlack, s0.tw + births_ss + kSlack));
  }

  // 2. The exporter against ss, over W = [poll start, ss end].
  const long births = static_cast<long>(c.started - a_births.done);
  const long deaths = std::max(0L, a.tw + births - c.tw);
  const long tolerance = births + deaths + kSlack;
  const long diff = std::labs(exporter_tw - ss_tw);
  const double skew = ss.end - poll_start;
  if (diff > cs->max_ss_diff) cs->max_ss_diff = diff;
  if (tolerance > cs->max_ss_tolerance) cs->max_ss_tolerance = tolerance;
  if (skew > cs->max_skew) {
    cs->max_skew = skew;
    cs->max_naive = static_cast<long>(2 * o.rate * skew);
    cs->ss_tolerance_at_max = tolerance;
  }
  if (diff > tolerance) {
    g_failures.Add(
        Format("TIME_WAIT exporter %ld vs ss %ld: |diff| %ld > tolerance %ld "
               "(births %ld + deaths %ld + %ld over %.3f s)",
               exporter_tw, ss_tw, diff, tolerance, births, deaths, kSlack, skew));
  }

  // 3. LISTEN is stable: exact.
  const long exporter_listen = static_cast<long>(Sum(v, kListen));
  if (exporter_listen != cs->listen_expected || ss.count[kListen] != cs->listen_expected) {
    g_failures.Add(Format("LISTEN: exporter %ld, ss %ld, expected %ld", exporter_listen,
                          ss.count[kListen], cs->listen_expected));
  }
  cs->max_est_diff = std::max(cs->max_est_diff, std::labs(static_cast<long>(Sum(v, kEstablished)) -
                                                          ss.count[kEstablished]));
  cs->tw_at_last = exporter_tw;
  cs->ss_tw_at_last = ss_tw;
  cs->kernel_tw_at_last = b.tw;
  cs->poll_duration_max = std::max(cs->poll_duration_max, v.poll_duration);
  cs->ss_seconds_max = std::max(cs->ss_seconds_max, ss.end - ss.start);
}

// ---------------------------------------------------------------- exporter

ChildProcess SpawnExporter(const Options& o) {
  std::vector<std::string> args = {o.exporter,
                                   "--web.listen-address=:" + std::to_string(kExporterPort),
                                   "--poll.interval=" + o.poll_interval};
  args.insert(args.end(), o.exporter_args.begin(), o.exporter_args.end());
  SpawnOptions options;
  options.output = o.exporter_log;
  options.die_with_parent = true;  // Never outlive the soak.
  ChildProcess exporter(args, options);
  if (exporter.pid() < 0) SetupError("cannot start " + o.exporter);
  return exporter;
}

// "" when it exited 0 within 10 s of SIGTERM; describes the outcome otherwise.
std::string StopExporter(ChildProcess* exporter) {
  const int status = exporter->Terminate(std::chrono::seconds(10));
  if (status == 0) return "";
  if (status < 0) return "did not exit within 10 s of SIGTERM";
  return status >= 128 ? Format("killed by signal %d", status - 128)
                       : Format("exit status %d", status);
}

// ---------------------------------------------------------------- the run

double Percentile(std::vector<double> v, double p) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  return v[static_cast<size_t>(p * static_cast<double>(v.size() - 1))];
}

std::string LoadAvg() {
  const std::string s = ReadFile("/proc/loadavg");
  size_t end = 0;
  for (int i = 0; i < 3 && end != std::string::npos; ++i) end = s.find(' ', end + (i > 0));
  return s.substr(0, end);
}

// Seconds in a --poll.interval value ("1s", "500ms", "2m").
double IntervalSeconds(const std::string& text) {
  const double n = std::strtod(text.c_str(), nullptr);
  if (text.size() > 2 && text.compare(text.size() - 2, 2, "ms") == 0) return n / 1000;
  if (!text.empty() && text.back() == 'm') return n * 60;
  return n;
}

// What the monitor saw after the warm-up.
struct ProcSummary {
  size_t samples = 0;
  long rss_min = 0, rss_max = 0;
  long rss_drift = 0;  // max - min of the 30-sample rolling median
  long thr_min = 0, thr_max = 0, fd_min = 0, fd_max = 0, conn_max = 0;
  long other_min = 0, other_max = 0, other_floor_first = 0, other_floor_last = 0;
};

ProcSummary Summarize(const std::vector<ProcSample>& after) {
  ProcSummary p;
  p.samples = after.size();
  if (after.empty()) return p;
  auto range = [&](auto get, long* lo, long* hi) {
    *lo = *hi = get(after[0]);
    for (const auto& s : after) {
      *lo = std::min(*lo, get(s));
      *hi = std::max(*hi, get(s));
    }
  };
  range([](const ProcSample& s) { return s.rss_kib; }, &p.rss_min, &p.rss_max);
  range([](const ProcSample& s) { return s.threads; }, &p.thr_min, &p.thr_max);
  range([](const ProcSample& s) { return s.fds; }, &p.fd_min, &p.fd_max);
  range([](const ProcSample& s) { return s.fds - s.conn_fds; }, &p.other_min, &p.other_max);
  long unused;
  range([](const ProcSample& s) { return s.conn_fds; }, &unused, &p.conn_max);
  // Drift: the level of RSS moving, not one sample catching requests in
  // flight (each holds its serialised, maybe compressed, body).
  const size_t window = std::min<size_t>(30, after.size());
  long med_lo = 1L << 40, med_hi = 0;
  for (size_t i = 0; i + window <= after.size(); ++i) {
    std::vector<long> w;
    for (size_t j = i; j < i + window; ++j) w.push_back(after[j].rss_kib);
    std::nth_element(w.begin(), w.begin() + static_cast<long>(window / 2), w.end());
    med_lo = std::min(med_lo, w[window / 2]);
    med_hi = std::max(med_hi, w[window / 2]);
  }
  p.rss_drift = med_hi - med_lo;
  // A leak raises the floor; a file open during a poll only lifts a sample.
  p.other_floor_first = p.other_floor_last = 1L << 40;
  const size_t third = std::max<size_t>(1, after.size() / 3);
  for (size_t i = 0; i < after.size(); ++i) {
    const long other = after[i].fds - after[i].conn_fds;
    if (i < third) p.other_floor_first = std::min(p.other_floor_first, other);
    if (i >= after.size() - third) p.other_floor_last = std::min(p.other_floor_last, other);
  }
  return p;
}

class Soak {
 public:
  explicit Soak(const Options& o) : o_(o) {}

  int Run() {
    Setup();
    StartThreads();
    RunChecks();
    Stop();
    return Report();
  }

 private:
  void Setup() {
    EnterPrivateNetns();
    // Listeners: 8 IPv4 destinations and ::1, 4 service ports each.
    const uint16_t service_ports[] = {80, 443, 636, 993};
    for (uint32_t d = 0; d < 8; ++d) {
      for (uint16_t port : service_ports) flows_.push_back({V4(0x7f000002u + d, port), -1});
    }
    for (uint16_t port : service_ports) flows_.push_back({V6Loopback(port), -1});
    for (auto& f : flows_) f.listener = ListenOn(f.to);
    checks_.listen_expected = static_cast<long>(flows_.size()) + 1;  // + the exporter's.

    load_start_ = LoadAvg();
    exporter_ = SpawnExporter(o_);
    if (!WaitReady()) {
      kill(exporter_.pid(), SIGKILL);
      SetupError("exporter not ready within 10 s (log: " + o_.exporter_log + ")");
    }
    start_ = Now();
    g_failures.set_start(start_);
    utsname uts{};
    uname(&uts);
    std::printf("soak: %s, kernel %s, %ld cores, load %s at start\n", o_.exporter.c_str(),
                uts.release, sysconf(_SC_NPROCESSORS_ONLN), load_start_.c_str());
    std::printf(
        "soak: %.0f s (warm-up %.0f s), target %.0f connections/s on %zu flows, %d churn "
        "thread(s), %d scrapers (pause %.0f ms), exporter --poll.interval=%s\n",
        o_.duration, o_.warmup, o_.rate, flows_.size(), o_.churn_threads, o_.scrapers,
        o_.scrape_pause * 1e3, o_.poll_interval.c_str());
    std::fflush(stdout);
  }

  bool WaitReady() {
    for (int i = 0; i < 200; ++i) {
      SleepFor(0.05);
      if (Get(checker_, "/-/ready", false, false).error.empty()) return true;
    }
    return false;
  }

  void StartThreads() {
    threads_.emplace_back([this] { sampler_.Run(); });
    const size_t n = static_cast<size_t>(o_.churn_threads);
    for (size_t w = 0; w < n; ++w) {
      std::vector<Flow> mine;
      for (size_t f = w; f < flows_.size(); f += n) mine.push_back(flows_[f]);
      workers_.push_back(
          std::make_unique<ChurnWorker>(std::move(mine), o_.rate / o_.churn_threads, o_.hold));
    }
    for (auto& w : workers_) threads_.emplace_back([p = w.get()] { p->Run(); });
    for (int i = 0; i < o_.scrapers; ++i) {
      threads_.emplace_back([i, pause = o_.scrape_pause] { Scraper(i, pause); });
    }
    threads_.emplace_back([this] { Monitor(); });
  }

  void Monitor() {
    double next = Now();
    while (!g_stop.load()) {
      ProcSample s;
      s.t = Now();
      s.conns = g_conn_closed.load();
      s.scrapes = g_scrapes.load();
      if (!SampleProcess(exporter_.pid(), &s) ||
          exporter_.Wait(std::chrono::milliseconds(0)) != -1) {
        exporter_died_ = true;
        g_failures.Add("exporter process died");
        g_stop = true;
        break;
      }
      {
        std::lock_guard<std::mutex> lock(proc_mu_);
        proc_.push_back(s);
      }
      next += 1;
      SleepFor(next - Now());
    }
  }

  // Every --check-interval: a fresh poll, ss right after it, the checks.
  void RunChecks() {
    const double end = start_ + o_.duration;
    const double wait_bound = 3 * IntervalSeconds(o_.poll_interval) + 10;
    double polls = -1, next_check = start_ + 3;
    while (!g_stop.load() && Now() < end) {
      SleepFor(std::min(next_check, end) - Now());
      if (g_stop.load() || Now() >= end) break;
      const ScrapeResult fresh = WaitFreshPoll(checker_, polls, wait_bound);
      if (fresh.error.empty()) {
        polls = fresh.values.polls_total;
        Check(o_, sampler_, fresh, &checks_);
      } else {
        g_failures.Add(
            Format("no new poll within %.0f s (polls_total stuck at %.0f)", wait_bound, polls));
      }
      next_check += o_.check_interval;
      if (next_check < Now()) next_check = Now() + 0.5;
    }
  }

  void Stop() {
    final_ = Get(checker_, "/metrics", false, true);
    Account(final_, false, "checker");
    end_ = Now();
    g_stop = true;
    for (auto& t : threads_) t.join();
    if (!exporter_died_) exit_outcome_ = StopExporter(&exporter_);
    if (!exit_outcome_.empty()) g_failures.Add("exporter on SIGTERM: " + exit_outcome_);
    load_end_ = LoadAvg();
  }

  int Report() {
    const double elapsed = end_ - start_;
    std::vector<double> rates;  // Connections per second, second by second.
    std::vector<ProcSample> after;
    for (size_t i = 1; i < proc_.size(); ++i) {
      const double dt = proc_[i].t - proc_[i - 1].t;
      rates.push_back(dt > 0 ? static_cast<double>(proc_[i].conns - proc_[i - 1].conns) / dt : 0);
      if (proc_[i].t >= start_ + o_.warmup) after.push_back(proc_[i]);
    }
    const double mean_rate = static_cast<double>(g_conn_closed.load()) / elapsed;
    size_t slow = 0;
    for (double r : rates) slow += r < 0.9 * o_.rate;
    const bool sustained = mean_rate >= 0.99 * o_.rate &&
                           static_cast<double>(slow) <= 0.05 * static_cast<double>(rates.size());
    const ProcSummary p = Summarize(after);
    if (p.samples < 5) {
      g_failures.Add("fewer than 5 process samples after the warm-up");
    } else {
      if (p.rss_drift > o_.rss_drift_kib) {
        g_failures.Add(Format("RSS drift %ld KiB > %ld KiB after warm-up (samples %ld..%ld KiB)",
                              p.rss_drift, o_.rss_drift_kib, p.rss_min, p.rss_max));
      }
      if (p.thr_max != p.thr_min) {
        g_failures.Add(Format("threads not flat: %ld..%ld", p.thr_min, p.thr_max));
      }
      if (p.other_max - p.other_min > 2 || p.other_floor_last > p.other_floor_first) {
        g_failures.Add(
            Format("fds other than connections not flat: %ld..%ld, floor %ld in the "
                   "first third, %ld in the last",
                   p.other_min, p.other_max, p.other_floor_first, p.other_floor_last));
      }
      if (p.conn_max > o_.scrapers + 3) {
        g_failures.Add(Format("%ld connection sockets open at once for %d clients", p.conn_max,
                              o_.scrapers + 1));
      }
    }
    if (checks_.checks == 0) g_failures.Add("no consistency check completed");
    const double ticks = elapsed / IntervalSeconds(o_.poll_interval);
    const double polled = final_.values.polls_total + final_.values.polls_skipped;
    if (polled < 0.8 * ticks) {
      g_failures.Add(
          Format("poll loop stalled: %.0f polls + skipped ticks in %.0f intervals", polled, ticks));
    }
    if (o_.require_rate && !sustained) {
      g_failures.Add(Format("rate not sustained: mean %.0f/s, %zu of %zu s below 90%% of %.0f/s",
                            mean_rate, slow, rates.size(), o_.rate));
    }
    size_t log_warn = 0, log_error = 0;
    {
      std::ifstream in(o_.exporter_log);
      std::string line;
      while (std::getline(in, line)) {
        log_warn += line.find("level=warn") != std::string::npos;
        log_error += line.find("level=error") != std::string::npos;
      }
    }
    const double exporter_cpu = proc_.empty() ? 0 : proc_.back().cpu - proc_.front().cpu;
    if (!o_.csv.empty()) WriteCsv(rates);

    const uint64_t scrapes = g_scrapes.load();
    std::printf(
        "churn: %.0f connections/s mean over %.0f s (target %.0f; per second p5 %.0f, "
        "min %.0f; %zu s below 90%%)%s\n",
        mean_rate, elapsed, o_.rate, Percentile(rates, 0.05), Percentile(rates, 0), slow,
        sustained ? "" : "  [machine could not sustain the target rate]");
    std::printf(
        "churn: %llu connections (%llu client-closed, %llu server-closed), %llu connect "
        "errors, %llu close anomalies, backlog dropped %llu\n",
        Ull(g_conn_closed), Ull(g_client_closed), Ull(g_server_closed), Ull(g_connect_errors),
        Ull(g_close_anomalies), Ull(g_backlog_dropped));
    double lat_sum, lat_max;
    {
      std::lock_guard<std::mutex> lock(g_latency_mu);
      lat_sum = g_latency_sum;
      lat_max = g_latency_max;
    }
    std::printf(
        "scrapes: %llu (%.0f/s, %llu gzip), %llu failed, %llu with a failing collector; "
        "latency mean %.1f ms, max %.1f ms; %.1f MB parsed\n",
        Ull(g_scrapes), static_cast<double>(scrapes) / elapsed, Ull(g_scrapes_gzip),
        Ull(g_scrape_failures), Ull(g_collector_failures),
        scrapes ? lat_sum / static_cast<double>(scrapes) * 1e3 : 0.0, lat_max * 1e3,
        static_cast<double>(g_scrape_bytes.load()) / 1e6);
    std::printf(
        "exporter: %.0f polls (%.0f skipped, %.0f dump restarts), poll max %.0f ms, CPU "
        "%.1f%% of a core, log %zu warn / %zu error lines, SIGTERM: %s\n",
        final_.values.polls_total, final_.values.polls_skipped, final_.values.dump_interrupted,
        checks_.poll_duration_max * 1e3, 100 * exporter_cpu / elapsed, log_warn, log_error,
        exit_outcome_.empty() ? "exit 0" : exit_outcome_.c_str());
    std::printf(
        "after warm-up (%zu samples): RSS %ld..%ld KiB (drift of the 30 s median %ld "
        "KiB), fds %ld..%ld (connection sockets <= %ld, others %ld..%ld), threads "
        "%ld..%ld\n",
        p.samples, p.rss_min, p.rss_max, p.rss_drift, p.fd_min, p.fd_max, p.conn_max, p.other_min,
        p.other_max, p.thr_min, p.thr_max);
    const CheckStats& c = checks_;
    std::printf(
        "consistency: %d checks; TIME_WAIT at the last: exporter %ld, ss %ld, kernel "
        "%ld; max |exporter - ss| %ld (tolerance up to %ld; at the largest skew %.0f ms "
        "the tolerance was %ld, 2 x rate x skew %ld); exporter inside the kernel "
        "bracket with >= %ld to spare (bracket width <= %ld); LISTEN exact (%ld); max "
        "ESTABLISHED |diff| %ld; ss took <= %.0f ms\n",
        c.checks, c.tw_at_last, c.ss_tw_at_last, c.kernel_tw_at_last, c.max_ss_diff,
        c.max_ss_tolerance, c.max_skew * 1e3, c.ss_tolerance_at_max, c.max_naive,
        c.worst_bracket_margin, c.max_bracket_width, c.listen_expected, c.max_est_diff,
        c.ss_seconds_max * 1e3);
    std::printf("load average %s at start, %s at end\n", load_start_.c_str(), load_end_.c_str());
    const size_t failures = g_failures.count();
    for (const auto& f : g_failures.first()) std::printf("FAIL: %s\n", f.c_str());
    std::printf("RESULT: %s (%zu failures)\n", failures == 0 ? "PASS" : "FAIL", failures);
    return failures == 0 ? 0 : 1;
  }

  static unsigned long long Ull(const std::atomic<uint64_t>& v) { return v.load(); }

  void WriteCsv(const std::vector<double>& rates) const {
    std::ofstream csv(o_.csv);
    csv << "t,rss_kib,threads,fds,conn_fds,conns_per_s,scrapes,exporter_cpu_s\n";
    for (size_t i = 1; i < proc_.size(); ++i) {
      const ProcSample& s = proc_[i];
      csv << Format("%.1f,%ld,%ld,%ld,%ld,%.0f,%llu,%.2f\n", s.t - start_, s.rss_kib, s.threads,
                    s.fds, s.conn_fds, rates[i - 1], static_cast<unsigned long long>(s.scrapes),
                    s.cpu);
    }
  }

  const Options& o_;
  std::vector<Flow> flows_;
  const Addr checker_ = V4(0x7f0001ffu, kExporterPort);  // 127.0.1.255
  ChildProcess exporter_;
  double start_ = 0, end_ = 0;
  std::string load_start_, load_end_, exit_outcome_;
  Sampler sampler_;
  std::vector<std::unique_ptr<ChurnWorker>> workers_;
  std::vector<std::thread> threads_;
  std::mutex proc_mu_;
  std::vector<ProcSample> proc_;  // GUARDED_BY(proc_mu_) while the monitor runs.
  std::atomic<bool> exporter_died_{false};
  CheckStats checks_;
  ScrapeResult final_;
};

}  // namespace

int main(int argc, char** argv) {
  const Options o = ParseOptions(argc, argv);
  if (access(o.exporter.c_str(), X_OK) != 0) SetupError("not executable: " + o.exporter);
  alarm(static_cast<unsigned>(o.duration + 180));  // Hard bound; the exporter dies with us.
  signal(SIGPIPE, SIG_IGN);
  return Soak(o).Run();
}
