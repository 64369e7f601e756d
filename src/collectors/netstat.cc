// Collector "netstat": TCP counters from <net_dir>/snmp and <net_dir>/netstat,
// typed as counters. These are the churn signals a sysctl flip cannot hide
// (field case 3): connections opened, TIME_WAIT sockets finished, reused and
// dropped on bucket overflow. A field the kernel lacks is simply absent.

#include "collectors/collectors.h"
#include "proc/proc_parsers.h"

namespace sockdiag {
namespace {

struct CounterSpec {
  const char* file;  // "snmp" or "netstat"
  const char* key;   // "Proto.Field"
  const char* name;
  const char* help;
};

constexpr CounterSpec kCounters[] = {
    {"snmp", "Tcp.ActiveOpens", "sockdiag_tcp_active_opens_total",
     "TCP connections opened by connect() (Tcp ActiveOpens)."},
    {"snmp", "Tcp.PassiveOpens", "sockdiag_tcp_passive_opens_total",
     "TCP connections accepted from listeners (Tcp PassiveOpens)."},
    {"snmp", "Tcp.AttemptFails", "sockdiag_tcp_attempt_fails_total",
     "TCP connection attempts that failed (Tcp AttemptFails)."},
    {"snmp", "Tcp.EstabResets", "sockdiag_tcp_estab_resets_total",
     "TCP connections reset from ESTABLISHED or CLOSE_WAIT (Tcp EstabResets)."},
    {"netstat", "TcpExt.TW", "sockdiag_tcp_time_wait_closed_total",
     "TIME_WAIT sockets that ran their full timer (TcpExt TW)."},
    {"netstat", "TcpExt.TWRecycled", "sockdiag_tcp_time_wait_reused_total",
     "TIME_WAIT sockets reused by connect() under tcp_tw_reuse (TcpExt TWRecycled)."},
    {"netstat", "TcpExt.TCPTimeWaitOverflow", "sockdiag_tcp_time_wait_overflows_total",
     "Connections closed without TIME_WAIT because tcp_max_tw_buckets was reached "
     "(TcpExt TCPTimeWaitOverflow)."},
    {"netstat", "TcpExt.ListenOverflows", "sockdiag_tcp_listen_overflows_total",
     "Connections dropped because a listener's accept queue was full (TcpExt ListenOverflows)."},
    {"netstat", "TcpExt.ListenDrops", "sockdiag_tcp_listen_drops_total",
     "Connections dropped at a listener for any reason (TcpExt ListenDrops)."},
};

class NetstatCollector final : public Collector {
 public:
  Status Collect(const PollContext& ctx, MetricFamilies* out) override {
    std::map<std::string, int64_t, std::less<>> values;
    for (const char* file : {"snmp", "netstat"}) {
      auto text = ctx.procfs.ReadFile(ctx.net_dir + "/" + file);
      if (!text.ok()) return text.status();
      auto parsed = ParseNetstat(text.value());
      if (!parsed.ok()) return parsed.status().WithPrefix(ctx.procfs.Path(ctx.net_dir + "/" + file));
      values.merge(parsed.value());
    }
    for (const auto& spec : kCounters) {
      auto it = values.find(spec.key);
      if (it == values.end()) continue;
      auto family = FamilyBuilder::Counter(spec.name, spec.help);
      family.Add(static_cast<double>(it->second));
      std::move(family).AppendTo(out);
    }
    return Status::Ok();
  }
};

}  // namespace

std::unique_ptr<Collector> NewNetstatCollector(const Config&) {
  return std::make_unique<NetstatCollector>();
}

}  // namespace sockdiag
