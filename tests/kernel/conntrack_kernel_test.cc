// Conntrack collectors against the real conntrack table of a private
// namespace, cross-checked with conntrack-tools (`conntrack -C/-L/-S`).
//
// Loopback traffic is only tracked when some rule uses conntrack, so each
// test loads an nftables output rule `ct state new counter`; the scrape
// port is `notrack`ed so scraping adds no entries of its own.

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/tcp.h>
#include <sched.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <catch2/catch.hpp>
#include <cstdio>
#include <fstream>
#include <map>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "kernel/kernel_support.h"

using namespace sockdiag::testing;

namespace {

struct ShResult {
  int code = -1;
  std::string out;
};

ShResult Sh(const std::string& cmd) {
  ShResult r;
  FILE* p = popen(cmd.c_str(), "r");
  REQUIRE(p != nullptr);
  char buf[4096];
  size_t n;
  while ((n = fread(buf, 1, sizeof(buf), p)) > 0) r.out.append(buf, n);
  int status = pclose(p);
  r.code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  return r;
}

void MustSh(const std::string& cmd) {
  ShResult r = Sh("exec 2>&1\n" + cmd);
  INFO(cmd << "\n" << r.out);
  REQUIRE(r.code == 0);
}

// Tracks new connections of this namespace; scrapes on 10061/10062 stay untracked.
void TrackLoopback() {
  MustSh(R"(nft -f - <<'EOF'
table inet sockdiag_test {
  chain raw_out {
    type filter hook output priority raw;
    tcp dport { 10061, 10062 } notrack
    tcp sport { 10061, 10062 } notrack
  }
  chain raw_pre {
    type filter hook prerouting priority raw;
    tcp dport { 10061, 10062 } notrack
    tcp sport { 10061, 10062 } notrack
  }
  chain out {
    type filter hook output priority filter;
    ct state new counter
  }
}
EOF)");
}

int ConntrackCount() {
  ShResult r = Sh("conntrack -C 2>/dev/null");
  REQUIRE(r.code == 0);
  return std::stoi(r.out);
}

// `conntrack -L` without the ticking timeout column, sorted.
std::vector<std::string> ConntrackListing() {
  ShResult r = Sh("conntrack -L 2>/dev/null");
  REQUIRE(r.code == 0);
  std::vector<std::string> lines;
  std::istringstream in(r.out);
  std::string line;
  while (std::getline(in, line)) {
    std::istringstream f(line);
    std::vector<std::string> tok;
    std::string t;
    while (f >> t) tok.push_back(t);
    if (tok.size() < 3) continue;
    tok.erase(tok.begin() + 2);  // proto name, proto number, *timeout*, ...
    std::string joined;
    for (const auto& x : tok) joined += x + " ";
    lines.push_back(joined);
  }
  std::sort(lines.begin(), lines.end());
  return lines;
}

// (protocol label, state label) -> entries, from a listing as above.
std::map<std::pair<std::string, std::string>, int> ParseStates(
    const std::vector<std::string>& listing) {
  std::map<std::pair<std::string, std::string>, int> out;
  for (const auto& line : listing) {
    std::istringstream f(line);
    std::string proto, num, state;
    f >> proto >> num >> state;
    if (proto == "tcp") {
      std::transform(state.begin(), state.end(), state.begin(), ::tolower);
      if (state == "listen") state = "syn_sent2";  // conntrack-tools' name for state 9.
      out[{"tcp", state}]++;
    } else if (proto == "udp" || proto == "icmp" || proto == "icmpv6") {
      out[{proto, ""}]++;
    } else {
      out[{"other", ""}]++;
    }
  }
  return out;
}

// Sums of `conntrack -S` over CPUs, keyed by our metric stems.
std::map<std::string, double> ConntrackStatSums() {
  ShResult r = Sh("conntrack -S 2>/dev/null");
  REQUIRE(r.code == 0);
  std::map<std::string, double> sums;
  std::istringstream in(r.out);
  std::string tok;
  while (in >> tok) {
    auto eq = tok.find('=');
    if (eq == std::string::npos) continue;
    std::string key = tok.substr(0, eq);
    if (key == "cpu") continue;
    if (key == "chaintoolong") key = "chain_too_long";
    sums[key] += std::stod(tok.substr(eq + 1));
  }
  return sums;
}

void SendUdp(const std::string& host, uint16_t port, int sockets) {
  for (int i = 0; i < sockets; ++i) {
    Fd fd(socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0));
    REQUIRE(fd.get() >= 0);
    sockaddr_in to{};
    to.sin_family = AF_INET;
    to.sin_port = htons(port);
    REQUIRE(inet_pton(AF_INET, host.c_str(), &to.sin_addr) == 1);
    REQUIRE(sendto(fd.get(), "x", 1, 0, reinterpret_cast<sockaddr*>(&to), sizeof(to)) == 1);
  }
}

