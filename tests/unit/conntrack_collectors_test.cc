// The conntrack and conntrack_table collectors against a fake netfilter
// netlink bus answering with in-memory ctnetlink replies.

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
#include "sockdiag/ctnetlink.h"
#include "sockdiag/netlink.h"
#include "unit/ct_messages.h"

using namespace sockdiag;
using sockdiag::testing::Concat;
using sockdiag::testing::CtMsg;
using sockdiag::testing::DoneMsg;
using sockdiag::testing::ErrorMsg;

namespace {

// What the fake kernel answers to one ctnetlink message type.
struct Reply {
  int err = 0;                                  // Refuse with this errno.
  std::vector<std::vector<uint8_t>> datagrams;  // Otherwise stream these.
};

struct FakeKernel {
  std::map<uint8_t, Reply> replies;
  std::vector<std::pair<uint16_t, uint16_t>> requests;  // (nlmsg_type, flags)
  int opens = 0;
};

class FakeDumper final : public NetlinkDumper {
 public:
  explicit FakeDumper(FakeKernel* k) : k_(k) {}
  Status Dump(std::span<uint8_t> request, MessageSink& sink, DumpStats* stats) override {
    const auto* nlh = reinterpret_cast<const nlmsghdr*>(request.data());
    k_->requests.emplace_back(nlh->nlmsg_type, nlh->nlmsg_flags);
    auto it = k_->replies.find(CtMessageType(nlh->nlmsg_type));
    if (it == k_->replies.end()) return Status::FromErrno(EINVAL, "no such request");
    if (it->second.err != 0) {
      return Status::FromErrno(it->second.err, "netlink request rejected by the kernel");
    }
    for (const auto& d : it->second.datagrams) {
      auto r = ProcessDatagram(d, 0, 0, sink, stats);
      if (!r.ok()) return r.status();
      if (r.value() == DumpProgress::kDone) return Status::Ok();
    }
    return Status::IOError("netlink dump timed out", ETIMEDOUT);  // The kernel fell silent.
  }

 private:
  FakeKernel* k_;
};

class FakeFactory final : public NetlinkFactory {
 public:
  explicit FakeFactory(FakeKernel* k) : k_(k) {}
  Result<std::unique_ptr<NetlinkDumper>> Open(int bus) override {
    REQUIRE(bus == NETLINK_NETFILTER);
    k_->opens++;
    return std::unique_ptr<NetlinkDumper>(std::make_unique<FakeDumper>(k_));
  }

 private:
  FakeKernel* k_;
};

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

std::vector<uint8_t> CpuMsg(uint16_t cpu, uint32_t found, uint32_t insert_failed) {
  CtMsg m(IPCTNL_MSG_CT_GET_STATS_CPU, NLM_F_MULTI, AF_UNSPEC, cpu);
  m.Be32(CTA_STATS_FOUND, found).Be32(CTA_STATS_INSERT_FAILED, insert_failed).Be32(31, 5);
  return m.bytes();
}

void SetStats(FakeKernel* k, uint32_t entries, uint32_t cpu0_found, uint32_t cpu1_found) {
  CtMsg g(IPCTNL_MSG_CT_GET_STATS, NLM_F_MULTI, AF_UNSPEC);  // As the kernel flags it.
  g.Be32(CTA_STATS_GLOBAL_ENTRIES, entries).Be32(CTA_STATS_GLOBAL_MAX_ENTRIES, 1000);
  k->replies[IPCTNL_MSG_CT_GET_STATS].datagrams = {g.bytes(), ErrorMsg(0)};
  k->replies[IPCTNL_MSG_CT_GET_STATS_CPU].datagrams = {
      Concat({CpuMsg(0, cpu0_found, 1), CpuMsg(1, cpu1_found, 2)}), DoneMsg()};
}

void RequireOnlyGets(const FakeKernel& k) {
  for (auto [type, flags] : k.requests) {
    INFO("request type " << type << " flags " << flags);
    CHECK((type >> 8) == NFNL_SUBSYS_CTNETLINK);
    const uint8_t t = CtMessageType(type);
    CHECK((t == IPCTNL_MSG_CT_GET || t == IPCTNL_MSG_CT_GET_STATS ||
           t == IPCTNL_MSG_CT_GET_STATS_CPU));
  }
}

}  // namespace

