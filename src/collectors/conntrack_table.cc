// Collector "conntrack_table": a full ctnetlink dump (IPCTNL_MSG_CT_GET) of
// this network namespace's conntrack table, aggregated while it streams.
//
// The dump walks the whole table, which costs O(entries) in the kernel and
// here, so it runs at most every --conntrack.dump-interval; polls in between
// re-publish the last dump's numbers (or its failure). At most
// --conntrack.max-entries entries are read per dump: past the cap the dump
// is abandoned (the socket is reopened), its partial counts are published
// and sockdiag_conntrack_table_truncated_total counts it.
//
// Exported: entries by L4 protocol and TCP state; SNAT port usage per
// (NAT address, remote address, remote port, protocol) as the top
// --conntrack.top-snat tuples plus, always, the highest utilisation of the
// NAT port range (--conntrack.nat-port-range, by default 1024-65535: what
// MASQUERADE / SNAT without a port range pick from for source ports >= 1024).
// Memory: O(distinct SNAT tuples) during a dump, O(top-K) between dumps.

#include <algorithm>
#include <chrono>
#include <string>

#include "collectors/collectors.h"
#include "collectors/ctnetlink_session.h"
#include "model/conntrack_model.h"
#include "netlink/address.h"
#include "netlink/ctnetlink.h"

namespace sockdiag {
namespace {

// Distinct SNAT tuples tracked per dump; a Kubernetes node has as many as
// distinct external destinations, so this only bounds pathological cases.
constexpr size_t kMaxSnatTuples = 100000;

class TableSink final : public MessageSink {
 public:
  TableSink(CtTableAggregate* agg, uint64_t max_entries) : agg_(agg), max_entries_(max_entries) {}

  Status OnMessage(const struct nlmsghdr* nlh) override {
    if (!IsCtnetlinkMessage(nlh)) return Status::Ok();
    if (agg_->entries() >= max_entries_) {
      truncated_ = true;
      return Status::IOError("conntrack dump stopped at --conntrack.max-entries");
    }
    auto entry = ParseCtEntry(nlh);
    if (!entry.ok()) return entry.status().WithPrefix("conntrack entry");
    agg_->Add(entry.value());
    return Status::Ok();
  }
  bool truncated() const { return truncated_; }

 private:
  CtTableAggregate* agg_;
  uint64_t max_entries_;
  bool truncated_ = false;
};

// What survives between dumps: only the numbers to publish.
struct DumpResult {
  std::array<std::array<uint64_t, kCtTcpStateCount + 1>, kCtProtoCount> counts{};
  std::vector<SnatTuple> top_snat;
  uint64_t max_snat_ports = 0;
  size_t snat_tuples = 0;
  double seconds = 0;
  double timestamp = 0;
};

class ConntrackTableCollector final : public Collector {
 public:
  explicit ConntrackTableCollector(const Config& config)
      : interval_(config.conntrack_dump_interval),
        max_entries_(config.conntrack_max_entries),
        top_snat_(static_cast<size_t>(std::max(config.conntrack_top_snat, 0))),
        nat_range_size_(config.conntrack_nat_port_high >= config.conntrack_nat_port_low
                            ? config.conntrack_nat_port_high - config.conntrack_nat_port_low + 1
                            : 1) {}

  Status Collect(const PollContext& ctx, MetricFamilies* out) override {
    const auto now = ctx.clock->Now();
    if (!dumped_ || now >= next_dump_) {
      dumped_ = true;
      next_dump_ = now + interval_;
      last_status_ = Dump(ctx);
    }
    if (!last_status_.ok()) return last_status_;
    Emit(out);
    return Status::Ok();
  }

 private:
  Status Dump(const PollContext& ctx) {
    Status s = CheckConntrackLoaded(ctx);
    if (!s.ok()) return s;
    CtTableAggregate agg(kMaxSnatTuples);
    TableSink sink(&agg, max_entries_);
    DumpStats stats;
    const auto t0 = ctx.clock->Now();
    s = session_.Run(ctx, CtRequest::kTableDump, sink, &stats);
    const double seconds = ctx.clock->SecondsSince(t0);
    if (sink.truncated()) {
      truncated_total_++;
    } else if (!s.ok()) {
      return s.WithPrefix("conntrack table dump");
    }

    DumpResult r;
    for (size_t p = 0; p < kCtProtoCount; ++p) {
      for (size_t st = 0; st <= kCtTcpStateUnknown; ++st) {
        r.counts[p][st] = agg.count(static_cast<CtProto>(p), st);
      }
    }
    r.top_snat = agg.TopSnat(top_snat_);
    r.max_snat_ports = agg.MaxSnatPorts();
    r.snat_tuples = agg.snat_tuples();
    r.seconds = seconds;
    r.timestamp = ctx.clock->UnixSeconds();
    last_ = std::move(r);
    return Status::Ok();
  }

