// The conntrack and conntrack_table collectors over ctnetlink replies built
// in memory, replayed as a socket receives them (ReplayFactory: one list of
// datagrams per socket the collector opens).

#include <linux/netlink.h>
#include <sys/stat.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <cerrno>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>

#include "collectors/collectors.h"
#include "netlink/ctnetlink.h"
#include "netlink/netlink.h"
#include "source/clock.h"
#include "source/replay.h"
#include "unit/ct_messages.h"

using namespace sockdiag;
using sockdiag::testing::Concat;
using sockdiag::testing::CtMsg;
using sockdiag::testing::DoneMsg;
using sockdiag::testing::ErrorMsg;

namespace {

// A procfs tree with the conntrack sysctls (or without, for "not loaded").
class ProcTree {
 public:
  explicit ProcTree(bool conntrack_loaded) {
    char tmpl[] = "/tmp/sockdiag-ct-proc-XXXXXX";
    REQUIRE(mkdtemp(tmpl) != nullptr);
    root_ = tmpl;
    if (conntrack_loaded) {
      std::filesystem::create_directories(root_ + "/sys/net/netfilter");
      std::ofstream(root_ + "/sys/net/netfilter/nf_conntrack_max") << "262144\n";
      std::ofstream(root_ + "/sys/net/netfilter/nf_conntrack_count") << "5\n";
    }
  }
  ~ProcTree() { std::filesystem::remove_all(root_); }
  const std::string& root() const { return root_; }

 private:
  std::string root_;
};

// What every test here needs: a procfs tree, replies to replay, a clock.
// Set config before calling Context().
struct Fixture {
  explicit Fixture(bool conntrack_loaded = true) : proc(conntrack_loaded), procfs(proc.root()) {}
  PollContext Context() { return PollContext{config, procfs, "net", &replay, &clock}; }
  // The replies the next NETLINK_NETFILTER socket opened receives.
  void Socket(Datagrams datagrams) { replay.Add(NETLINK_NETFILTER, std::move(datagrams)); }

  ProcTree proc;
  ProcFs procfs;
  Config config;
  ReplayFactory replay;
  ManualClock clock{std::chrono::system_clock::time_point(std::chrono::seconds(1767225600))};
};

const prometheus::MetricFamily* Find(const MetricFamilies& fams, const std::string& name) {
  for (const auto& f : fams) {
    if (f.name == name) return &f;
  }
  return nullptr;
}

// Value of the sample of `name` with exactly `labels`, or -1.
double Value(const MetricFamilies& fams, const std::string& name,
             const std::map<std::string, std::string>& labels = {}) {
  const auto* f = Find(fams, name);
  if (f == nullptr) return -1;
  for (const auto& m : f->metric) {
    std::map<std::string, std::string> got;
    for (const auto& l : m.label) got[l.name] = l.value;
    if (got != labels) continue;
    return f->type == prometheus::MetricType::Counter ? m.counter.value : m.gauge.value;
  }
  return -1;
}

Datagrams Join(std::initializer_list<Datagrams> parts) {
  Datagrams out;
  for (const auto& p : parts) out.insert(out.end(), p.begin(), p.end());
  return out;
}

std::vector<uint8_t> CpuMsg(uint16_t cpu, uint32_t found, uint32_t insert_failed) {
  CtMsg m(IPCTNL_MSG_CT_GET_STATS_CPU, NLM_F_MULTI, AF_UNSPEC, cpu);
  m.Be32(CTA_STATS_FOUND, found).Be32(CTA_STATS_INSERT_FAILED, insert_failed).Be32(31, 5);
  return m.bytes();
}

// The answer to GET_STATS: flagged NLM_F_MULTI as the kernel does, then the ACK.
Datagrams GlobalStatsReply(uint32_t entries) {
  CtMsg g(IPCTNL_MSG_CT_GET_STATS, NLM_F_MULTI, AF_UNSPEC);
  g.Be32(CTA_STATS_GLOBAL_ENTRIES, entries).Be32(CTA_STATS_GLOBAL_MAX_ENTRIES, 1000);
  return {g.bytes(), ErrorMsg(0)};
}

// The GET_STATS_CPU dump of two CPUs.
Datagrams CpuStatsReply(uint32_t cpu0_found, uint32_t cpu1_found) {
  return {Concat({CpuMsg(0, cpu0_found, 1), CpuMsg(1, cpu1_found, 2)}), DoneMsg()};
}

// One poll of the conntrack collector: GET_STATS, then GET_STATS_CPU.
Datagrams StatsPoll(uint32_t entries, uint32_t cpu0_found, uint32_t cpu1_found) {
  return Join({GlobalStatsReply(entries), CpuStatsReply(cpu0_found, cpu1_found)});
}

void RequireOnlyGets(const Datagrams& requests) {
  for (const auto& r : requests) {
    const auto* nlh = reinterpret_cast<const nlmsghdr*>(r.data());
    INFO("request type " << nlh->nlmsg_type << " flags " << nlh->nlmsg_flags);
    CHECK((nlh->nlmsg_type >> 8) == NFNL_SUBSYS_CTNETLINK);
    const uint8_t t = CtMessageType(nlh->nlmsg_type);
    CHECK((t == IPCTNL_MSG_CT_GET || t == IPCTNL_MSG_CT_GET_STATS ||
           t == IPCTNL_MSG_CT_GET_STATS_CPU));
  }
}

}  // namespace