TEST_CASE("conntrack collector exports fill and summed per-CPU counters", "[conntrack]") {
  FakeKernel kernel;
  FakeFactory factory(&kernel);
  ProcTree proc(true);
  Config config;
  ProcFs procfs(proc.root());
  PollContext ctx{config, procfs, "net", &factory};
  auto collector = NewConntrackCollector(config);

  SetStats(&kernel, 42, 0xfffffff0u, 7);
  MetricFamilies out;
  REQUIRE(collector->Collect(ctx, &out).ok());
  CHECK(Value(out, "sockdiag_conntrack_entries") == 42);
  CHECK(Value(out, "sockdiag_conntrack_entries_limit") == 1000);
  CHECK(Value(out, "sockdiag_conntrack_found_total") == 0xfffffff0ull + 7.0);
  CHECK(Value(out, "sockdiag_conntrack_insert_failed_total") == 3);
  // Only what the kernel sent.
  CHECK(Find(out, "sockdiag_conntrack_drop_total") == nullptr);
  CHECK(Find(out, "sockdiag_conntrack_chain_too_long_total") == nullptr);

  // CPU 0 wraps: the sum keeps growing.
  SetStats(&kernel, 43, 0x10u, 8);
  out.clear();
  REQUIRE(collector->Collect(ctx, &out).ok());
  CHECK(Value(out, "sockdiag_conntrack_entries") == 43);
  CHECK(Value(out, "sockdiag_conntrack_found_total") == 0xfffffff0ull + 0x20 + 8.0);
  CHECK(kernel.opens == 1);  // The socket is kept across polls.
  CHECK(kernel.requests.size() == 4);
  RequireOnlyGets(kernel);
}

TEST_CASE("conntrack collector fails with Permission when the kernel says EPERM", "[conntrack]") {
  FakeKernel kernel;
  FakeFactory factory(&kernel);
  ProcTree proc(true);
  Config config;
  ProcFs procfs(proc.root());
  PollContext ctx{config, procfs, "net", &factory};
  kernel.replies[IPCTNL_MSG_CT_GET_STATS].err = EPERM;
  kernel.replies[IPCTNL_MSG_CT_GET_STATS_CPU].err = EPERM;
  kernel.replies[IPCTNL_MSG_CT_GET].err = EPERM;

  MetricFamilies out;
  Status s = NewConntrackCollector(config)->Collect(ctx, &out);
  CHECK(s.IsPermission());
  CHECK(s.ToString().find("CAP_NET_ADMIN") != std::string::npos);
  Status t = NewConntrackTableCollector(config)->Collect(ctx, &out);
  CHECK(t.IsPermission());
}

TEST_CASE("conntrack collectors stay quiet and send nothing when conntrack is not loaded",
          "[conntrack]") {
  FakeKernel kernel;
  FakeFactory factory(&kernel);
  ProcTree proc(false);
  Config config;
  ProcFs procfs(proc.root());
  PollContext ctx{config, procfs, "net", &factory};
  MetricFamilies out;
  CHECK(NewConntrackCollector(config)->Collect(ctx, &out).IsNotFound());
  CHECK(NewConntrackTableCollector(config)->Collect(ctx, &out).IsNotFound());
  CHECK(out.empty());
  CHECK(kernel.opens == 0);
  CHECK(kernel.requests.empty());
}

TEST_CASE("conntrack collector falls back to /proc/sys without GET_STATS", "[conntrack]") {
  FakeKernel kernel;
  FakeFactory factory(&kernel);
  ProcTree proc(true);
  Config config;
  ProcFs procfs(proc.root());
  PollContext ctx{config, procfs, "net", &factory};
  SetStats(&kernel, 42, 1, 2);
  kernel.replies[IPCTNL_MSG_CT_GET_STATS].err = EINVAL;  // An old kernel.

  MetricFamilies out;
  REQUIRE(NewConntrackCollector(config)->Collect(ctx, &out).ok());
  CHECK(Value(out, "sockdiag_conntrack_entries") == 5);
  CHECK(Value(out, "sockdiag_conntrack_entries_limit") == 262144);
  CHECK(Value(out, "sockdiag_conntrack_found_total") == 3);
}

TEST_CASE("a GET_STATS answer without its ACK does not end the exchange", "[conntrack]") {
  // Documents why the request asks for an ACK: the kernel flags its answer
  // NLM_F_MULTI and sends no NLMSG_DONE.
  FakeKernel kernel;
  FakeFactory factory(&kernel);
  ProcTree proc(true);
  Config config;
  ProcFs procfs(proc.root());
  PollContext ctx{config, procfs, "net", &factory};
  SetStats(&kernel, 42, 1, 2);
  kernel.replies[IPCTNL_MSG_CT_GET_STATS].datagrams.pop_back();
  MetricFamilies out;
  CHECK(!NewConntrackCollector(config)->Collect(ctx, &out).ok());
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

void SetTable(FakeKernel* k) {
  k->replies[IPCTNL_MSG_CT_GET].datagrams = {
      Concat({TcpEntry("10.0.0.1", 1000, 3), TcpEntry("10.0.0.1", 1001, 3),
              TcpEntry("10.0.0.1", 1002, 7)}),
      Concat({TcpEntry("10.1.0.1", 40000, 3, "198.51.100.1", 40000),
              TcpEntry("10.1.0.2", 40000, 3, "198.51.100.1", 1024), UdpEntry("10.0.0.1", 5353)}),
      DoneMsg()};
}

}  // namespace

