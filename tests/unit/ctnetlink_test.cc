// ctnetlink request builders, parsers and aggregation on in-memory messages.

#include "netlink/ctnetlink.h"

#include <catch2/catch.hpp>
#include <cstdint>
#include <set>

#include "model/conntrack_model.h"
#include "netlink/address.h"
#include "netlink/nlattr.h"
#include "unit/ct_messages.h"

using namespace sockdiag;
using sockdiag::testing::CtMsg;

TEST_CASE("every ctnetlink request built is a read-only GET", "[ctnetlink][never_write]") {
  const std::set<uint8_t> kAllowed = {IPCTNL_MSG_CT_GET, IPCTNL_MSG_CT_GET_STATS_CPU,
                                      IPCTNL_MSG_CT_GET_STATS};
  size_t kinds = 0;
  for (CtRequest kind : kAllCtRequests) {
    kinds++;
    std::vector<uint8_t> req = BuildCtRequest(kind);
    INFO("request kind " << static_cast<int>(kind));
    REQUIRE(req.size() >= sizeof(nlmsghdr) + sizeof(nfgenmsg));
    const auto* nlh = reinterpret_cast<const nlmsghdr*>(req.data());
    CHECK(nlh->nlmsg_len == req.size());
    CHECK((nlh->nlmsg_type >> 8) == NFNL_SUBSYS_CTNETLINK);
    const uint8_t type = CtMessageType(nlh->nlmsg_type);
    CHECK(kAllowed.count(type) == 1);
    // Spelled out: none of the writing or counter-zeroing types.
    CHECK(type != IPCTNL_MSG_CT_NEW);
    CHECK(type != IPCTNL_MSG_CT_DELETE);
    CHECK(type != IPCTNL_MSG_CT_GET_CTRZERO);
    CHECK((nlh->nlmsg_flags & NLM_F_REQUEST) != 0);
    CHECK((nlh->nlmsg_flags & NLM_F_CREATE) == 0);
    CHECK((nlh->nlmsg_flags & NLM_F_APPEND) == 0);
    // No attributes: nothing to select or change.
    CHECK(nlh->nlmsg_len == NlAlign(sizeof(nlmsghdr)) + NlAlign(sizeof(nfgenmsg)));
    nfgenmsg g;
    std::memcpy(&g, req.data() + NlAlign(sizeof(nlmsghdr)), sizeof(g));
    CHECK(g.version == NFNETLINK_V0);
    CHECK(g.nfgen_family == AF_UNSPEC);
  }
  CHECK(kinds == 3);
}

TEST_CASE("dumps ask for a dump and GET_STATS for an ACK", "[ctnetlink]") {
  auto flags = [](CtRequest k) {
    auto req = BuildCtRequest(k);
    return reinterpret_cast<const nlmsghdr*>(req.data())->nlmsg_flags;
  };
  CHECK((flags(CtRequest::kTableDump) & NLM_F_DUMP) == NLM_F_DUMP);
  CHECK((flags(CtRequest::kCpuStats) & NLM_F_DUMP) == NLM_F_DUMP);
  CHECK((flags(CtRequest::kGlobalStats) & NLM_F_DUMP) == 0);
  CHECK((flags(CtRequest::kGlobalStats) & NLM_F_ACK) != 0);
}

TEST_CASE("global stats parse entries and max and skip unknown attributes", "[ctnetlink]") {
  CtMsg m(IPCTNL_MSG_CT_GET_STATS, NLM_F_MULTI, AF_UNSPEC);
  m.Be32(CTA_STATS_GLOBAL_ENTRIES, 1234).Be32(CTA_STATS_GLOBAL_MAX_ENTRIES, 262144).Be32(9, 7);
  auto r = ParseCtGlobalStats(m.nlh());
  REQUIRE(r.ok());
  CHECK(r.value().entries == 1234u);
  CHECK(r.value().max_entries == 262144u);

  CtMsg only_max(IPCTNL_MSG_CT_GET_STATS);
  only_max.Be32(CTA_STATS_GLOBAL_MAX_ENTRIES, 10);
  auto r2 = ParseCtGlobalStats(only_max.nlh());
  REQUIRE(r2.ok());
  CHECK(!r2.value().entries);
  CHECK(r2.value().max_entries == 10u);
}

TEST_CASE("global stats with a short attribute are corruption", "[ctnetlink]") {
  CtMsg m(IPCTNL_MSG_CT_GET_STATS);
  m.Be16(CTA_STATS_GLOBAL_ENTRIES, 5);  // 2 bytes where 4 are due.
  auto r = ParseCtGlobalStats(m.nlh());
  REQUIRE(!r.ok());
  CHECK(r.status().code() == Status::Code::kCorruption);
}

