// Collector "conntrack": table fill and per-CPU statistics over ctnetlink.
//
// Every poll sends two small GET requests on a NETLINK_NETFILTER socket
// kept across polls: IPCTNL_MSG_CT_GET_STATS (entries in this network
// namespace, the global nf_conntrack_max) and IPCTNL_MSG_CT_GET_STATS_CPU
// (one message per CPU). This works on kernels without
// /proc/net/stat/nf_conntrack (CONFIG_NF_CONNTRACK_PROCFS=n, the default
// since 5.15.65/6.0). The per-CPU values are 32-bit and wrap; CtCpuCounters
// keeps per-CPU previous values so the exported sums stay monotonic.
//
// Without CAP_NET_ADMIN the kernel refuses both requests: the collector
// fails (one warning in the log). When conntrack is not loaded it fails
// quietly (debug level) and sends nothing.

#include <linux/netfilter/nfnetlink_conntrack.h>

#include <string>

#include "collectors/collectors.h"
#include "collectors/ctnetlink_session.h"
#include "model/conntrack_model.h"
#include "netlink/ctnetlink.h"

namespace sockdiag {
namespace {

// The per-CPU statistics exported, each summed over CPUs into a counter
// (CtCpuCounters). Ids the kernel stopped sending long ago (searched, new,
// ignore, delete, delete_list) are left out.
struct StatCounter {
  uint16_t attr;
  const char* name;
  const char* help;
};
constexpr StatCounter kStatCounters[] = {
    {CTA_STATS_FOUND, "sockdiag_conntrack_found_total",
     "Lookups that found an existing conntrack entry, summed over CPUs, at the last poll."},
    {CTA_STATS_INVALID, "sockdiag_conntrack_invalid_total",
     "Packets conntrack could not track (invalid or malformed), summed over CPUs, at the last "
     "poll."},
    {CTA_STATS_INSERT, "sockdiag_conntrack_insert_total",
     "Conntrack entries inserted, summed over CPUs, at the last poll."},
    {CTA_STATS_INSERT_FAILED, "sockdiag_conntrack_insert_failed_total",
     "Conntrack entries that could not be inserted because an equal entry existed (the NAT/DNS "
     "clash race), summed over CPUs, at the last poll."},
    {CTA_STATS_DROP, "sockdiag_conntrack_drop_total",
     "Packets dropped because inserting their conntrack entry failed, summed over CPUs, at the "
     "last poll."},
    {CTA_STATS_EARLY_DROP, "sockdiag_conntrack_early_drop_total",
     "Conntrack entries evicted early to make room in a full table, summed over CPUs, at the last "
     "poll."},
    {CTA_STATS_ERROR, "sockdiag_conntrack_error_total",
     "Packets conntrack rejected with an error (ICMP errors that match nothing), summed over CPUs, "
     "at the last poll."},
    {CTA_STATS_SEARCH_RESTART, "sockdiag_conntrack_search_restart_total",
     "Conntrack hash lookups restarted because the table changed underneath, summed over CPUs, at "
     "the last poll."},
    {CTA_STATS_CLASH_RESOLVE, "sockdiag_conntrack_clash_resolve_total",
     "Conntrack insertion clashes resolved instead of dropping, summed over CPUs, at the last "
     "poll."},
    {CTA_STATS_CHAIN_TOOLONG, "sockdiag_conntrack_chain_too_long_total",
     "Conntrack insertions refused because a hash chain was too long, summed over CPUs, at the "
     "last poll."},
};

class GlobalStatsSink final : public MessageSink {
 public:
  Status OnMessage(const struct nlmsghdr* nlh) override {
    if (!IsCtnetlinkMessage(nlh) || CtMessageType(nlh->nlmsg_type) != IPCTNL_MSG_CT_GET_STATS) {
      return Status::Ok();
    }
    auto parsed = ParseCtGlobalStats(nlh);
    if (!parsed.ok()) return parsed.status().WithPrefix("conntrack global stats");
    stats = parsed.value();
    return Status::Ok();
  }
  CtGlobalStats stats;
};

class CpuStatsSink final : public MessageSink {
 public:
  explicit CpuStatsSink(CtCpuCounters* counters) : counters_(counters) {}
  Status OnMessage(const struct nlmsghdr* nlh) override {
    if (!IsCtnetlinkMessage(nlh) || CtMessageType(nlh->nlmsg_type) != IPCTNL_MSG_CT_GET_STATS_CPU) {
      return Status::Ok();
    }
    auto parsed = ParseCtCpuStats(nlh);
    if (!parsed.ok()) return parsed.status().WithPrefix("conntrack per-CPU stats");
    counters_->Observe(parsed.value());
    return Status::Ok();
  }

 private:
  CtCpuCounters* counters_;
};

class ConntrackCollector final : public Collector {
 public:
  Status Collect(const PollContext& ctx, MetricFamilies* out) override {
    Status s = CheckConntrackLoaded(ctx);
    if (!s.ok()) return s;

    // Table fill: ctnetlink first, /proc/sys when the kernel lacks GET_STATS.
    GlobalStatsSink global;
    DumpStats dump_stats;
    s = session_.Run(ctx, CtRequest::kGlobalStats, global, &dump_stats);
    if (!s.ok() && !s.IsNotFound()) return s.WithPrefix("conntrack GET_STATS");
    std::optional<double> entries, limit;
    if (s.ok() && global.stats.entries) entries = *global.stats.entries;
    if (s.ok() && global.stats.max_entries) limit = *global.stats.max_entries;
    if (!entries) entries = ReadSysctl(ctx, "net.netfilter.nf_conntrack_count");
    if (!limit) limit = ReadSysctl(ctx, "net.netfilter.nf_conntrack_max");

    CpuStatsSink cpu(&counters_);
    s = session_.Run(ctx, CtRequest::kCpuStats, cpu, &dump_stats);
    if (!s.ok() && !s.IsNotFound()) return s.WithPrefix("conntrack GET_STATS_CPU");

    if (entries) {
      FamilyBuilder::Gauge("sockdiag_conntrack_entries",
                           "Conntrack entries in this network namespace at the last poll.")
          .Add(*entries)
          .AppendTo(out);
    }
    if (limit) {
      FamilyBuilder::Gauge("sockdiag_conntrack_entries_limit",
                           "Maximum conntrack entries per network namespace (nf_conntrack_max) "
                           "at the last poll.")
          .Add(*limit)
          .AppendTo(out);
    }
    for (const auto& stat : kStatCounters) {
      if (!counters_.present(stat.attr)) continue;
      FamilyBuilder::Counter(stat.name, stat.help)
          .Add(static_cast<double>(counters_.total(stat.attr)))
          .AppendTo(out);
    }
    return Status::Ok();
  }

 private:
  static std::optional<double> ReadSysctl(const PollContext& ctx, const char* name) {
    auto v = ctx.procfs.ReadSysctlInts(name);
    if (!v.ok() || v.value().size() != 1) return std::nullopt;
    return static_cast<double>(v.value()[0]);
  }

  CtnetlinkSession session_;
  CtCpuCounters counters_;
};

}  // namespace

std::unique_ptr<Collector> NewConntrackCollector(const Config&) {
  return std::make_unique<ConntrackCollector>();
}

}  // namespace sockdiag
