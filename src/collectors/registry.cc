// The static collector table: {name, enabled by default, help, factory}.
// Flags --[no-]collector.NAME and --collector.disable-defaults derive from it.

#include "collectors/collectors.h"

namespace sockdiag {
namespace {

constexpr CollectorInfo kCollectors[] = {
    {"sockets", true, "TCP/UDP sockets by state and family (sock_diag)", NewSocketsCollector},
    {"sysctl", true, "TCP, port-range and conntrack sysctls", NewSysctlCollector},
    {"netstat", true, "TCP counters from /proc/net/netstat and /proc/net/snmp",
     NewNetstatCollector},
    {"ports", true, "Ephemeral-port pressure per destination, service ports, listen queues",
     NewPortsCollector},
    {"conntrack", true, "Conntrack table fill and per-CPU statistics (ctnetlink)",
     NewConntrackCollector},
    {"conntrack_table", true,
     "Conntrack entries by protocol and TCP state, SNAT port usage (ctnetlink table dump every "
     "--conntrack.dump-interval)",
     NewConntrackTableCollector},
};

}  // namespace

std::span<const CollectorInfo> AllCollectors() { return kCollectors; }

}  // namespace sockdiag