TEST_CASE("a message of another netfilter subsystem is rejected", "[ctnetlink]") {
  CtMsg m(IPCTNL_MSG_CT_GET_STATS);
  m.mutable_nlh()->nlmsg_type = static_cast<uint16_t>((NFNL_SUBSYS_QUEUE << 8) | 1);
  CHECK(!ParseCtGlobalStats(m.nlh()).ok());
  CHECK(!ParseCtCpuStats(m.nlh()).ok());
  CHECK(!ParseCtEntry(m.nlh()).ok());
}

TEST_CASE("per-CPU stats parse the CPU and known ids and ignore unknown ids", "[ctnetlink]") {
  CtMsg m(IPCTNL_MSG_CT_GET_STATS_CPU, NLM_F_MULTI, AF_UNSPEC, /*res_id=*/3);
  m.Be32(CTA_STATS_FOUND, 11)
      .Be32(CTA_STATS_INVALID, 22)
      .Be32(CTA_STATS_INSERT_FAILED, 33)
      .Be32(15 /* CHAIN_TOOLONG */, 44)
      .Be32(16, 999)  // A future attribute.
      .Be32(200, 1);  // Far beyond anything known.
  auto r = ParseCtCpuStats(m.nlh());
  REQUIRE(r.ok());
  const CtCpuStats& s = r.value();
  CHECK(s.cpu == 3);
  CHECK(s.values[CTA_STATS_FOUND] == 11u);
  CHECK(s.values[CTA_STATS_INVALID] == 22u);
  CHECK(s.values[CTA_STATS_INSERT_FAILED] == 33u);
  CHECK(s.values[15] == 44u);
  CHECK(!s.values[CTA_STATS_DROP]);
  CHECK(!s.values[CTA_STATS_SEARCHED]);
}

TEST_CASE("per-CPU stats with broken attribute framing are corruption", "[ctnetlink]") {
  SECTION("short payload") {
    CtMsg m(IPCTNL_MSG_CT_GET_STATS_CPU);
    m.U8(CTA_STATS_DROP, 1);
    CHECK(ParseCtCpuStats(m.nlh()).status().code() == Status::Code::kCorruption);
  }
  SECTION("attribute length past the message") {
    CtMsg m(IPCTNL_MSG_CT_GET_STATS_CPU);
    m.Be32(CTA_STATS_DROP, 1);
    auto bytes = m.bytes();
    auto* attr = reinterpret_cast<nlattr*>(bytes.data() + NlAlign(sizeof(nlmsghdr)) +
                                           NlAlign(sizeof(nfgenmsg)));
    attr->nla_len = 64;
    CHECK(ParseCtCpuStats(reinterpret_cast<const nlmsghdr*>(bytes.data())).status().code() ==
          Status::Code::kCorruption);
  }
  SECTION("message shorter than nfgenmsg") {
    CtMsg m(IPCTNL_MSG_CT_GET_STATS_CPU);
    auto bytes = m.bytes();
    auto* nlh = reinterpret_cast<nlmsghdr*>(bytes.data());
    nlh->nlmsg_len = sizeof(nlmsghdr) + 2;
    CHECK(!ParseCtCpuStats(nlh).ok());
  }
}

TEST_CASE("32-bit counter deltas survive a wrap", "[ctnetlink][wrap]") {
  CHECK(CounterDelta32(10, 15) == 5);
  CHECK(CounterDelta32(0xfffffff0u, 0x10u) == 0x20);
  CHECK(CounterDelta32(0xffffffffu, 0) == 1);
  CHECK(CounterDelta32(7, 7) == 0);
}