TEST_CASE("conntrack collector exports fill and summed per-CPU counters", "[conntrack]") {
  Fixture f;
  // CPU 0 wraps between the two polls.
  f.Socket(Join({StatsPoll(42, 0xfffffff0u, 7), StatsPoll(43, 0x10u, 8)}));
  PollContext ctx = f.Context();
  auto collector = NewConntrackCollector(f.config);

  MetricFamilies out;
  REQUIRE(collector->Collect(ctx, &out).ok());
  CHECK(Value(out, "sockdiag_conntrack_entries") == 42);
  CHECK(Value(out, "sockdiag_conntrack_entries_limit") == 1000);
  CHECK(Value(out, "sockdiag_conntrack_found_total") == 0xfffffff0ull + 7.0);
  CHECK(Value(out, "sockdiag_conntrack_insert_failed_total") == 3);
  // Only what the kernel sent.
  CHECK(Find(out, "sockdiag_conntrack_drop_total") == nullptr);
  CHECK(Find(out, "sockdiag_conntrack_chain_too_long_total") == nullptr);

  // The sum keeps growing across the wrap.
  out.clear();
  REQUIRE(collector->Collect(ctx, &out).ok());
  CHECK(Value(out, "sockdiag_conntrack_entries") == 43);
  CHECK(Value(out, "sockdiag_conntrack_found_total") == 0xfffffff0ull + 0x20 + 8.0);
  CHECK(f.replay.opens() == 1);  // The socket is kept across polls.
  CHECK(f.replay.requests().size() == 4);
  RequireOnlyGets(f.replay.requests());
}

TEST_CASE("conntrack collector fails with Permission when the kernel says EPERM", "[conntrack]") {
  Fixture f;
  f.Socket({ErrorMsg(EPERM)});  // conntrack's GET_STATS.
  f.Socket({ErrorMsg(EPERM)});  // conntrack_table's dump.
  PollContext ctx = f.Context();

  MetricFamilies out;
  Status s = NewConntrackCollector(f.config)->Collect(ctx, &out);
  CHECK(s.IsPermission());
  CHECK(s.ToString().find("CAP_NET_ADMIN") != std::string::npos);
  Status t = NewConntrackTableCollector(f.config)->Collect(ctx, &out);
  CHECK(t.IsPermission());
  CHECK(f.replay.requests().size() == 2);
}

TEST_CASE("conntrack collectors stay quiet and send nothing when conntrack is not loaded",
          "[conntrack]") {
  Fixture f(false);
  PollContext ctx = f.Context();
  MetricFamilies out;
  CHECK(NewConntrackCollector(f.config)->Collect(ctx, &out).IsNotFound());
  CHECK(NewConntrackTableCollector(f.config)->Collect(ctx, &out).IsNotFound());
  CHECK(out.empty());
  CHECK(f.replay.opens() == 0);
  CHECK(f.replay.requests().empty());
}

TEST_CASE("conntrack collector falls back to /proc/sys without GET_STATS", "[conntrack]") {
  Fixture f;
  // An old kernel refuses GET_STATS, which leaves the socket usable for
  // GET_STATS_CPU.
  f.Socket(Join({{ErrorMsg(EINVAL)}, CpuStatsReply(1, 2)}));
  PollContext ctx = f.Context();

  MetricFamilies out;
  REQUIRE(NewConntrackCollector(f.config)->Collect(ctx, &out).ok());
  CHECK(Value(out, "sockdiag_conntrack_entries") == 5);
  CHECK(Value(out, "sockdiag_conntrack_entries_limit") == 262144);
  CHECK(Value(out, "sockdiag_conntrack_found_total") == 3);
  CHECK(f.replay.opens() == 1);
}

