// sockdiag_bench: cost of one poll against the kernel's own floor.
//
// Run inside a private network namespace (bench/run.sh does). For each
// population size it builds sockets on loopback (ESTABLISHED pairs plus
// client TIME_WAIT, which holds no fd) spread over --destinations
// destinations, then measures thread/child CPU time:
//   floor     a minimal sock_diag dump: request every state of both
//             families, recv into a 64 KiB buffer, walk the headers;
//   sockets, +ports, all
//             one NamespacePoller::Poll() with only the sockets collector,
//             with sockets and ports, and with the default collectors;
//   ss        `ss -tan` (fork/exec, output to /dev/null; child CPU);
//   node_exporter  CPU of prometheus-node-exporter per scrape with only its
//             tcpstat collector (utime+stime delta over --repeat scrapes);
//   RSS       VmRSS of the real sockdiag_exporter binary after a few polls.
// The floor swings by tens of percent from run to run on a shared machine,
// so the floor and the three polls run in alternating rounds (--repeat of
// them) and each is reported as the minimum over its rounds: the run least
// disturbed by the rest of the machine. Prints one markdown row per size.

#include <arpa/inet.h>
#include <fcntl.h>
#include <libmnl/libmnl.h>
#include <linux/inet_diag.h>
#include <linux/sock_diag.h>
#include <netinet/in.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <sys/mount.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <memory>
#include <string>
#include <vector>

#include "flags.h"
#include "netlink/inet_diag.h"
#include "poll/poller.h"
#include "sockdiag/collector.h"
#include "support/http.h"
#include "support/process.h"
#include "support/system.h"
#include "thread_cpu.h"

namespace {

using namespace sockdiag;
using sockdiag::testing::ChildProcess;
using sockdiag::testing::HttpGet;
using sockdiag::testing::Median;
using sockdiag::testing::SetSysctl;
using sockdiag::testing::SpawnOptions;
using sockdiag::testing::WaitUntil;

double Min(const std::vector<double>& v) { return *std::min_element(v.begin(), v.end()); }

void Die(const char* what) {
  std::perror(what);
  std::exit(1);
}

sockaddr_in Addr(uint32_t host, uint16_t port) {
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(host);
  a.sin_port = htons(port);
  return a;
}

int ListenOn(uint32_t host, uint16_t port) {
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  int one = 1;
  setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
  sockaddr_in a = Addr(host, port);
  if (bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof(a)) != 0) Die("bind");
  if (listen(fd, 65535) != 0) Die("listen");
  return fd;
}

// Grows the population to `total` sockets, mostly client TIME_WAIT, spread
// round-robin over `destinations` destinations 127.0.0.2:9000, .3, ... (at
// most 20k sockets each on average at 1M, so connect() never searches a
// crowded range); one connection in ten stays open as an ESTABLISHED pair
// (2 sockets, 2 fds).
class Population {
 public:
  void Grow(size_t total) {
    while (count_ < total) {
      if (listeners_.size() < destinations_) {
        uint32_t host = 0x7f000002u + static_cast<uint32_t>(listeners_.size());  // 127.0.0.2+
        listeners_.push_back({ListenOn(host, 9000), host});
      }
      const auto& [lfd, host] = listeners_[next_++ % listeners_.size()];
      int c = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
      sockaddr_in a = Addr(host, 9000);
      if (connect(c, reinterpret_cast<sockaddr*>(&a), sizeof(a)) != 0) Die("connect");
      int s = accept4(lfd, nullptr, nullptr, SOCK_CLOEXEC);
      if (s < 0) Die("accept");
      if (count_ % 10 == 0 && established_.size() < max_fds_) {
        established_.push_back(c);  // Keep 1 in 10 as an ESTABLISHED pair.
        established_.push_back(s);
        count_ += 2;
        continue;
      }
      close(c);  // Client closes first: TIME_WAIT on the client side.
      pollfd p{s, POLLIN, 0};
      poll(&p, 1, 1000);
      close(s);
      count_ += 1;
    }
  }

