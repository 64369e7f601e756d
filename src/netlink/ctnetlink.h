// ctnetlink (NETLINK_NETFILTER, subsystem NFNL_SUBSYS_CTNETLINK) without
// libnetfilter_conntrack: request builders and parsers of the kernel's
// replies (the aggregation on top of them is in model/conntrack_model.h).
//
// Read-only by construction: BuildCtRequest() is the only place in the
// exporter that builds a ctnetlink message, and every kind it knows is an
// IPCTNL_MSG_CT_GET* type without creation or modification flags
// (IPCTNL_MSG_CT_GET_CTRZERO, which zeroes counters, is deliberately absent).
// A unit test walks kAllCtRequests to hold that line.
//
// Parsers read every attribute through nlattr.h's validated tables and
// getters: truncated or malformed attributes are Corruption, never an
// out-of-bounds read; attribute ids newer than the ones known here are
// skipped (forward compatible).
//
// Thread-safety: free functions are pure; results are plain values.
#pragma once

#include <linux/netlink.h>

#include <array>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "sockdiag/status.h"

namespace sockdiag {

// ---------------------------------------------------------------------------
// Requests

enum class CtRequest {
  kGlobalStats,  // IPCTNL_MSG_CT_GET_STATS: entries in this netns, nf_conntrack_max.
  kCpuStats,     // IPCTNL_MSG_CT_GET_STATS_CPU (dump): one message per possible CPU.
  kTableDump,    // IPCTNL_MSG_CT_GET (dump), AF_UNSPEC: every entry of this netns.
};
inline constexpr CtRequest kAllCtRequests[] = {CtRequest::kGlobalStats, CtRequest::kCpuStats,
                                               CtRequest::kTableDump};

// One complete netlink message (nlmsghdr + nfgenmsg, seq/portid 0) ready
// for NetlinkDumper::Dump, which fills in seq and portid.
std::vector<uint8_t> BuildCtRequest(CtRequest kind);

// ctnetlink message type inside nlmsg_type (low byte), and whether the
// message belongs to the ctnetlink subsystem (high byte).
constexpr uint8_t CtMessageType(uint16_t nlmsg_type) { return nlmsg_type & 0xffu; }
bool IsCtnetlinkMessage(const struct nlmsghdr* nlh);

// ---------------------------------------------------------------------------
// IPCTNL_MSG_CT_GET_STATS reply

struct CtGlobalStats {
  std::optional<uint32_t> entries;      // CTA_STATS_GLOBAL_ENTRIES (this netns).
  std::optional<uint32_t> max_entries;  // CTA_STATS_GLOBAL_MAX_ENTRIES (nf_conntrack_max).
};
Result<CtGlobalStats> ParseCtGlobalStats(const struct nlmsghdr* nlh);

// ---------------------------------------------------------------------------
// IPCTNL_MSG_CT_GET_STATS_CPU replies

// Highest per-CPU statistic id read (CTA_STATS_CHAIN_TOOLONG); newer ids
// are skipped.
inline constexpr uint16_t kCtStatsMaxKnown = 15;

struct CtCpuStats {
  uint16_t cpu = 0;  // nfgenmsg.res_id.
  // values[id] for every known id the message carried (1..kCtStatsMaxKnown).
  std::array<std::optional<uint32_t>, kCtStatsMaxKnown + 1> values{};
};
Result<CtCpuStats> ParseCtCpuStats(const struct nlmsghdr* nlh);

// ---------------------------------------------------------------------------
// IPCTNL_MSG_CT_GET dump: one entry per message

struct CtTuple {
  uint8_t family = 0;  // AF_INET or AF_INET6 (from the address attributes).
  std::array<uint8_t, 16> src{};
  std::array<uint8_t, 16> dst{};
  uint8_t proto = 0;  // CTA_PROTO_NUM.
  bool has_ports = false;
  uint16_t src_port = 0;  // Host order; valid when has_ports.
  uint16_t dst_port = 0;
};

struct CtEntry {
  uint8_t family = 0;  // nfgenmsg.nfgen_family.
  CtTuple orig;
  std::optional<CtTuple> reply;
  uint32_t status = 0;               // CTA_STATUS (IPS_* bits), 0 when absent.
  std::optional<uint8_t> tcp_state;  // CTA_PROTOINFO_TCP_STATE (TCP_CONNTRACK_*).
};
// Corruption when CTA_TUPLE_ORIG is missing or any attribute read is short.
Result<CtEntry> ParseCtEntry(const struct nlmsghdr* nlh);

}  // namespace sockdiag
