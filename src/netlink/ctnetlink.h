// ctnetlink (NETLINK_NETFILTER, subsystem NFNL_SUBSYS_CTNETLINK) without
// libnetfilter_conntrack: request builders, parsers of the kernel's replies
// and the pure aggregation the conntrack collectors do on top of them.
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
// Thread-safety: free functions are pure; the classes are plain values used
// by one thread at a time.
#pragma once

#include <linux/netlink.h>

#include <array>
#include <cstddef>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <unordered_map>
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

// Highest per-CPU statistic id known here (CTA_STATS_CHAIN_TOOLONG); older
// uapi headers lack the newest ids, so they are spelled out.
inline constexpr uint16_t kCtStatsMaxKnown = 15;

// The statistics exported as counters: attribute id and metric stem
// ("found" -> sockdiag_conntrack_found_total). Ids the kernel stopped
// sending long ago (searched, new, ignore, delete, delete_list) are omitted.
struct CtStatInfo {
  uint16_t attr;
  const char* name;
  const char* help;
};
extern const std::array<CtStatInfo, 10> kCtExportedStats;

struct CtCpuStats {
  uint16_t cpu = 0;  // nfgenmsg.res_id.
  // values[id] for every known id the message carried (1..kCtStatsMaxKnown).
  std::array<std::optional<uint32_t>, kCtStatsMaxKnown + 1> values{};
};
Result<CtCpuStats> ParseCtCpuStats(const struct nlmsghdr* nlh);

// Increase of a 32-bit counter that may have wrapped once since `prev`.
constexpr uint64_t CounterDelta32(uint32_t prev, uint32_t cur) {
  return static_cast<uint32_t>(cur - prev);
}

// Sums per-CPU 32-bit counters into monotonic 64-bit totals: the first
// value seen for a (cpu, id) is taken whole, later ones add their wrap-aware
// delta. So totals equal the kernel's sums until a per-CPU value wraps, and
// keep growing across the wrap. Memory: O(CPUs).
class CtCpuCounters {
 public:
  void Observe(const CtCpuStats& stats);
  // True once some CPU reported attribute `id`.
  bool present(uint16_t id) const { return id <= kCtStatsMaxKnown && present_[id]; }
  uint64_t total(uint16_t id) const { return id <= kCtStatsMaxKnown ? total_[id] : 0; }

 private:
  std::map<uint16_t, std::array<std::optional<uint32_t>, kCtStatsMaxKnown + 1>> prev_;
  std::array<uint64_t, kCtStatsMaxKnown + 1> total_{};
  std::array<bool, kCtStatsMaxKnown + 1> present_{};
};

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

// "192.0.2.1" / "2001:db8::1" for a tuple address of `family`.
std::string CtAddressString(uint8_t family, const std::array<uint8_t, 16>& addr);

// ---------------------------------------------------------------------------
// Table aggregation (collector conntrack_table)

// L4 protocol classes used as the `protocol` label.
enum class CtProto : uint8_t { kTcp, kUdp, kIcmp, kIcmpv6, kOther };
inline constexpr size_t kCtProtoCount = 5;
CtProto CtProtoOf(uint8_t ip_proto);
const char* CtProtoName(CtProto p);

// Conntrack TCP states by TCP_CONNTRACK_* value, lower case as in
// `conntrack -L` ("established", "time_wait", ...; 9 is "syn_sent2", which
// conntrack-tools prints as LISTEN). kCtTcpStateUnknown collects values
// past the known ones.
inline constexpr size_t kCtTcpStateCount = 10;
inline constexpr size_t kCtTcpStateUnknown = kCtTcpStateCount;
const char* CtTcpStateName(size_t state);

// One SNAT destination as seen on the wire after NAT: the node address the
// NAT picked, the peer and its port, the protocol. NAT source ports are
// unique per such tuple, so its entry count is the ports it uses.
struct SnatKey {
  uint8_t family = 0;
  CtProto proto = CtProto::kOther;
  uint16_t remote_port = 0;
  std::array<uint8_t, 16> nat_address{};
  std::array<uint8_t, 16> remote_address{};
  bool operator==(const SnatKey&) const = default;
};
struct SnatKeyHash {
  size_t operator()(const SnatKey& k) const;
};
struct SnatTuple {
  SnatKey key;
  uint64_t ports = 0;
};

// Counts a table dump as it streams: entries by protocol and TCP state, and
// per SNAT tuple (IPS_SRC_NAT entries with ports: the reply tuple's source
// is the remote, its destination the NAT address and port). Memory is
// O(distinct SNAT tuples), capped at `max_snat_tuples`; entries of tuples
// past the cap are counted in snat_untracked().
class CtTableAggregate {
 public:
  explicit CtTableAggregate(size_t max_snat_tuples) : max_snat_tuples_(max_snat_tuples) {}

  void Add(const CtEntry& e);

  uint64_t entries() const { return entries_; }
  // Entries of `proto` in TCP state `state` (0..kCtTcpStateUnknown); non-TCP
  // entries are all under state 0.
  uint64_t count(CtProto proto, size_t state) const {
    return counts_[static_cast<size_t>(proto)][state];
  }
  uint64_t snat_entries() const { return snat_entries_; }
  uint64_t snat_untracked() const { return snat_untracked_; }
  size_t snat_tuples() const { return snat_.size(); }
  // The largest port count of any tuple (0 without SNAT).
  uint64_t MaxSnatPorts() const;
  // The k tuples using most ports, most first; ties by key bytes for a
  // stable order.
  std::vector<SnatTuple> TopSnat(size_t k) const;

 private:
  size_t max_snat_tuples_;
  uint64_t entries_ = 0;
  std::array<std::array<uint64_t, kCtTcpStateCount + 1>, kCtProtoCount> counts_{};
  uint64_t snat_entries_ = 0;
  uint64_t snat_untracked_ = 0;
  std::unordered_map<SnatKey, uint64_t, SnatKeyHash> snat_;
};

}  // namespace sockdiag