const char* const kTcpStates[] = {"none",     "syn_sent",   "syn_recv", "established",
                                  "fin_wait", "close_wait", "last_ack", "time_wait",
                                  "close",    "syn_sent2"};

}  // namespace

TEST_CASE("conntrack entries and states match conntrack-tools and a run writes nothing",
          "[kernel][conntrack]") {
  EnterFreshNetns();
  TrackLoopback();
  Endpoint v4{"127.0.0.1", 8080}, v6{"::1", 8081};
  Fd l4 = Listen(v4), l6 = Listen(v6);
  auto est4 = MakeEstablished(l4.get(), v4, 5);
  auto est6 = MakeEstablished(l6.get(), v6, 2);
  MakeClientTimeWait(l4.get(), v4, 3);
  Fd udp_sink(socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0));
  sockaddr_in at{};
  at.sin_family = AF_INET;
  at.sin_port = htons(5353);
  at.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  REQUIRE(bind(udp_sink.get(), reinterpret_cast<sockaddr*>(&at), sizeof(at)) == 0);
  SendUdp("127.0.0.1", 5353, 2);

  const int count_before = ConntrackCount();
  const auto listing_before = ConntrackListing();
  const auto states = ParseStates(listing_before);
  // The population as built, independently of the exporter.
  REQUIRE(count_before == 12);
  REQUIRE(states.at({"tcp", "established"}) == 7);
  REQUIRE(states.at({"tcp", "time_wait"}) == 3);
  REQUIRE(states.at({"udp", ""}) == 2);

  {
    ExporterProcess exporter({"--poll.interval=200ms", "--conntrack.dump-interval=100ms"});
    REQUIRE(exporter.WaitReady());
    Scrape s = exporter.ScrapeUntil([&](const Scrape& x) {
      return x.Value("sockdiag_conntrack_entries") == count_before &&
             x.Value("sockdiag_conntrack_table_entries",
                     {{"protocol", "tcp"}, {"state", "established"}}) == 7;
    });
    CHECK(s.Value("sockdiag_collector_success", {{"collector", "conntrack"}}) == 1);
    CHECK(s.Value("sockdiag_collector_success", {{"collector", "conntrack_table"}}) == 1);
    CHECK(s.Value("sockdiag_conntrack_entries") == count_before);
    std::ifstream max_file("/proc/sys/net/netfilter/nf_conntrack_max");
    double max = -1;
    max_file >> max;
    CHECK(s.Value("sockdiag_conntrack_entries_limit") == max);

    for (const char* st : kTcpStates) {
      auto it = states.find({"tcp", st});
      INFO("tcp state " << st);
      CHECK(s.Value("sockdiag_conntrack_table_entries", {{"protocol", "tcp"}, {"state", st}}) ==
            (it == states.end() ? 0 : it->second));
    }
    for (const char* proto : {"udp", "icmp", "icmpv6", "other"}) {
      auto it = states.find({proto, ""});
      INFO("protocol " << proto);
      CHECK(s.Value("sockdiag_conntrack_table_entries", {{"protocol", proto}, {"state", ""}}) ==
            (it == states.end() ? 0 : it->second));
    }
    CHECK(s.Sum("sockdiag_conntrack_table_entries") == count_before);
    CHECK(s.Value("sockdiag_conntrack_snat_port_utilization_max") == 0);
    CHECK(s.Value("sockdiag_conntrack_table_truncated_total") == 0);
    CHECK(s.Get("sockdiag_conntrack_table_dump_duration_seconds").has_value());
    CHECK(exporter.Terminate() == 0);
  }
  {
    // A dump cut short by --conntrack.max-entries.
    ExporterProcess exporter(
        {"--poll.interval=200ms", "--conntrack.dump-interval=100ms", "--conntrack.max-entries=5"});
    REQUIRE(exporter.WaitReady());
    Scrape s = exporter.ScrapeUntil(
        [](const Scrape& x) { return x.Value("sockdiag_conntrack_table_truncated_total") >= 2; });
    CHECK(s.Value("sockdiag_conntrack_table_truncated_total") >= 2);
    CHECK(s.Sum("sockdiag_conntrack_table_entries") == 5);
    CHECK(s.Value("sockdiag_collector_success", {{"collector", "conntrack_table"}}) == 1);
    CHECK(exporter.Terminate() == 0);
  }

  // Never write: the table is exactly as it was.
  CHECK(ConntrackCount() == count_before);
  CHECK(ConntrackListing() == listing_before);
}

