#include "caps.h"

#include "flags.h"
#include "sockdiag/collector.h"
#include "sockdiag/log.h"

namespace sockdiag {
namespace {

constexpr const char* kNames[] = {
    "CAP_CHOWN",
    "CAP_DAC_OVERRIDE",
    "CAP_DAC_READ_SEARCH",
    "CAP_FOWNER",
    "CAP_FSETID",
    "CAP_KILL",
    "CAP_SETGID",
    "CAP_SETUID",
    "CAP_SETPCAP",
    "CAP_LINUX_IMMUTABLE",
    "CAP_NET_BIND_SERVICE",
    "CAP_NET_BROADCAST",
    "CAP_NET_ADMIN",
    "CAP_NET_RAW",
    "CAP_IPC_LOCK",
    "CAP_IPC_OWNER",
    "CAP_SYS_MODULE",
    "CAP_SYS_RAWIO",
    "CAP_SYS_CHROOT",
    "CAP_SYS_PTRACE",
    "CAP_SYS_PACCT",
    "CAP_SYS_ADMIN",
    "CAP_SYS_BOOT",
    "CAP_SYS_NICE",
    "CAP_SYS_RESOURCE",
    "CAP_SYS_TIME",
    "CAP_SYS_TTY_CONFIG",
    "CAP_MKNOD",
    "CAP_LEASE",
    "CAP_AUDIT_WRITE",
    "CAP_AUDIT_CONTROL",
    "CAP_SETFCAP",
    "CAP_MAC_OVERRIDE",
    "CAP_MAC_ADMIN",
    "CAP_SYSLOG",
    "CAP_WAKE_ALARM",
    "CAP_BLOCK_SUSPEND",
    "CAP_AUDIT_READ",
    "CAP_PERFMON",
    "CAP_BPF",
    "CAP_CHECKPOINT_RESTORE",
};
constexpr int kKnown = static_cast<int>(sizeof(kNames) / sizeof(kNames[0]));

bool Holds(uint64_t set, int cap) { return cap >= 0 && cap < 64 && ((set >> cap) & 1) != 0; }

std::string Join(const std::vector<std::string>& v, const char* sep) {
  std::string out;
  for (const auto& s : v) out += (out.empty() ? "" : sep) + s;
  return out;
}

std::string JoinCaps(const std::vector<int>& caps) {
  std::vector<std::string> names;
  for (int c : caps) names.push_back(CapabilityName(c));
  return names.empty() ? "none" : Join(names, ",");
}

}  // namespace

std::string CapabilityName(int cap) {
  if (cap >= 0 && cap < kKnown) return kNames[cap];
  return "CAP_" + std::to_string(cap);
}

std::map<int, std::vector<std::string>> NeededCapabilities(const Config& config) {
  std::map<int, std::vector<std::string>> needed;
  for (const auto& info : AllCollectors()) {
    if (!config.IsEnabled(info.name)) continue;
    for (int cap = 0; cap < 64; ++cap) {
      if (Holds(info.capabilities, cap)) {
        needed[cap].push_back(std::string("collector.") + info.name);
      }
    }
  }
  if (config.netns_mode == NetnsMode::kPods) {
    needed[kCapSysAdmin].push_back("netns.mode=pods");
    needed[kCapSysPtrace].push_back("netns.mode=pods");
  }
  auto addr = ParseListenAddress(config.listen_address);
  if (addr.ok() && addr.value().port > 0 && addr.value().port < 1024) {
    needed[kCapNetBindService].push_back("web.listen-address=" + config.listen_address);
  }
  return needed;
}

CapabilityReport MakeCapabilityReport(uint64_t effective, int last_cap, const Config& config) {
  CapabilityReport r;
  r.effective = effective;
  r.needed = NeededCapabilities(config);
  bool all = last_cap >= 0;
  for (int c = 0; c <= last_cap && c < 64; ++c) all = all && Holds(effective, c);
  r.all = all;
  for (const auto& [cap, features] : r.needed) {
    if (!Holds(effective, cap)) r.missing.push_back(cap);
  }
  for (int c = 0; c < 64; ++c) {
    if (Holds(effective, c) && r.needed.count(c) == 0) r.unneeded.push_back(c);
  }
  return r;
}

MetricFamilies CapabilityFamilies(const CapabilityReport& report) {
  auto f = FamilyBuilder::Gauge(
      "sockdiag_capability",
      "Linux capabilities of the exporter at start: 1 if held (effective set), 0 if not. "
      "needed=\"true\" when an enabled feature needs it; held capabilities no feature needs are "
      "listed with needed=\"false\".");
  for (const auto& [cap, features] : report.needed) {
    f.Add({{"capability", CapabilityName(cap)}, {"needed", "true"}},
          Holds(report.effective, cap) ? 1 : 0);
  }
  for (int cap : report.unneeded) {
    f.Add({{"capability", CapabilityName(cap)}, {"needed", "false"}}, 1);
  }
  MetricFamilies out;
  f.AppendTo(&out);
  return out;
}

void LogCapabilityReport(const CapabilityReport& report) {
  std::vector<int> held;
  for (int c = 0; c < 64; ++c) {
    if (Holds(report.effective, c)) held.push_back(c);
  }
  std::vector<std::string> needs;
  for (const auto& [cap, features] : report.needed) {
    needs.push_back(CapabilityName(cap) + "(" + Join(features, " ") + ")");
  }
  Log(LogLevel::kInfo, "capabilities",
      {{"held", report.all ? "all" : JoinCaps(held)},
       {"needed", needs.empty() ? "none" : Join(needs, ",")}});
  for (int cap : report.missing) {
    Log(LogLevel::kWarn, "missing capability: the features needing it will fail",
        {{"capability", CapabilityName(cap)}, {"features", Join(report.needed.at(cap), ",")}});
  }
  if (!report.unneeded.empty()) {
    Log(LogLevel::kWarn,
        report.all ? "running with every capability (full root): no enabled feature needs most "
                     "of them, drop them"
                   : "holding capabilities no enabled feature needs: drop them",
        {{"unneeded", JoinCaps(report.unneeded)}});
  }
}

}  // namespace sockdiag