TEST_CASE("per-CPU counters sum over CPUs and stay monotonic across a wrap", "[ctnetlink][wrap]") {
  CtCpuCounters c;
  auto stats = [](uint16_t cpu, uint32_t found, std::optional<uint32_t> drop = std::nullopt) {
    CtCpuStats s;
    s.cpu = cpu;
    s.values[CTA_STATS_FOUND] = found;
    if (drop) s.values[CTA_STATS_DROP] = *drop;
    return s;
  };
  // First poll: values taken whole (the exported sum equals the kernel's).
  c.Observe(stats(0, 0xfffffff0u));
  c.Observe(stats(1, 100, 5));
  CHECK(c.present(CTA_STATS_FOUND));
  CHECK(c.present(CTA_STATS_DROP));
  CHECK(!c.present(CTA_STATS_INSERT));
  CHECK(c.total(CTA_STATS_FOUND) == 0xfffffff0ull + 100);
  CHECK(c.total(CTA_STATS_DROP) == 5);

  // Second poll: CPU 0 wrapped past 2^32, CPU 1 grew a little.
  c.Observe(stats(0, 0x10u));
  c.Observe(stats(1, 103, 5));
  CHECK(c.total(CTA_STATS_FOUND) == 0xfffffff0ull + 0x20 + 103);
  CHECK(c.total(CTA_STATS_DROP) == 5);

  // A CPU seen for the first time later adds its whole value.
  const uint64_t before = c.total(CTA_STATS_FOUND);
  c.Observe(stats(7, 9));
  CHECK(c.total(CTA_STATS_FOUND) == before + 9);
  CHECK(c.total(99) == 0);
  CHECK(!c.present(99));
}

TEST_CASE("a TCP entry parses both tuples, status and TCP state", "[ctnetlink]") {
  CtMsg m(IPCTNL_MSG_CT_NEW, NLM_F_MULTI, AF_INET);
  m.Tuple(CTA_TUPLE_ORIG, "10.1.0.5", "192.0.2.80", IPPROTO_TCP, 40000, 443)
      .Tuple(CTA_TUPLE_REPLY, "192.0.2.80", "198.51.100.1", IPPROTO_TCP, 443, 61000)
      .Be32(CTA_STATUS, IPS_SRC_NAT | IPS_CONFIRMED | IPS_ASSURED)
      .TcpState(3)
      .Be32(CTA_TIMEOUT, 300)
      .Be32(CTA_ID, 77)
      .Be32(40, 1);  // A future top-level attribute.
  auto r = ParseCtEntry(m.nlh());
  REQUIRE(r.ok());
  const CtEntry& e = r.value();
  CHECK(e.family == AF_INET);
  CHECK(e.orig.family == AF_INET);
  CHECK(e.orig.proto == IPPROTO_TCP);
  CHECK(e.orig.has_ports);
  CHECK(e.orig.src_port == 40000);
  CHECK(e.orig.dst_port == 443);
  CHECK(FormatAddress(AF_INET, e.orig.src) == "10.1.0.5");
  REQUIRE(e.reply);
  CHECK(FormatAddress(AF_INET, e.reply->dst) == "198.51.100.1");
  CHECK(e.reply->dst_port == 61000);
  CHECK((e.status & IPS_SRC_NAT) != 0);
  CHECK(e.tcp_state == 3);
}

TEST_CASE("IPv6 and ICMP entries parse without ports or TCP state", "[ctnetlink]") {
  CtMsg m(IPCTNL_MSG_CT_NEW, NLM_F_MULTI, AF_INET6);
  m.Tuple(CTA_TUPLE_ORIG, "2001:db8::1", "2001:db8::2", IPPROTO_ICMPV6, 0, 0)
      .Tuple(CTA_TUPLE_REPLY, "2001:db8::2", "2001:db8::1", IPPROTO_ICMPV6, 0, 0);
  auto r = ParseCtEntry(m.nlh());
  REQUIRE(r.ok());
  CHECK(r.value().orig.family == AF_INET6);
  CHECK(!r.value().orig.has_ports);
  CHECK(!r.value().tcp_state);
  CHECK(r.value().status == 0);
  CHECK(FormatAddress(AF_INET6, r.value().orig.dst) == "2001:db8::2");
}