TEST_CASE("conntrack per-CPU counters match conntrack -S and only grow", "[kernel][conntrack]") {
  EnterFreshNetns();
  TrackLoopback();
  ExporterProcess exporter({"--poll.interval=200ms"});
  REQUIRE(exporter.WaitReady());
  Scrape first = exporter.ScrapeUntil(
      [](const Scrape& x) { return x.Get("sockdiag_conntrack_invalid_total").has_value(); });
  REQUIRE(first.Get("sockdiag_conntrack_invalid_total").has_value());

  // Packets conntrack must call invalid: TCP with SYN and FIN both set.
  Fd raw(socket(AF_INET, SOCK_RAW | SOCK_CLOEXEC, IPPROTO_TCP));
  REQUIRE(raw.get() >= 0);
  sockaddr_in to{};
  to.sin_family = AF_INET;
  to.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  tcphdr th{};
  th.source = htons(4000);
  th.dest = htons(4001);
  th.doff = 5;
  th.syn = 1;
  th.fin = 1;
  for (int i = 0; i < 5; ++i) {
    REQUIRE(sendto(raw.get(), &th, sizeof(th), 0, reinterpret_cast<sockaddr*>(&to), sizeof(to)) ==
            sizeof(th));
  }
  const std::map<std::string, double> sums = ConntrackStatSums();
  REQUIRE(sums.at("invalid") >= 5);

  Scrape second = exporter.ScrapeUntil([&](const Scrape& x) {
    return x.Value("sockdiag_conntrack_invalid_total") == sums.at("invalid");
  });
  CHECK(second.Value("sockdiag_conntrack_invalid_total") == sums.at("invalid"));
  for (const auto& [stem, value] : sums) {
    const std::string name = "sockdiag_conntrack_" + stem + "_total";
    INFO(name);
    REQUIRE(second.Get(name).has_value());
    CHECK(second.Value(name) == value);
    CHECK(second.Value(name) >= first.Value(name));
    CHECK(second.text().find("# TYPE " + name + " counter") != std::string::npos);
  }
  CHECK(second.Value("sockdiag_conntrack_invalid_total") >
        first.Value("sockdiag_conntrack_invalid_total"));
}

namespace {

// A second namespace "remote" joined to the test's namespace by a veth pair;
// 10.213.0.0/24 exists only on these two interfaces. Deleted on scope exit.
class RemoteNetns {
 public:
  RemoteNetns() : name_("sockdiag-ct-" + std::to_string(getpid())) {
    Sh("ip netns del " + name_ + " 2>/dev/null");
    MustSh("ip netns add " + name_);
    MustSh("ip link add sdct0 type veth peer name sdct1 netns " + name_);
    MustSh("ip addr add 10.213.0.1/24 dev sdct0 && ip link set sdct0 up");
    MustSh("ip -n " + name_ + " addr add 10.213.0.2/24 dev sdct1");
    MustSh("ip -n " + name_ + " link set sdct1 up && ip -n " + name_ + " link set lo up");
  }
  ~RemoteNetns() { Sh("ip netns del " + name_ + " 2>/dev/null"); }