 public:
  Population(size_t max_fds, size_t destinations)
      : max_fds_(max_fds), destinations_(std::max<size_t>(destinations, 1)) {}

 private:
  size_t max_fds_;
  size_t destinations_;
  size_t next_ = 0;
  size_t count_ = 0;
  std::vector<std::pair<int, uint32_t>> listeners_;
  std::vector<int> established_;
};

// The floor: the cheapest complete dump of the same sockets.
double FloorDump(size_t* messages) {
  mnl_socket* nl = mnl_socket_open2(NETLINK_SOCK_DIAG, SOCK_CLOEXEC);
  if (nl == nullptr || mnl_socket_bind(nl, 0, MNL_SOCKET_AUTOPID) < 0) Die("netlink");
  std::vector<char> buf(64 * 1024);
  const double t0 = ThreadCpu();
  *messages = 0;
  for (int family : {AF_INET, AF_INET6}) {
    char req[128] = {};
    nlmsghdr* nlh = mnl_nlmsg_put_header(req);
    nlh->nlmsg_type = SOCK_DIAG_BY_FAMILY;
    nlh->nlmsg_flags = NLM_F_REQUEST | NLM_F_DUMP;
    auto* r =
        static_cast<inet_diag_req_v2*>(mnl_nlmsg_put_extra_header(nlh, sizeof(inet_diag_req_v2)));
    r->sdiag_family = static_cast<uint8_t>(family);
    r->sdiag_protocol = IPPROTO_TCP;
    r->idiag_states = 0x1fff;
    if (mnl_socket_sendto(nl, nlh, nlh->nlmsg_len) < 0) Die("sendto");
    bool done = false;
    while (!done) {
      ssize_t n = recv(mnl_socket_get_fd(nl), buf.data(), buf.size(), 0);
      if (n <= 0) Die("recv");
      int len = static_cast<int>(n);
      for (auto* m = reinterpret_cast<nlmsghdr*>(buf.data()); mnl_nlmsg_ok(m, len);
           m = mnl_nlmsg_next(m, &len)) {
        if (m->nlmsg_type == NLMSG_DONE || m->nlmsg_type == NLMSG_ERROR) {
          done = true;
          break;
        }
        ++*messages;
      }
    }
  }
  const double cpu = ThreadCpu() - t0;
  mnl_socket_close(nl);
  return cpu;
}

double SsCpu() {
  pid_t pid = fork();
  if (pid == 0) {
    int devnull = open("/dev/null", O_WRONLY);
    dup2(devnull, 1);
    execlp("ss", "ss", "-tan", static_cast<char*>(nullptr));
    _exit(127);
  }
  int status;
  rusage ru{};
  wait4(pid, &status, 0, &ru);
  return static_cast<double>(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) +
         static_cast<double>(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) * 1e-6;
}

bool WaitHttp(uint16_t port, const char* path) {
  return WaitUntil([&] { return HttpGet(port, path).status == 200; }, std::chrono::seconds(10));
}

void WriteSysctl(const char* dotted, const char* value) {
  const std::string error = SetSysctl(dotted, value);
  if (!error.empty()) {
    std::fprintf(stderr, "%s\n", error.c_str());
    std::exit(1);
  }
}

// The exporter and node_exporter this bench starts die with it: an orphan
// would keep the port and the fds it inherited (the heavy-run lock of
// `flock ... bench/run.sh` among them).
ChildProcess Start(std::vector<std::string> argv) {
  SpawnOptions options;
  options.die_with_parent = true;
  return ChildProcess(std::move(argv), options);
}
// utime+stime of a process in seconds, from /proc/<pid>/stat.
double ProcessCpu(pid_t pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/stat");
  std::string stat;
  std::getline(in, stat);
  size_t p = stat.rfind(')');
  std::vector<std::string> f;
  std::string cur;
  for (size_t i = p + 2; i < stat.size(); ++i) {
    if (stat[i] == ' ') {
      f.push_back(cur);
      cur.clear();
    } else {
      cur += stat[i];
    }
  }
  // Fields after ")": state(0) ... utime(11) stime(12).
  return (std::stod(f[11]) + std::stod(f[12])) / static_cast<double>(sysconf(_SC_CLK_TCK));
}

