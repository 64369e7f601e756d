#include "netlink/ctnetlink.h"

#include <arpa/inet.h>
#include <libmnl/libmnl.h>
#include <linux/netfilter/nf_conntrack_common.h>
#include <linux/netfilter/nfnetlink.h>
#include <linux/netfilter/nfnetlink_conntrack.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <algorithm>
#include <cstring>
#include <tuple>

#include "netlink/nlattr.h"

namespace sockdiag {
namespace {

// Attribute tables sized by the highest id read; higher ids are skipped.
constexpr uint16_t kCtaMaxRead = CTA_PROTOINFO;
constexpr uint16_t kTupleMaxRead = CTA_TUPLE_PROTO;
constexpr uint16_t kIpMaxRead = CTA_IP_V6_DST;
constexpr uint16_t kProtoMaxRead = CTA_PROTO_DST_PORT;
constexpr uint16_t kProtoinfoMaxRead = CTA_PROTOINFO_TCP;
constexpr uint16_t kProtoinfoTcpMaxRead = CTA_PROTOINFO_TCP_STATE;
constexpr uint16_t kGlobalMaxRead = CTA_STATS_GLOBAL_MAX_ENTRIES;

struct nfgenmsg ReadNfgen(const struct nlmsghdr* nlh) {
  struct nfgenmsg g;
  std::memcpy(&g, mnl_nlmsg_get_payload(nlh), sizeof(g));
  return g;
}

// Fills `addr` from an address attribute of exactly `len` bytes or more.
Status ReadAddress(const struct nlattr* attr, size_t len, std::array<uint8_t, 16>* addr) {
  auto p = AttrPayload(attr);
  if (p.size() < len) return Status::Corruption("conntrack address attribute too short");
  addr->fill(0);
  std::memcpy(addr->data(), p.data(), len);
  return Status::Ok();
}

Status ParseTuple(const struct nlattr* nest, CtTuple* t) {
  std::array<const struct nlattr*, kTupleMaxRead + 1> tb{};
  Status s = ParseNestedAttrs(nest, kTupleMaxRead, tb);
  if (!s.ok()) return s;
  if (tb[CTA_TUPLE_IP] == nullptr || tb[CTA_TUPLE_PROTO] == nullptr) {
    return Status::Corruption("conntrack tuple without address or protocol");
  }

  std::array<const struct nlattr*, kIpMaxRead + 1> ip{};
  s = ParseNestedAttrs(tb[CTA_TUPLE_IP], kIpMaxRead, ip);
  if (!s.ok()) return s;
  if (ip[CTA_IP_V4_SRC] != nullptr && ip[CTA_IP_V4_DST] != nullptr) {
    t->family = AF_INET;
    if (s = ReadAddress(ip[CTA_IP_V4_SRC], 4, &t->src); !s.ok()) return s;
    if (s = ReadAddress(ip[CTA_IP_V4_DST], 4, &t->dst); !s.ok()) return s;
  } else if (ip[CTA_IP_V6_SRC] != nullptr && ip[CTA_IP_V6_DST] != nullptr) {
    t->family = AF_INET6;
    if (s = ReadAddress(ip[CTA_IP_V6_SRC], 16, &t->src); !s.ok()) return s;
    if (s = ReadAddress(ip[CTA_IP_V6_DST], 16, &t->dst); !s.ok()) return s;
  } else {
    return Status::Corruption("conntrack tuple without a source and destination address");
  }

  std::array<const struct nlattr*, kProtoMaxRead + 1> pr{};
  s = ParseNestedAttrs(tb[CTA_TUPLE_PROTO], kProtoMaxRead, pr);
  if (!s.ok()) return s;
  if (pr[CTA_PROTO_NUM] == nullptr)
    return Status::Corruption("conntrack tuple without CTA_PROTO_NUM");
  auto num = AttrU8(pr[CTA_PROTO_NUM]);
  if (!num.ok()) return num.status();
  t->proto = num.value();
  if (pr[CTA_PROTO_SRC_PORT] != nullptr && pr[CTA_PROTO_DST_PORT] != nullptr) {
    auto sp = AttrBe16(pr[CTA_PROTO_SRC_PORT]);
    if (!sp.ok()) return sp.status();
    auto dp = AttrBe16(pr[CTA_PROTO_DST_PORT]);
    if (!dp.ok()) return dp.status();
    t->has_ports = true;
    t->src_port = sp.value();
    t->dst_port = dp.value();
  }
  return Status::Ok();
}

}  // namespace

// ---------------------------------------------------------------------------
// Requests

std::vector<uint8_t> BuildCtRequest(CtRequest kind) {
  uint8_t type = IPCTNL_MSG_CT_GET;
  uint16_t flags = NLM_F_REQUEST;
  switch (kind) {
    case CtRequest::kGlobalStats:
      type = IPCTNL_MSG_CT_GET_STATS;
      // The kernel flags its single answer NLM_F_MULTI without ever sending
      // NLMSG_DONE; the ACK that follows it is what ends the exchange.
      flags |= NLM_F_ACK;
      break;
    case CtRequest::kCpuStats:
      type = IPCTNL_MSG_CT_GET_STATS_CPU;
      flags |= NLM_F_DUMP;
      break;
    case CtRequest::kTableDump:
      type = IPCTNL_MSG_CT_GET;
      flags |= NLM_F_DUMP;
      break;
  }
  std::vector<uint8_t> buf(NlAlign(sizeof(struct nlmsghdr)) + NlAlign(sizeof(struct nfgenmsg)), 0);
  struct nlmsghdr* nlh = mnl_nlmsg_put_header(buf.data());
  nlh->nlmsg_type = static_cast<uint16_t>((NFNL_SUBSYS_CTNETLINK << 8) | type);
  nlh->nlmsg_flags = flags;
  auto* g = static_cast<struct nfgenmsg*>(mnl_nlmsg_put_extra_header(nlh, sizeof(struct nfgenmsg)));
  g->nfgen_family = AF_UNSPEC;  // Every L3 family.
  g->version = NFNETLINK_V0;
  g->res_id = 0;
  buf.resize(nlh->nlmsg_len);
  return buf;
}

bool IsCtnetlinkMessage(const struct nlmsghdr* nlh) {
  return (nlh->nlmsg_type >> 8) == NFNL_SUBSYS_CTNETLINK;
}

// ---------------------------------------------------------------------------
// Global stats

Result<CtGlobalStats> ParseCtGlobalStats(const struct nlmsghdr* nlh) {
  if (!IsCtnetlinkMessage(nlh)) return Status::Corruption("not a ctnetlink message");
  std::array<const struct nlattr*, kGlobalMaxRead + 1> tb{};
  Status s = ParseMessageAttrs(nlh, sizeof(struct nfgenmsg), kGlobalMaxRead, tb);
  if (!s.ok()) return s;
  CtGlobalStats out;
  if (tb[CTA_STATS_GLOBAL_ENTRIES] != nullptr) {
    auto v = AttrBe32(tb[CTA_STATS_GLOBAL_ENTRIES]);
    if (!v.ok()) return v.status();
    out.entries = v.value();
  }
  if (tb[CTA_STATS_GLOBAL_MAX_ENTRIES] != nullptr) {
    auto v = AttrBe32(tb[CTA_STATS_GLOBAL_MAX_ENTRIES]);
    if (!v.ok()) return v.status();
    out.max_entries = v.value();
  }
  return out;
}

// ---------------------------------------------------------------------------
// Per-CPU stats

const std::array<CtStatInfo, 10> kCtExportedStats = {{
    {2, "found", "Lookups that found an existing conntrack entry"},
    {4, "invalid", "Packets conntrack could not track (invalid or malformed)"},
    {8, "insert", "Conntrack entries inserted"},
    {9, "insert_failed",
     "Conntrack entries that could not be inserted because an equal entry existed (the NAT/DNS "
     "clash race)"},
    {10, "drop", "Packets dropped because inserting their conntrack entry failed"},
    {11, "early_drop", "Conntrack entries evicted early to make room in a full table"},
    {12, "error", "Packets conntrack rejected with an error (ICMP errors that match nothing)"},
    {13, "search_restart", "Conntrack hash lookups restarted because the table changed underneath"},
    {14, "clash_resolve", "Conntrack insertion clashes resolved instead of dropping"},
    {15, "chain_too_long", "Conntrack insertions refused because a hash chain was too long"},
}};

Result<CtCpuStats> ParseCtCpuStats(const struct nlmsghdr* nlh) {
  if (!IsCtnetlinkMessage(nlh)) return Status::Corruption("not a ctnetlink message");
  std::array<const struct nlattr*, kCtStatsMaxKnown + 1> tb{};
  Status s = ParseMessageAttrs(nlh, sizeof(struct nfgenmsg), kCtStatsMaxKnown, tb);
  if (!s.ok()) return s;
  CtCpuStats out;
  out.cpu = ntohs(ReadNfgen(nlh).res_id);
  for (uint16_t id = 1; id <= kCtStatsMaxKnown; ++id) {
    if (tb[id] == nullptr) continue;
    auto v = AttrBe32(tb[id]);
    if (!v.ok()) return v.status();
    out.values[id] = v.value();
  }
  return out;
}

void CtCpuCounters::Observe(const CtCpuStats& stats) {
  auto& prev = prev_[stats.cpu];
  for (uint16_t id = 1; id <= kCtStatsMaxKnown; ++id) {
    if (!stats.values[id]) continue;
    const uint32_t cur = *stats.values[id];
    total_[id] += prev[id] ? CounterDelta32(*prev[id], cur) : cur;
    prev[id] = cur;
    present_[id] = true;
  }
}

// ---------------------------------------------------------------------------
// Entries

Result<CtEntry> ParseCtEntry(const struct nlmsghdr* nlh) {
  if (!IsCtnetlinkMessage(nlh)) return Status::Corruption("not a ctnetlink message");
  std::array<const struct nlattr*, kCtaMaxRead + 1> tb{};
  Status s = ParseMessageAttrs(nlh, sizeof(struct nfgenmsg), kCtaMaxRead, tb);
  if (!s.ok()) return s;
  CtEntry e;
  e.family = ReadNfgen(nlh).nfgen_family;
  if (tb[CTA_TUPLE_ORIG] == nullptr)
    return Status::Corruption("conntrack entry without CTA_TUPLE_ORIG");
  if (s = ParseTuple(tb[CTA_TUPLE_ORIG], &e.orig); !s.ok()) return s;
  if (tb[CTA_TUPLE_REPLY] != nullptr) {
    CtTuple reply;
    if (s = ParseTuple(tb[CTA_TUPLE_REPLY], &reply); !s.ok()) return s;
    e.reply = reply;
  }
  if (tb[CTA_STATUS] != nullptr) {
    auto v = AttrBe32(tb[CTA_STATUS]);
    if (!v.ok()) return v.status();
    e.status = v.value();
  }
  if (tb[CTA_PROTOINFO] != nullptr) {
    std::array<const struct nlattr*, kProtoinfoMaxRead + 1> pi{};
    if (s = ParseNestedAttrs(tb[CTA_PROTOINFO], kProtoinfoMaxRead, pi); !s.ok()) return s;
    if (pi[CTA_PROTOINFO_TCP] != nullptr) {
      std::array<const struct nlattr*, kProtoinfoTcpMaxRead + 1> tcp{};
      if (s = ParseNestedAttrs(pi[CTA_PROTOINFO_TCP], kProtoinfoTcpMaxRead, tcp); !s.ok()) return s;
      if (tcp[CTA_PROTOINFO_TCP_STATE] != nullptr) {
        auto v = AttrU8(tcp[CTA_PROTOINFO_TCP_STATE]);
        if (!v.ok()) return v.status();
        e.tcp_state = v.value();
      }
    }
  }
  return e;
}

std::string CtAddressString(uint8_t family, const std::array<uint8_t, 16>& addr) {
  char buf[INET6_ADDRSTRLEN] = {};
  if (inet_ntop(family == AF_INET6 ? AF_INET6 : AF_INET, addr.data(), buf, sizeof(buf)) ==
      nullptr) {
    return "";
  }
  return buf;
}

// ---------------------------------------------------------------------------
// Aggregation

CtProto CtProtoOf(uint8_t ip_proto) {
  switch (ip_proto) {
    case IPPROTO_TCP:
      return CtProto::kTcp;
    case IPPROTO_UDP:
      return CtProto::kUdp;
    case IPPROTO_ICMP:
      return CtProto::kIcmp;
    case IPPROTO_ICMPV6:
      return CtProto::kIcmpv6;
    default:
      return CtProto::kOther;
  }
}

const char* CtProtoName(CtProto p) {
  static constexpr const char* kNames[kCtProtoCount] = {"tcp", "udp", "icmp", "icmpv6", "other"};
  return kNames[static_cast<size_t>(p)];
}

const char* CtTcpStateName(size_t state) {
  static constexpr const char* kNames[kCtTcpStateCount] = {
      "none",       "syn_sent", "syn_recv",  "established", "fin_wait",
      "close_wait", "last_ack", "time_wait", "close",       "syn_sent2"};
  return state < kCtTcpStateCount ? kNames[state] : "unknown";
}

size_t SnatKeyHash::operator()(const SnatKey& k) const {
  // FNV-1a over the fields; tuples are few, quality matters more than speed.
  uint64_t h = 1469598103934665603ull;
  auto mix = [&h](const uint8_t* p, size_t n) {
    for (size_t i = 0; i < n; ++i) {
      h ^= p[i];
      h *= 1099511628211ull;
    }
  };
  const uint8_t head[4] = {k.family, static_cast<uint8_t>(k.proto),
                           static_cast<uint8_t>(k.remote_port >> 8),
                           static_cast<uint8_t>(k.remote_port & 0xff)};
  mix(head, sizeof(head));
  mix(k.nat_address.data(), k.nat_address.size());
  mix(k.remote_address.data(), k.remote_address.size());
  return static_cast<size_t>(h);
}

void CtTableAggregate::Add(const CtEntry& e) {
  entries_++;
  const CtProto proto = CtProtoOf(e.orig.proto);
  size_t state = 0;
  if (proto == CtProto::kTcp && e.tcp_state) {
    state = std::min<size_t>(*e.tcp_state, kCtTcpStateUnknown);
  }
  counts_[static_cast<size_t>(proto)][state]++;

  if ((e.status & IPS_SRC_NAT) == 0 || !e.reply || !e.reply->has_ports) return;
  snat_entries_++;
  SnatKey key;
  key.family = e.reply->family;
  key.proto = proto;
  key.remote_port = e.reply->src_port;
  key.nat_address = e.reply->dst;
  key.remote_address = e.reply->src;
  auto it = snat_.find(key);
  if (it != snat_.end()) {
    it->second++;
  } else if (snat_.size() < max_snat_tuples_) {
    snat_.emplace(key, 1);
  } else {
    snat_untracked_++;
  }
}

uint64_t CtTableAggregate::MaxSnatPorts() const {
  uint64_t m = 0;
  for (const auto& [key, ports] : snat_) m = std::max(m, ports);
  return m;
}

std::vector<SnatTuple> CtTableAggregate::TopSnat(size_t k) const {
  auto more = [](const SnatTuple& a, const SnatTuple& b) {
    if (a.ports != b.ports) return a.ports > b.ports;
    auto fields = [](const SnatKey& x) {
      return std::tie(x.family, x.proto, x.nat_address, x.remote_address, x.remote_port);
    };
    return fields(a.key) < fields(b.key);
  };
  std::vector<SnatTuple> top;
  top.reserve(std::min(k, snat_.size()) + 1);
  // A bounded heap: O(tuples * log k), O(k) extra memory.
  for (const auto& [key, ports] : snat_) {
    if (k == 0) break;
    SnatTuple t{key, ports};
    if (top.size() < k) {
      top.push_back(t);
      std::push_heap(top.begin(), top.end(), more);
    } else if (more(t, top.front())) {
      std::pop_heap(top.begin(), top.end(), more);
      top.back() = t;
      std::push_heap(top.begin(), top.end(), more);
    }
  }
  std::sort(top.begin(), top.end(), more);
  return top;
}

}  // namespace sockdiag