  void Emit(MetricFamilies* out) const {
    auto entries = FamilyBuilder::Gauge(
        "sockdiag_conntrack_table_entries",
        "Conntrack entries by L4 protocol and, for TCP, conntrack TCP state, at the last table "
        "dump.");
    for (size_t p = 0; p < kCtProtoCount; ++p) {
      const auto proto = static_cast<CtProto>(p);
      if (proto != CtProto::kTcp) {
        entries.Add({{"protocol", CtProtoName(proto)}, {"state", ""}},
                    static_cast<double>(last_.counts[p][0]));
        continue;
      }
      for (size_t st = 0; st <= kCtTcpStateUnknown; ++st) {
        // "unknown" only appears when some future kernel reports a new state.
        if (st == kCtTcpStateUnknown && last_.counts[p][st] == 0) continue;
        entries.Add({{"protocol", "tcp"}, {"state", CtTcpStateName(st)}},
                    static_cast<double>(last_.counts[p][st]));
      }
    }
    std::move(entries).AppendTo(out);

    auto snat = FamilyBuilder::Gauge(
        "sockdiag_conntrack_snat_ports",
        "NAT source ports in use (SNAT/MASQUERADE conntrack entries) per NAT address, remote "
        "address, remote port and protocol, for the tuples using most, at the last table dump.");
    for (const auto& t : last_.top_snat) {
      snat.Add({{"nat_address", FormatAddress(t.key.family, t.key.nat_address)},
                {"protocol", CtProtoName(t.key.proto)},
                {"remote_address", FormatAddress(t.key.family, t.key.remote_address)},
                {"remote_port", std::to_string(t.key.remote_port)}},
               static_cast<double>(t.ports));
    }
    std::move(snat).AppendTo(out);

    FamilyBuilder::Gauge("sockdiag_conntrack_snat_port_utilization_max",
                         "Highest ratio of NAT source ports in use by one (NAT address, remote "
                         "address, remote port, protocol) tuple to the NAT port range size, at "
                         "the last table dump.")
        .Add(static_cast<double>(last_.max_snat_ports) / static_cast<double>(nat_range_size_))
        .AppendTo(out);
    FamilyBuilder::Gauge("sockdiag_conntrack_snat_port_range_size",
                         "Ports in the NAT source port range utilisation is measured against "
                         "(--conntrack.nat-port-range).")
        .Add(static_cast<double>(nat_range_size_))
        .AppendTo(out);
    FamilyBuilder::Gauge("sockdiag_conntrack_snat_tuples",
                         "Distinct (NAT address, remote address, remote port, protocol) SNAT "
                         "tuples at the last table dump (at most 100000 are tracked).")
        .Add(static_cast<double>(last_.snat_tuples))
        .AppendTo(out);
    FamilyBuilder::Gauge("sockdiag_conntrack_table_dump_duration_seconds",
                         "Time the last conntrack table dump took.")
        .Add(last_.seconds)
        .AppendTo(out);
    FamilyBuilder::Gauge("sockdiag_conntrack_table_dump_timestamp_seconds",
                         "Unix time the last conntrack table dump finished.")
        .Add(last_.timestamp)
        .AppendTo(out);
    FamilyBuilder::Counter("sockdiag_conntrack_table_truncated_total",
                           "Conntrack table dumps stopped at --conntrack.max-entries entries.")
        .Add(static_cast<double>(truncated_total_))
        .AppendTo(out);
  }

  const std::chrono::milliseconds interval_;
  const uint64_t max_entries_;
  const size_t top_snat_;
  const uint32_t nat_range_size_;

  CtnetlinkSession session_;
  bool dumped_ = false;
  std::chrono::steady_clock::time_point next_dump_{};
  Status last_status_;
  DumpResult last_;
  uint64_t truncated_total_ = 0;
};

}  // namespace

std::unique_ptr<Collector> NewConntrackTableCollector(const Config& config) {
  return std::make_unique<ConntrackTableCollector>(config);
}

}  // namespace sockdiag
