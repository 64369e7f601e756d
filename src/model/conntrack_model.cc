#include "model/conntrack_model.h"

#include <linux/netfilter/nf_conntrack_common.h>
#include <netinet/in.h>

#include <algorithm>
#include <tuple>

namespace sockdiag {

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
