// The static collector table: {name, enabled by default, help, factory,
// capabilities needed}.
// Flags --[no-]collector.NAME and --collector.disable-defaults derive from it.

#include <linux/capability.h>

#include "collectors/collectors.h"

namespace sockdiag {
namespace {

constexpr uint64_t kNetAdmin = uint64_t{1} << CAP_NET_ADMIN;

constexpr CollectorInfo kCollectors[] = {
    {"sockets", true, "TCP/UDP sockets by state and family (sock_diag)", NewSocketsCollector},
    {"sysctl", true, "TCP, port-range and conntrack sysctls", NewSysctlCollector},
    {"netstat", true, "TCP counters from /proc/net/netstat and /proc/net/snmp",
     NewNetstatCollector},
    {"ports", true, "Ephemeral-port pressure per destination, service ports, listen queues",
     NewPortsCollector},
    // The kernel refuses ctnetlink dumps without CAP_NET_ADMIN in the
    // namespace's owning user namespace.
    {"conntrack", true, "Conntrack table fill and per-CPU statistics (ctnetlink)",
     NewConntrackCollector, kNetAdmin},
    {"conntrack_table", true,
     "Conntrack entries by protocol and TCP state, SNAT port usage (ctnetlink table dump every "
     "--conntrack.dump-interval)",
     NewConntrackTableCollector, kNetAdmin},
};

}  // namespace

std::span<const CollectorInfo> AllCollectors() { return kCollectors; }

}  // namespace sockdiag