  // Runs `fn` with the calling thread inside the remote namespace.
  template <typename F>
  void Inside(F fn) {
    Fd home(open("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC));
    Fd there(open(("/run/netns/" + name_).c_str(), O_RDONLY | O_CLOEXEC));
    REQUIRE(home.get() >= 0);
    REQUIRE(there.get() >= 0);
    REQUIRE(setns(there.get(), CLONE_NEWNET) == 0);
    fn();
    REQUIRE(setns(home.get(), CLONE_NEWNET) == 0);
  }

 private:
  std::string name_;
};

}  // namespace

TEST_CASE("masqueraded connections show as SNAT port usage per tuple", "[kernel][conntrack]") {
  EnterFreshNetns();
  TrackLoopback();
  RemoteNetns remote;
  // A "pod" address on this side; its traffic to the remote is masqueraded
  // to sdct0's address, as a node does for pod egress.
  MustSh("ip addr add 10.213.1.1/32 dev lo");
  MustSh(R"(nft -f - <<'EOF'
table ip sockdiag_nat {
  chain post {
    type nat hook postrouting priority srcnat;
    ip saddr 10.213.1.1 oifname "sdct0" masquerade
  }
}
EOF)");
  Fd listener;
  remote.Inside([&] { listener = Listen({"10.213.0.2", 8080}); });
  const Endpoint to{"10.213.0.2", 8080};
  auto natted = MakeEstablished(listener.get(), to, 4, "10.213.1.1");
  auto direct = MakeEstablished(listener.get(), to, 1);  // From 10.213.0.1: no NAT.

  ShResult snat = Sh("conntrack -L --src-nat 2>/dev/null | grep -c 'dst=10.213.0.1 sport=8080'");
  REQUIRE(std::stoi(snat.out) == 4);
  REQUIRE(ConntrackCount() == 5);

  ExporterProcess exporter({"--poll.interval=200ms", "--conntrack.dump-interval=100ms"});
  REQUIRE(exporter.WaitReady());
  const std::map<std::string, std::string> tuple = {{"nat_address", "10.213.0.1"},
                                                    {"remote_address", "10.213.0.2"},
                                                    {"remote_port", "8080"},
                                                    {"protocol", "tcp"}};
  Scrape s = exporter.ScrapeUntil(
      [&](const Scrape& x) { return x.Value("sockdiag_conntrack_snat_ports", tuple) == 4; });
  CHECK(s.Value("sockdiag_conntrack_snat_ports", tuple) == 4);
  CHECK(s.All("sockdiag_conntrack_snat_ports").size() == 1);
  CHECK(s.Value("sockdiag_conntrack_snat_tuples") == 1);
  CHECK(s.Value("sockdiag_conntrack_snat_port_utilization_max") == Approx(4.0 / 64512));
  CHECK(s.Value("sockdiag_conntrack_table_entries",
                {{"protocol", "tcp"}, {"state", "established"}}) == 5);
}

TEST_CASE("without CAP_NET_ADMIN the conntrack collectors fail once and the rest serves",
          "[kernel][conntrack]") {
  EnterFreshNetns();
  TrackLoopback();
  Endpoint v4{"127.0.0.1", 8080};
  Fd l4 = Listen(v4);
  auto est = MakeEstablished(l4.get(), v4, 2);

  char tmpl[] = "/tmp/sockdiag-ct-noadmin-XXXXXX";
  int errfd = mkstemp(tmpl);
  REQUIRE(errfd >= 0);
  const std::string err_path = tmpl;
  const std::string cmd = std::string("exec ") + SOCKDIAG_EXPORTER_BIN +
                          " --web.listen-address=127.0.0.1:10062 --poll.interval=100ms";
  pid_t pid = fork();
  REQUIRE(pid >= 0);
  if (pid == 0) {
    dup2(errfd, 2);
    int devnull = open("/dev/null", O_RDWR);
    dup2(devnull, 0);
    dup2(devnull, 1);
    execl("/usr/sbin/capsh", "capsh", "--drop=cap_net_admin", "--", "-c", cmd.c_str(),
          static_cast<char*>(nullptr));
    _exit(127);
  }
  close(errfd);
  struct Reaper {
    pid_t pid;
    std::string path;
    ~Reaper() {
      kill(pid, SIGKILL);
      waitpid(pid, nullptr, 0);
      unlink(path.c_str());
    }
  } reaper{pid, err_path};

  Scrape s;
  bool polled = WaitUntil([&] {
    HttpResponse r = HttpGet(10062, "/metrics");
    if (r.status != 200) return false;
    s = Scrape::Parse(r.body);
    // A poll may catch this very scrape's connection: wait for a clean one.
    return s.Value("sockdiag_polls_total") >= 5 &&
           s.Value("sockdiag_tcp_sockets", {{"family", "ipv4"}, {"state", "established"}}) == 4;
  });
  REQUIRE(polled);
  CHECK(s.Value("sockdiag_collector_success", {{"collector", "conntrack"}}) == 0);
  CHECK(s.Value("sockdiag_collector_success", {{"collector", "conntrack_table"}}) == 0);
  CHECK(s.Value("sockdiag_collector_success", {{"collector", "sockets"}}) == 1);
  CHECK(s.Value("sockdiag_tcp_sockets", {{"family", "ipv4"}, {"state", "established"}}) == 4);
  CHECK(!s.Get("sockdiag_conntrack_entries").has_value());
  CHECK(s.All("sockdiag_conntrack_table_entries").empty());

  // One warning per collector over five polls, naming the capability.
  std::ifstream in(err_path);
  std::string line;
  int warn_conntrack = 0, warn_table = 0, errors = 0;
  while (std::getline(in, line)) {
    if (line.find("level=error") != std::string::npos) errors++;
    if (line.find("level=warn") == std::string::npos) continue;
    // The start-up capability report warns about held capabilities nothing
    // needs (this run keeps every other one): not a collector warning.
    if (line.find("unneeded=") != std::string::npos) continue;
    if (line.find("collector=conntrack ") != std::string::npos) warn_conntrack++;
    if (line.find("collector=conntrack_table ") != std::string::npos) warn_table++;
    CHECK(line.find("CAP_NET_ADMIN") != std::string::npos);
  }
  CHECK(warn_conntrack == 1);
  CHECK(warn_table == 1);
  CHECK(errors == 0);
}