TEST_CASE("malformed entries are corruption, not out-of-bounds reads", "[ctnetlink]") {
  SECTION("no original tuple") {
    CtMsg m(IPCTNL_MSG_CT_NEW);
    m.Be32(CTA_STATUS, 0);
    CHECK(ParseCtEntry(m.nlh()).status().code() == Status::Code::kCorruption);
  }
  SECTION("IPv4 address attribute of 2 bytes") {
    CtMsg m(IPCTNL_MSG_CT_NEW);
    const uint8_t two[2] = {10, 0};
    const uint8_t four[4] = {10, 0, 0, 1};
    m.Begin(CTA_TUPLE_ORIG).Begin(CTA_TUPLE_IP);
    m.Raw(CTA_IP_V4_SRC, two, 2).Raw(CTA_IP_V4_DST, four, 4);
    m.End().Begin(CTA_TUPLE_PROTO).U8(CTA_PROTO_NUM, IPPROTO_UDP).End().End();
    CHECK(ParseCtEntry(m.nlh()).status().code() == Status::Code::kCorruption);
  }
  SECTION("tuple without protocol") {
    CtMsg m(IPCTNL_MSG_CT_NEW);
    const uint8_t four[4] = {10, 0, 0, 1};
    m.Begin(CTA_TUPLE_ORIG).Begin(CTA_TUPLE_IP);
    m.Raw(CTA_IP_V4_SRC, four, 4).Raw(CTA_IP_V4_DST, four, 4);
    m.End().End();
    CHECK(ParseCtEntry(m.nlh()).status().code() == Status::Code::kCorruption);
  }
  SECTION("port attribute of 1 byte") {
    CtMsg m(IPCTNL_MSG_CT_NEW);
    const uint8_t four[4] = {10, 0, 0, 1};
    m.Begin(CTA_TUPLE_ORIG).Begin(CTA_TUPLE_IP);
    m.Raw(CTA_IP_V4_SRC, four, 4).Raw(CTA_IP_V4_DST, four, 4);
    m.End().Begin(CTA_TUPLE_PROTO).U8(CTA_PROTO_NUM, IPPROTO_TCP);
    m.U8(CTA_PROTO_SRC_PORT, 1).Be16(CTA_PROTO_DST_PORT, 80).End().End();
    CHECK(ParseCtEntry(m.nlh()).status().code() == Status::Code::kCorruption);
  }
  SECTION("TCP state attribute with no payload") {
    CtMsg m(IPCTNL_MSG_CT_NEW);
    m.Tuple(CTA_TUPLE_ORIG, "10.0.0.1", "10.0.0.2", IPPROTO_TCP, 1, 2);
    m.Begin(CTA_PROTOINFO).Begin(CTA_PROTOINFO_TCP).Raw(CTA_PROTOINFO_TCP_STATE, nullptr, 0);
    m.End().End();
    CHECK(ParseCtEntry(m.nlh()).status().code() == Status::Code::kCorruption);
  }
  SECTION("nested length running past its parent") {
    CtMsg m(IPCTNL_MSG_CT_NEW);
    m.Tuple(CTA_TUPLE_ORIG, "10.0.0.1", "10.0.0.2", IPPROTO_TCP, 1, 2);
    auto bytes = m.bytes();
    // The first nested attribute (CTA_TUPLE_IP) claims more than CTA_TUPLE_ORIG holds.
    auto* inner = reinterpret_cast<nlattr*>(bytes.data() + NlAlign(sizeof(nlmsghdr)) +
                                            NlAlign(sizeof(nfgenmsg)) + NlAlign(sizeof(nlattr)));
    inner->nla_len = 200;
    CHECK(ParseCtEntry(reinterpret_cast<const nlmsghdr*>(bytes.data())).status().code() ==
          Status::Code::kCorruption);
  }
}

namespace {

CtEntry Entry(const std::string& osrc, const std::string& odst, uint8_t proto, uint16_t sport,
              uint16_t dport, uint32_t status = 0, std::optional<uint8_t> tcp_state = std::nullopt,
              const std::string& nat = "", uint16_t nat_port = 0) {
  CtMsg m(IPCTNL_MSG_CT_NEW);
  m.Tuple(CTA_TUPLE_ORIG, osrc, odst, proto, sport, dport);
  m.Tuple(CTA_TUPLE_REPLY, odst, nat.empty() ? osrc : nat, proto, dport,
          nat.empty() ? sport : nat_port);
  m.Be32(CTA_STATUS, status);
  if (tcp_state) m.TcpState(*tcp_state);
  auto r = ParseCtEntry(m.nlh());
  REQUIRE(r.ok());
  return r.value();
}

}  // namespace

