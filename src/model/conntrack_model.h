// The conntrack collectors' models over parsed ctnetlink replies
// (netlink/ctnetlink.h): per-CPU counters summed into monotonic totals, and
// the table aggregate (entries by protocol and TCP state, SNAT port usage)
// with the label vocabularies it reports in.
//
// Thread-safety: free functions are pure; the classes are plain values used
// by one thread at a time.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <map>
#include <optional>
#include <unordered_map>
#include <vector>

#include "netlink/ctnetlink.h"

namespace sockdiag {

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
