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
    for (const auto& stat : kCtExportedStats) {
      if (!counters_.present(stat.attr)) continue;
      FamilyBuilder::Counter("sockdiag_conntrack_" + std::string(stat.name) + "_total",
                             std::string(stat.help) + ", summed over CPUs, at the last poll.")
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
