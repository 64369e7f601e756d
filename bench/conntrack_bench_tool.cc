// Helper of bench/conntrack_bench.sh, run inside a private network
// namespace whose conntrack tracks loopback traffic:
//   fill N        creates N UDP conntrack entries (distinct source tuples
//                 on 127.1.x.1, to a bound sink on 127.0.0.1:9)
//   rawdump R     the floor: R plain libmnl ctnetlink table dumps that only
//                 count messages; prints entries, the fastest and median
//                 wall seconds and the CPU seconds (user + system) per dump
//   stats R       R polls of GET_STATS + GET_STATS_CPU; prints median microseconds
//   compare R     R rounds of: one plain dump, one conntrack_table collector
//                 poll, one conntrack collector poll (the exporter's code,
//                 linked in), interleaved so machine noise hits both alike;
//                 prints per side the fastest and median wall seconds and
//                 the median CPU seconds
// Only GET requests are sent to the kernel; entries come from real packets.
#include <arpa/inet.h>
#include <libmnl/libmnl.h>
#include <linux/netfilter/nfnetlink.h>
#include <linux/netfilter/nfnetlink_conntrack.h>
#include <netinet/in.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "collectors/collectors.h"
#include "poll/poller.h"
#include "support/system.h"

namespace {

using sockdiag::testing::Median;

[[noreturn]] void Die(const char* what) {
  std::fprintf(stderr, "conntrack_bench_tool: %s: %s\n", what, std::strerror(errno));
  std::exit(1);
}

double Now() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

void Fill(long n) {
  int sink = socket(AF_INET, SOCK_DGRAM, 0);
  sockaddr_in to{};
  to.sin_family = AF_INET;
  to.sin_port = htons(9);
  to.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (sink < 0 || bind(sink, reinterpret_cast<sockaddr*>(&to), sizeof(to)) != 0) Die("bind sink");
  for (long i = 0; i < n; ++i) {
    int fd = socket(AF_INET, SOCK_DGRAM, 0);
    if (fd < 0) Die("socket");
    int one = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    sockaddr_in from{};
    from.sin_family = AF_INET;
    from.sin_port = htons(static_cast<uint16_t>(10000 + i % 50000));
    from.sin_addr.s_addr =
        htonl((127u << 24) | (1u << 16) | (static_cast<uint32_t>(i / 50000) << 8) | 1u);
    if (bind(fd, reinterpret_cast<sockaddr*>(&from), sizeof(from)) != 0) Die("bind source");
    if (sendto(fd, "x", 1, 0, reinterpret_cast<sockaddr*>(&to), sizeof(to)) != 1) Die("sendto");
    close(fd);
    if (i % 20000 == 19999) {  // Keep the sink from growing without bound.
      char buf[64];
      while (recv(sink, buf, sizeof(buf), MSG_DONTWAIT) > 0) {
      }
    }
  }
  close(sink);
}

struct mnl_socket* Open() {
  struct mnl_socket* nl = mnl_socket_open(NETLINK_NETFILTER);
  if (nl == nullptr || mnl_socket_bind(nl, 0, MNL_SOCKET_AUTOPID) < 0) Die("netlink");
  int rcvbuf = 1 << 20;
  setsockopt(mnl_socket_get_fd(nl), SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof(rcvbuf));
  return nl;
}

int Count(const struct nlmsghdr*, void* data) {
  ++*static_cast<long*>(data);
  return MNL_CB_OK;
}

// Sends a ctnetlink GET of `type` and runs callbacks until the kernel is done.
long Request(struct mnl_socket* nl, uint8_t type, uint16_t flags, std::vector<char>& buf) {
  static uint32_t seq = 1;
  char req[64];
  struct nlmsghdr* nlh = mnl_nlmsg_put_header(req);
  nlh->nlmsg_type = static_cast<uint16_t>((NFNL_SUBSYS_CTNETLINK << 8) | type);
  nlh->nlmsg_flags = flags;
  nlh->nlmsg_seq = ++seq;
  auto* g = static_cast<nfgenmsg*>(mnl_nlmsg_put_extra_header(nlh, sizeof(nfgenmsg)));
  g->nfgen_family = AF_UNSPEC;
  g->version = NFNETLINK_V0;
  g->res_id = 0;
  if (mnl_socket_sendto(nl, nlh, nlh->nlmsg_len) < 0) Die("send");
  const uint32_t portid = mnl_socket_get_portid(nl);
  long messages = 0;
  for (;;) {
    ssize_t n = mnl_socket_recvfrom(nl, buf.data(), buf.size());
    if (n < 0) Die("recv");
    int r = mnl_cb_run(buf.data(), static_cast<size_t>(n), seq, portid, Count, &messages);
    if (r < 0) Die("dump");
    if (r == MNL_CB_STOP) return messages;
  }
}

// CPU seconds (user + system) this process used so far.
double CpuSeconds() {
  rusage ru{};
  getrusage(RUSAGE_THREAD, &ru);
  auto sec = [](const timeval& tv) {
    return static_cast<double>(tv.tv_sec) + static_cast<double>(tv.tv_usec) / 1e6;
  };
  return sec(ru.ru_utime) + sec(ru.ru_stime);
}

struct Samples {
  std::vector<double> wall, cpu;
  template <typename F>
  void Time(F fn) {
    const double w0 = Now(), c0 = CpuSeconds();
    fn();
    cpu.push_back(CpuSeconds() - c0);
    wall.push_back(Now() - w0);
  }
  void Print(const char* name) const {
    std::printf("%s %.6f %.6f %.6f\n", name, *std::min_element(wall.begin(), wall.end()),
                Median(wall), Median(cpu));
  }
};

int Compare(long rounds) {
  sockdiag::Config config;
  config.conntrack_dump_interval = std::chrono::milliseconds(1);
  sockdiag::ProcFs procfs("/proc");
  sockdiag::LocalNetlinkFactory factory;
  sockdiag::PollContext ctx{config, procfs, "net", &factory};
  auto table = sockdiag::NewConntrackTableCollector(config);
  auto stats = sockdiag::NewConntrackCollector(config);
  struct mnl_socket* nl = Open();
  std::vector<char> buf(64 * 1024);
  Samples raw, collector, stats_poll;
  long entries = 0;
  for (long i = 0; i < rounds; ++i) {
    raw.Time([&] { entries = Request(nl, IPCTNL_MSG_CT_GET, NLM_F_REQUEST | NLM_F_DUMP, buf); });
    usleep(2000);  // Past the 1 ms dump interval.
    collector.Time([&] {
      sockdiag::MetricFamilies out;
      sockdiag::Status s = table->Collect(ctx, &out);
      if (!s.ok()) {
        std::fprintf(stderr, "collector: %s\n", s.ToString().c_str());
        std::exit(1);
      }
    });
    stats_poll.Time([&] {
      sockdiag::MetricFamilies out;
      if (!stats->Collect(ctx, &out).ok()) std::exit(1);
    });
  }
  std::printf("entries %ld\n", entries);
  raw.Print("raw");
  collector.Print("collector");
  stats_poll.Print("stats");
  mnl_socket_close(nl);
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 3) {
    std::fprintf(stderr, "usage: %s fill N | rawdump R | stats R\n", argv[0]);
    return 2;
  }
  const std::string mode = argv[1];
  const long n = std::atol(argv[2]);
  if (mode == "fill") {
    Fill(n);
    return 0;
  }
  if (mode == "compare") return Compare(n);
  struct mnl_socket* nl = Open();
  std::vector<char> buf(64 * 1024);
  std::vector<double> times;
  long messages = 0;
  const double cpu0 = CpuSeconds();
  for (long i = 0; i < n; ++i) {
    const double t0 = Now();
    if (mode == "rawdump") {
      messages = Request(nl, IPCTNL_MSG_CT_GET, NLM_F_REQUEST | NLM_F_DUMP, buf);
    } else if (mode == "stats") {
      Request(nl, IPCTNL_MSG_CT_GET_STATS, NLM_F_REQUEST | NLM_F_ACK, buf);
      messages = Request(nl, IPCTNL_MSG_CT_GET_STATS_CPU, NLM_F_REQUEST | NLM_F_DUMP, buf);
    } else {
      std::fprintf(stderr, "unknown mode %s\n", mode.c_str());
      return 2;
    }
    times.push_back(Now() - t0);
  }
  if (mode == "rawdump") {
    std::printf("%ld %.6f %.6f %.6f\n", messages, *std::min_element(times.begin(), times.end()),
                Median(times), (CpuSeconds() - cpu0) / static_cast<double>(n));
  } else {
    std::printf("%ld %.1f\n", messages, Median(times) * 1e6);
  }
  mnl_socket_close(nl);
  return 0;
}