TEST_CASE("a GET_STATS answer without its ACK does not end the exchange", "[conntrack]") {
  // Documents why the request asks for an ACK: the kernel flags its answer
  // NLM_F_MULTI and sends no NLMSG_DONE, so without the ACK the reader
  // waits for more until its receive timeout.
  Fixture f;
  f.Socket({GlobalStatsReply(42).front()});
  PollContext ctx = f.Context();
  MetricFamilies out;
  Status s = NewConntrackCollector(f.config)->Collect(ctx, &out);
  CHECK(s.err() == ETIMEDOUT);
  CHECK(s.ToString().find("GET_STATS") != std::string::npos);
}

namespace {

std::vector<uint8_t> TcpEntry(const std::string& src, uint16_t sport, uint8_t state,
                              const std::string& nat = "", uint16_t nat_port = 0) {
  CtMsg m(IPCTNL_MSG_CT_GET, NLM_F_MULTI, AF_INET);
  m.Tuple(CTA_TUPLE_ORIG, src, "192.0.2.1", IPPROTO_TCP, sport, 443);
  m.Tuple(CTA_TUPLE_REPLY, "192.0.2.1", nat.empty() ? src : nat, IPPROTO_TCP, 443,
          nat.empty() ? sport : nat_port);
  m.Be32(CTA_STATUS, IPS_CONFIRMED | (nat.empty() ? 0u : static_cast<uint32_t>(IPS_SRC_NAT)));
  m.TcpState(state);
  return m.bytes();
}

std::vector<uint8_t> UdpEntry(const std::string& src, uint16_t sport) {
  CtMsg m(IPCTNL_MSG_CT_GET, NLM_F_MULTI, AF_INET);
  m.Tuple(CTA_TUPLE_ORIG, src, "192.0.2.53", IPPROTO_UDP, sport, 53);
  m.Tuple(CTA_TUPLE_REPLY, "192.0.2.53", src, IPPROTO_UDP, 53, sport);
  return m.bytes();
}

// The dump of a table of 6 entries: 4 TCP established (2 of them SNAT to
// 198.51.100.1), 1 TCP time_wait, 1 UDP.
Datagrams TableDump() {
  return {Concat({TcpEntry("10.0.0.1", 1000, 3), TcpEntry("10.0.0.1", 1001, 3),
                  TcpEntry("10.0.0.1", 1002, 7)}),
          Concat({TcpEntry("10.1.0.1", 40000, 3, "198.51.100.1", 40000),
                  TcpEntry("10.1.0.2", 40000, 3, "198.51.100.1", 1024),
                  UdpEntry("10.0.0.1", 5353)}),
          DoneMsg()};
}

double Established(const MetricFamilies& out) {
  return Value(out, "sockdiag_conntrack_table_entries",
               {{"protocol", "tcp"}, {"state", "established"}});
}

}  // namespace

TEST_CASE("conntrack_table collector counts states and SNAT ports", "[conntrack_table]") {
  Fixture f;
  f.config.conntrack_nat_port_low = 1024;
  f.config.conntrack_nat_port_high = 1123;  // 100 ports.
  f.Socket(TableDump());
  PollContext ctx = f.Context();

  MetricFamilies out;
  REQUIRE(NewConntrackTableCollector(f.config)->Collect(ctx, &out).ok());
  const std::string e = "sockdiag_conntrack_table_entries";
  CHECK(Value(out, e, {{"protocol", "tcp"}, {"state", "established"}}) == 4);
  CHECK(Value(out, e, {{"protocol", "tcp"}, {"state", "time_wait"}}) == 1);
  CHECK(Value(out, e, {{"protocol", "tcp"}, {"state", "close_wait"}}) == 0);
  CHECK(Value(out, e, {{"protocol", "udp"}, {"state", ""}}) == 1);
  CHECK(Value(out, e, {{"protocol", "icmp"}, {"state", ""}}) == 0);
  CHECK(Value(out, e, {{"protocol", "tcp"}, {"state", "unknown"}}) == -1);
  CHECK(Value(out, "sockdiag_conntrack_snat_ports",
              {{"nat_address", "198.51.100.1"},
               {"remote_address", "192.0.2.1"},
               {"remote_port", "443"},
               {"protocol", "tcp"}}) == 2);
  CHECK(Value(out, "sockdiag_conntrack_snat_port_utilization_max") == Approx(0.02));
  CHECK(Value(out, "sockdiag_conntrack_snat_port_range_size") == 100);
  CHECK(Value(out, "sockdiag_conntrack_snat_tuples") == 1);
  CHECK(Value(out, "sockdiag_conntrack_table_truncated_total") == 0);
  CHECK(Value(out, "sockdiag_conntrack_table_dump_duration_seconds") == 0);  // The clock stood.
  CHECK(Value(out, "sockdiag_conntrack_table_dump_timestamp_seconds") == 1767225600);
  RequireOnlyGets(f.replay.requests());
}

