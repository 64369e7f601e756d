// Pure parsers for procfs text formats, unit-tested on fixture strings:
// integer lists (sysctls), port lists and ranges, /proc/net/netstat and
// /proc/net/snmp, and the pod UID in /proc/<pid>/cgroup.
//
// Thread-safety: reentrant functions.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "sockdiag/status.h"

namespace sockdiag {

// Parses whitespace-separated integers ("32768\t60999\n"). Corruption on
// anything else, or on no number at all.
Result<std::vector<long long>> ParseInts(std::string_view text);

// Parses a comma-separated list of ports and ranges as in
// ip_local_reserved_ports ("8080,9000-9010"); empty text is an empty list.
// Returns closed ranges [first, last].
struct PortRange {
  uint32_t first;
  uint32_t last;
};
Result<std::vector<PortRange>> ParsePortRanges(std::string_view text);

// /proc/net/netstat and /proc/net/snmp: pairs of lines
//   "TcpExt: SyncookiesSent SyncookiesRecv ..."
//   "TcpExt: 0 0 ..."
// Returns {"TcpExt.SyncookiesSent": 0, ...}. A header without its value line,
// or with a different field count, is Corruption. Values may be negative
// (Tcp MaxConn is -1).
Result<std::map<std::string, int64_t, std::less<>>> ParseNetstat(std::string_view text);

// Extracts the pod UID from /proc/<pid>/cgroup text (v1 or v2; cgroupfs or
// systemd driver; containerd, CRI-O or docker layouts), normalised to the
// dashed form kube-state-metrics uses in kube_pod_info{uid}.
std::optional<std::string> ParsePodUid(std::string_view cgroup_text);

}  // namespace sockdiag
