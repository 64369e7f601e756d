// Capabilities: which Linux capabilities the exporter holds, which of its
// enabled features needs each, and what is missing or superfluous.
//
// Least privilege per feature (see docs/security.md):
//   sockets, sysctl, netstat collectors      -> none
//   conntrack, conntrack_table collectors    -> CAP_NET_ADMIN (ctnetlink dumps;
//                                               CollectorInfo::capabilities)
//   --netns.mode=pods                        -> CAP_SYS_ADMIN (setns) and
//                                               CAP_SYS_PTRACE (open other
//                                               processes' /proc/PID/ns/net)
//   --web.listen-address with a port < 1024  -> CAP_NET_BIND_SERVICE
//
// Pure: the capabilities held come from source/capabilities.h, so the
// report is testable without privileges. Thread-safety: free functions, no
// shared state.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "sockdiag/config.h"
#include "sockdiag/metric_builder.h"
#include "sockdiag/status.h"

namespace sockdiag {

// Capability numbers as in <linux/capability.h>.
inline constexpr int kCapNetBindService = 10;
inline constexpr int kCapNetAdmin = 12;
inline constexpr int kCapSysPtrace = 19;
inline constexpr int kCapSysAdmin = 21;

// "CAP_NET_ADMIN"; "CAP_<n>" for numbers this build does not know.
std::string CapabilityName(int cap);

// Capability -> the enabled features needing it ("collector.conntrack",
// "netns.mode=pods", ...), for `config`.
std::map<int, std::vector<std::string>> NeededCapabilities(const Config& config);

struct CapabilityReport {
  uint64_t effective = 0;  // Bit n set = capability n held.
  bool all = false;        // Every capability the kernel knows is held.
  std::map<int, std::vector<std::string>> needed;
  std::vector<int> missing;   // Needed, not held.
  std::vector<int> unneeded;  // Held, needed by no enabled feature.
};

// `last_cap`: highest capability the kernel knows (/proc/sys/kernel/cap_last_cap).
CapabilityReport MakeCapabilityReport(uint64_t effective, int last_cap, const Config& config);

// sockdiag_capability{capability,needed}: one series per needed capability
// (1 held, 0 missing) and per held capability nothing needs (needed="false", 1).
MetricFamilies CapabilityFamilies(const CapabilityReport& report);

// Logs the report: one info line (held, and which feature needs what), a
// warning per missing capability naming the features that will fail, and a
// warning listing capabilities held but not needed.
void LogCapabilityReport(const CapabilityReport& report);

}  // namespace sockdiag