TEST_CASE("conntrack_table collector counts states and SNAT ports", "[conntrack_table]") {
  FakeKernel kernel;
  FakeFactory factory(&kernel);
  ProcTree proc(true);
  Config config;
  config.conntrack_nat_port_low = 1024;
  config.conntrack_nat_port_high = 1123;  // 100 ports.
  ProcFs procfs(proc.root());
  PollContext ctx{config, procfs, "net", &factory};
  SetTable(&kernel);

  MetricFamilies out;
  REQUIRE(NewConntrackTableCollector(config)->Collect(ctx, &out).ok());
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
  CHECK(Value(out, "sockdiag_conntrack_table_dump_duration_seconds") >= 0);
  RequireOnlyGets(kernel);
}

TEST_CASE("conntrack_table dumps once per interval and re-publishes in between",
          "[conntrack_table]") {
  FakeKernel kernel;
  FakeFactory factory(&kernel);
  ProcTree proc(true);
  Config config;
  config.conntrack_dump_interval = std::chrono::hours(1);
  ProcFs procfs(proc.root());
  PollContext ctx{config, procfs, "net", &factory};
  SetTable(&kernel);
  auto collector = NewConntrackTableCollector(config);

  MetricFamilies first, second;
  REQUIRE(collector->Collect(ctx, &first).ok());
  kernel.replies[IPCTNL_MSG_CT_GET].datagrams = {DoneMsg()};  // The table emptied.
  REQUIRE(collector->Collect(ctx, &second).ok());
  CHECK(kernel.requests.size() == 1);
  CHECK(Value(second, "sockdiag_conntrack_table_entries",
              {{"protocol", "tcp"}, {"state", "established"}}) == 4);

  SECTION("with a zero interval every poll dumps") {
    Config every;
    every.conntrack_dump_interval = std::chrono::milliseconds(0);
    PollContext ctx2{every, procfs, "net", &factory};
    auto c2 = NewConntrackTableCollector(every);
    MetricFamilies a, b;
    SetTable(&kernel);
    REQUIRE(c2->Collect(ctx2, &a).ok());
    kernel.replies[IPCTNL_MSG_CT_GET].datagrams = {DoneMsg()};
    REQUIRE(c2->Collect(ctx2, &b).ok());
    CHECK(Value(b, "sockdiag_conntrack_table_entries",
                {{"protocol", "tcp"}, {"state", "established"}}) == 0);
  }
}

TEST_CASE("conntrack_table stops at --conntrack.max-entries and counts the truncation",
          "[conntrack_table]") {
  FakeKernel kernel;
  FakeFactory factory(&kernel);
  ProcTree proc(true);
  Config config;
  config.conntrack_dump_interval = std::chrono::milliseconds(0);
  config.conntrack_max_entries = 3;
  ProcFs procfs(proc.root());
  PollContext ctx{config, procfs, "net", &factory};
  SetTable(&kernel);
  auto collector = NewConntrackTableCollector(config);

  MetricFamilies out;
  REQUIRE(collector->Collect(ctx, &out).ok());
  CHECK(Value(out, "sockdiag_conntrack_table_truncated_total") == 1);
  double sum = 0;
  for (const auto& m : Find(out, "sockdiag_conntrack_table_entries")->metric) sum += m.gauge.value;
  CHECK(sum == 3);

  out.clear();
  REQUIRE(collector->Collect(ctx, &out).ok());
  CHECK(Value(out, "sockdiag_conntrack_table_truncated_total") == 2);

  SECTION("a table of exactly the cap is not truncated") {
    Config exact = config;
    exact.conntrack_max_entries = 6;
    PollContext ctx2{exact, procfs, "net", &factory};
    MetricFamilies o;
    REQUIRE(NewConntrackTableCollector(exact)->Collect(ctx2, &o).ok());
    CHECK(Value(o, "sockdiag_conntrack_table_truncated_total") == 0);
  }
}

TEST_CASE("conntrack_table fails on a malformed entry", "[conntrack_table]") {
  FakeKernel kernel;
  FakeFactory factory(&kernel);
  ProcTree proc(true);
  Config config;
  ProcFs procfs(proc.root());
  PollContext ctx{config, procfs, "net", &factory};
  CtMsg bad(IPCTNL_MSG_CT_GET, NLM_F_MULTI, AF_INET);
  bad.Be32(CTA_STATUS, 0);  // No tuple.
  kernel.replies[IPCTNL_MSG_CT_GET].datagrams = {Concat({TcpEntry("10.0.0.1", 1, 3), bad.bytes()}),
                                                 DoneMsg()};
  MetricFamilies out;
  Status s = NewConntrackTableCollector(config)->Collect(ctx, &out);
  CHECK(s.code() == Status::Code::kCorruption);
  CHECK(out.empty());
}