TEST_CASE("the table aggregate counts by protocol and TCP state", "[ctnetlink]") {
  CtTableAggregate agg(100);
  for (int i = 0; i < 3; ++i) agg.Add(Entry("10.0.0.1", "10.0.0.2", IPPROTO_TCP, 1000, 80, 0, 3));
  for (int i = 0; i < 2; ++i) agg.Add(Entry("10.0.0.1", "10.0.0.2", IPPROTO_TCP, 1000, 80, 0, 7));
  agg.Add(Entry("10.0.0.1", "10.0.0.2", IPPROTO_TCP, 1000, 80, 0, 42));  // Future state.
  agg.Add(Entry("10.0.0.1", "10.0.0.2", IPPROTO_UDP, 53, 53));
  agg.Add(Entry("10.0.0.1", "10.0.0.2", IPPROTO_ICMP, 0, 0));
  agg.Add(Entry("::1", "::2", IPPROTO_ICMPV6, 0, 0));
  agg.Add(Entry("10.0.0.1", "10.0.0.2", IPPROTO_GRE, 0, 0));
  CHECK(agg.entries() == 10);
  CHECK(agg.count(CtProto::kTcp, 3) == 3);
  CHECK(agg.count(CtProto::kTcp, 7) == 2);
  CHECK(agg.count(CtProto::kTcp, kCtTcpStateUnknown) == 1);
  CHECK(agg.count(CtProto::kUdp, 0) == 1);
  CHECK(agg.count(CtProto::kIcmp, 0) == 1);
  CHECK(agg.count(CtProto::kIcmpv6, 0) == 1);
  CHECK(agg.count(CtProto::kOther, 0) == 1);
  CHECK(agg.snat_entries() == 0);
  CHECK(agg.MaxSnatPorts() == 0);
  CHECK(agg.TopSnat(10).empty());
  CHECK(std::string(CtTcpStateName(3)) == "established");
  CHECK(std::string(CtTcpStateName(7)) == "time_wait");
  CHECK(std::string(CtTcpStateName(9)) == "syn_sent2");
  CHECK(std::string(CtTcpStateName(kCtTcpStateUnknown)) == "unknown");
}

TEST_CASE("SNAT entries are grouped by the reply tuple and ranked", "[ctnetlink][snat]") {
  CtTableAggregate agg(100);
  // 5 pods' flows to 192.0.2.1:443 masqueraded to 198.51.100.1.
  for (uint16_t i = 0; i < 5; ++i) {
    agg.Add(Entry("10.1.0." + std::to_string(i + 1), "192.0.2.1", IPPROTO_TCP, 40000, 443,
                  IPS_SRC_NAT, 3, "198.51.100.1", static_cast<uint16_t>(2000 + i)));
  }
  // 2 to 192.0.2.2:53/udp, 2 to 192.0.2.1:80.
  for (uint16_t i = 0; i < 2; ++i) {
    agg.Add(Entry("10.1.0.9", "192.0.2.2", IPPROTO_UDP, static_cast<uint16_t>(3000 + i), 53,
                  IPS_SRC_NAT, std::nullopt, "198.51.100.1", static_cast<uint16_t>(3000 + i)));
    agg.Add(Entry("10.1.0.9", "192.0.2.1", IPPROTO_TCP, static_cast<uint16_t>(3000 + i), 80,
                  IPS_SRC_NAT, 3, "198.51.100.1", static_cast<uint16_t>(3000 + i)));
  }
  // DNAT-only and un-NATed entries do not count.
  agg.Add(Entry("10.1.0.9", "192.0.2.1", IPPROTO_TCP, 5000, 443, IPS_DST_NAT, 3));
  agg.Add(Entry("10.1.0.9", "192.0.2.1", IPPROTO_TCP, 5001, 443, 0, 3));
  // SNAT ICMP has no ports: not a port user.
  agg.Add(Entry("10.1.0.9", "192.0.2.1", IPPROTO_ICMP, 0, 0, IPS_SRC_NAT, std::nullopt,
                "198.51.100.1", 0));

  CHECK(agg.snat_entries() == 9);
  CHECK(agg.snat_tuples() == 3);
  CHECK(agg.MaxSnatPorts() == 5);
  auto top = agg.TopSnat(2);
  REQUIRE(top.size() == 2);
  CHECK(top[0].ports == 5);
  CHECK(FormatAddress(top[0].key.family, top[0].key.nat_address) == "198.51.100.1");
  CHECK(FormatAddress(top[0].key.family, top[0].key.remote_address) == "192.0.2.1");
  CHECK(top[0].key.remote_port == 443);
  CHECK(top[0].key.proto == CtProto::kTcp);
  // A tie of 2 and 2: the order is stable (by key), TCP before UDP.
  CHECK(top[1].ports == 2);
  CHECK(top[1].key.proto == CtProto::kTcp);
  CHECK(top[1].key.remote_port == 80);
  CHECK(agg.TopSnat(10).size() == 3);
  CHECK(agg.TopSnat(0).empty());
}

TEST_CASE("SNAT tuples past the cap are counted as untracked", "[ctnetlink][snat]") {
  CtTableAggregate agg(2);
  for (uint16_t port = 1; port <= 4; ++port) {
    agg.Add(Entry("10.1.0.1", "192.0.2.1", IPPROTO_TCP, 40000, port, IPS_SRC_NAT, 3, "198.51.100.1",
                  2000));
  }
  CHECK(agg.snat_tuples() == 2);
  CHECK(agg.snat_untracked() == 2);
  CHECK(agg.snat_entries() == 4);
}