long RssKiB(pid_t pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/status");
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind("VmRSS:", 0) == 0) return std::stol(line.substr(6));
  }
  return -1;
}

// Pods mode: `count` namespaces of `per_ns` client TIME_WAIT sockets each,
// polled by the real Poller (setns into each, sockets+sysctl+netstat+ports)
// against the sum of one raw dump per namespace.
void NetnsBench(int count, size_t per_ns, int repeat) {
  // Private mount namespace: the bind mounts that keep the namespaces alive
  // vanish with this process.
  if (unshare(CLONE_NEWNS) != 0) Die("unshare(CLONE_NEWNS)");
  if (mount(nullptr, "/", nullptr, MS_REC | MS_PRIVATE, nullptr) != 0) Die("mount private");
  char dir[] = "/tmp/sockdiag-bench-netns-XXXXXX";
  if (mkdtemp(dir) == nullptr) Die("mkdtemp");
  const std::string run_dir = std::string(dir) + "/run", fake_proc = std::string(dir) + "/proc";
  mkdir(run_dir.c_str(), 0755);
  mkdir(fake_proc.c_str(), 0755);
  // A procfs root without pid directories: discovery sees only run_dir.
  for (const char* link : {"sys", "thread-self", "self"}) {
    if (symlink((std::string("/proc/") + link).c_str(), (fake_proc + "/" + link).c_str()) != 0) {
      Die("symlink");
    }
  }
  const int self = open("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC);
  std::vector<int> ns_fds, listeners;
  for (int i = 0; i < count; ++i) {
    if (unshare(CLONE_NEWNET) != 0) Die("unshare(CLONE_NEWNET)");
    if (system("ip link set lo up") != 0) Die("ip link");
    const std::string path = run_dir + "/ns" + std::to_string(i);
    close(open(path.c_str(), O_CREAT | O_WRONLY, 0644));
    if (mount("/proc/thread-self/ns/net", path.c_str(), nullptr, MS_BIND, nullptr) != 0) {
      Die("bind mount");
    }
    ns_fds.push_back(open(path.c_str(), O_RDONLY | O_CLOEXEC));
    const int l = ListenOn(0x7f000002u, 9000);
    listeners.push_back(l);
    for (size_t k = 0; k < per_ns; ++k) {
      int c = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
      sockaddr_in a = Addr(0x7f000002u, 9000);
      if (connect(c, reinterpret_cast<sockaddr*>(&a), sizeof(a)) != 0) Die("connect");
      int sv = accept4(l, nullptr, nullptr, SOCK_CLOEXEC);
      close(c);
      pollfd p{sv, POLLIN, 0};
      poll(&p, 1, 1000);
      close(sv);
    }
    if (setns(self, CLONE_NEWNET) != 0) Die("setns back");
  }

  Config config;
  if (!ParseFlags({"--netns.mode=pods", "--netns.max=100000", "--path.procfs=" + fake_proc,
                   "--netns.run-dir=" + run_dir, "--no-collector.conntrack",
                   "--no-collector.conntrack_table"},
                  &config)
           .ok()) {
    Die("flags");
  }
  Poller poller(config);
  poller.PollOnce();  // Opens one sock_diag socket per namespace.
  std::vector<double> floor, ours;
  size_t messages = 0;
  for (int r = 0; r < repeat; ++r) {
    double sum = 0;
    for (int fd : ns_fds) {
      const double t0 = ThreadCpu();
      if (setns(fd, CLONE_NEWNET) != 0) Die("setns");
      size_t m = 0;
      FloorDump(&m);
      messages += m;
      if (setns(self, CLONE_NEWNET) != 0) Die("setns back");
      sum += ThreadCpu() - t0;
    }
    floor.push_back(sum);
    const double t0 = ThreadCpu();
    poller.PollOnce();
    ours.push_back(ThreadCpu() - t0);
  }
  const double f = Min(floor), o = Min(ours);
  std::printf("\nmin of %d alternating rounds (median in brackets)\n\n", repeat);
  std::printf("| namespaces x sockets | sum of raw dumps CPU | pods-mode poll CPU | ratio |\n");
  std::printf("|---:|---:|---:|---:|\n");
  std::printf(
      "| %d x %zu (%zu messages per pass) | %.2f ms (%.2f) | %.2f ms (%.2f) | **%.2fx** "
      "(%.2fx) |\n",
      count, per_ns, messages / static_cast<size_t>(repeat), f * 1e3, Median(floor) * 1e3, o * 1e3,
      Median(ours) * 1e3, o / f, Median(ours) / Median(floor));
  for (int fd : ns_fds) close(fd);
  for (int fd : listeners) close(fd);
}

}  // namespace

