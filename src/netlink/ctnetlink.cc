#include "netlink/ctnetlink.h"

#include <arpa/inet.h>
#include <libmnl/libmnl.h>
#include <linux/netfilter/nfnetlink.h>
#include <linux/netfilter/nfnetlink_conntrack.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <cstring>

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

static_assert(kCtStatsMaxKnown == CTA_STATS_CHAIN_TOOLONG);

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

}  // namespace sockdiag