TEST_CASE("conntrack_table dumps once per interval and re-publishes in between",
          "[conntrack_table]") {
  Fixture f;
  f.config.conntrack_dump_interval = std::chrono::seconds(60);
  f.Socket(Join({TableDump(), {DoneMsg()}}));  // Then the table empties.
  PollContext ctx = f.Context();
  auto collector = NewConntrackTableCollector(f.config);

  MetricFamilies first, second, third;
  REQUIRE(collector->Collect(ctx, &first).ok());
  CHECK(Established(first) == 4);
  f.clock.Advance(std::chrono::seconds(59));
  REQUIRE(collector->Collect(ctx, &second).ok());
  CHECK(f.replay.requests().size() == 1);
  CHECK(Established(second) == 4);
  CHECK(Value(second, "sockdiag_conntrack_table_dump_timestamp_seconds") == 1767225600);
  f.clock.Advance(std::chrono::seconds(1));
  REQUIRE(collector->Collect(ctx, &third).ok());
  CHECK(f.replay.requests().size() == 2);
  CHECK(Established(third) == 0);
  CHECK(Value(third, "sockdiag_conntrack_table_dump_timestamp_seconds") == 1767225660);
}

TEST_CASE("conntrack_table stops at --conntrack.max-entries and counts the truncation",
          "[conntrack_table]") {
  Fixture f;
  f.config.conntrack_dump_interval = std::chrono::milliseconds(0);
  f.config.conntrack_max_entries = 3;
  // A dump stopped early leaves its socket broken: each dump gets its own.
  for (int i = 0; i < 3; ++i) f.Socket(TableDump());
  PollContext ctx = f.Context();
  auto collector = NewConntrackTableCollector(f.config);

  MetricFamilies out;
  REQUIRE(collector->Collect(ctx, &out).ok());
  CHECK(Value(out, "sockdiag_conntrack_table_truncated_total") == 1);
  double sum = 0;
  for (const auto& m : Find(out, "sockdiag_conntrack_table_entries")->metric) sum += m.gauge.value;
  CHECK(sum == 3);

  out.clear();
  REQUIRE(collector->Collect(ctx, &out).ok());
  CHECK(Value(out, "sockdiag_conntrack_table_truncated_total") == 2);
  CHECK(f.replay.opens() == 2);

  SECTION("a table of exactly the cap is not truncated") {
    Config exact = f.config;
    exact.conntrack_max_entries = 6;
    PollContext ctx2{exact, f.procfs, "net", &f.replay, &f.clock};
    MetricFamilies o;
    REQUIRE(NewConntrackTableCollector(exact)->Collect(ctx2, &o).ok());
    CHECK(Value(o, "sockdiag_conntrack_table_truncated_total") == 0);
  }
}

TEST_CASE("conntrack_table fails on a malformed entry", "[conntrack_table]") {
  Fixture f;
  CtMsg bad(IPCTNL_MSG_CT_GET, NLM_F_MULTI, AF_INET);
  bad.Be32(CTA_STATUS, 0);  // No tuple.
  f.Socket({Concat({TcpEntry("10.0.0.1", 1, 3), bad.bytes()}), DoneMsg()});
  PollContext ctx = f.Context();
  MetricFamilies out;
  Status s = NewConntrackTableCollector(f.config)->Collect(ctx, &out);
  CHECK(s.code() == Status::Code::kCorruption);
  CHECK(out.empty());
}