int main(int argc, char** argv) {
  std::vector<size_t> sizes = {10000, 100000};
  int repeat = 7;
  std::string exporter_bin, node_exporter_bin;
  int netns_count = 0;
  size_t netns_sockets = 0;
  size_t destinations = 64;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    if (a.rfind("--sizes=", 0) == 0) {
      sizes.clear();
      for (size_t p = 8; p < a.size();) {
        size_t c = a.find(',', p);
        sizes.push_back(std::stoul(a.substr(p, c - p)));
        p = c == std::string::npos ? a.size() : c + 1;
      }
    } else if (a.rfind("--exporter=", 0) == 0) {
      exporter_bin = a.substr(11);
    } else if (a.rfind("--node-exporter=", 0) == 0) {
      node_exporter_bin = a.substr(16);
    } else if (a.rfind("--netns=", 0) == 0) {  // COUNTxSOCKETS, e.g. 100x1000
      const std::string v = a.substr(8);
      netns_count = std::stoi(v.substr(0, v.find('x')));
      netns_sockets = std::stoul(v.substr(v.find('x') + 1));
    } else if (a.rfind("--repeat=", 0) == 0) {
      repeat = std::stoi(a.substr(9));
    } else if (a.rfind("--destinations=", 0) == 0) {
      destinations = std::stoul(a.substr(15));
    } else {
      std::fprintf(stderr,
                   "usage: sockdiag_bench [--sizes=N,N] [--repeat=N] [--destinations=N] "
                   "[--netns=COUNTxSOCKETS]\n");
      return 2;
    }
  }
  rlimit rl{1 << 20, 1 << 20};
  if (setrlimit(RLIMIT_NOFILE, &rl) != 0) {
    getrlimit(RLIMIT_NOFILE, &rl);
    rl.rlim_cur = rl.rlim_max;
    setrlimit(RLIMIT_NOFILE, &rl);
  }
  WriteSysctl("net.ipv4.ip_local_port_range", "10000 65000");
  WriteSysctl("net.ipv4.tcp_max_tw_buckets", "2000000");
  WriteSysctl("net.ipv4.tcp_tw_reuse", "0");

  // The three exporter configurations measured against the floor.
  struct Variant {
    const char* name;
    std::vector<std::string> flags;
    Config config;
    std::unique_ptr<NamespacePoller> poller;
    std::vector<double> cpu;
  };
  std::vector<Variant> variants;
  variants.push_back(
      {"sockets", {"--collector.disable-defaults", "--collector.sockets"}, {}, {}, {}});
  variants.push_back({"+ports",
                      {"--collector.disable-defaults", "--collector.sockets", "--collector.ports"},
                      {},
                      {},
                      {}});
  variants.push_back({"all", {}, {}, {}, {}});
  ProcFs procfs("/proc");
  LocalNetlinkFactory netlink;
  for (auto& v : variants) {
    if (!ParseFlags(v.flags, &v.config).ok()) return 1;
    v.poller = std::make_unique<NamespacePoller>(v.config, procfs, "net", &netlink);
    v.poller->Poll();  // Warm up (opens the socket, reads sysctls).
  }

  // node_exporter idles between scrapes; the exporter binary polls on its
  // own, so it runs only after a size's rounds (for its RSS).
  ChildProcess node;
  if (!node_exporter_bin.empty()) {
    node = Start({node_exporter_bin, "--web.listen-address=127.0.0.1:9100",
                  "--collector.disable-defaults", "--collector.tcpstat"});
    if (!WaitHttp(9100, "/metrics")) Die("node_exporter did not answer");
  }

  std::printf("%zu destinations; min of %d alternating rounds (median in brackets)\n\n",
              destinations, repeat);
  std::printf(
      "| sockets | floor: raw dump CPU | sockets | sockets + ports | all defaults | "
      "ss -tan CPU | node_exporter tcpstat CPU/scrape | sockdiag_exporter RSS |\n");
  std::printf("|---:|---:|---:|---:|---:|---:|---:|---:|\n");
  Population pop(rl.rlim_cur > 1000 ? (rl.rlim_cur - 1000) / 2 * 2 : 0, destinations);
  for (size_t n : sizes) {
    pop.Grow(n);
    std::vector<double> floor, ss;
    size_t messages = 0;
    uint64_t streamed = 0;
    for (auto& v : variants) v.cpu.clear();
    for (int r = 0; r < repeat; ++r) {
      floor.push_back(FloorDump(&messages));
      for (auto& v : variants) {
        const double t0 = ThreadCpu();
        auto result = v.poller->Poll();
        v.cpu.push_back(ThreadCpu() - t0);
        streamed = result.stream.sockets;
      }
    }
    // ss after the rounds: a 250 ms child between them would only evict
    // the caches the rounds are compared on.
    for (int r = 0; r < std::min(repeat, 7); ++r) ss.push_back(SsCpu());
    const double f = Min(floor);
    auto cell = [&](const std::vector<double>& cpu) {
      char buf[96];
      std::snprintf(buf, sizeof buf, "%.2f ms, **%.2fx** (%.2fx)", Min(cpu) * 1e3, Min(cpu) / f,
                    Median(cpu) / Median(floor));
      return std::string(buf);
    };
    std::string node_cpu = "n/a", rss = "n/a";
    if (node.pid() > 0) {
      HttpGet(9100, "/metrics");  // Warm.
      const double c0 = ProcessCpu(node.pid());
      for (int r = 0; r < repeat; ++r) HttpGet(9100, "/metrics");
      node_cpu = std::to_string((ProcessCpu(node.pid()) - c0) / repeat * 1e3).substr(0, 6) + " ms";
    }
    if (!exporter_bin.empty()) {
      ChildProcess exporter =
          Start({exporter_bin, "--web.listen-address=127.0.0.1:10061", "--poll.interval=200ms"});
      if (!WaitHttp(10061, "/-/ready")) Die("exporter did not become ready");
      usleep(1500000);  // Several polls at this size.
      rss =
          std::to_string(static_cast<double>(RssKiB(exporter.pid())) / 1024.0).substr(0, 5) + " MiB";
    }
    std::printf(
        "| %zu (dumped %zu, streamed %llu) | %.2f ms (%.2f) | %s | %s | %s | %.2f ms | %s | %s |\n",
        n, messages, static_cast<unsigned long long>(streamed), f * 1e3, Median(floor) * 1e3,
        cell(variants[0].cpu).c_str(), cell(variants[1].cpu).c_str(), cell(variants[2].cpu).c_str(),
        Median(ss) * 1e3, node_cpu.c_str(), rss.c_str());
    std::fflush(stdout);
  }
  if (netns_count > 0) NetnsBench(netns_count, netns_sockets, repeat);
  return 0;
}
