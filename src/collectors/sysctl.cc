// Collector "sysctl": the sysctls that decide how TIME_WAIT, ports and
// conntrack behave, as sockdiag_sysctl{name="<dotted name>"[,field]}; plus
// sockdiag_ephemeral_ports_reserved, the reserved ports inside the range.
//
// net.* sysctls are per network namespace and are read from the namespace of
// the reading thread. A key this kernel lacks (tcp_tw_recycle on >= 4.12,
// netfilter keys without conntrack) yields no series; one unreadable key is
// logged and counted but never hides the others. Only a missing
// ip_local_port_range (present on every Linux) fails the collector: it means
// --path.procfs does not point at a procfs.

#include <algorithm>

#include "collectors/collectors.h"
#include "model/port_settings.h"
#include "proc/proc_parsers.h"
#include "sockdiag/log.h"

namespace sockdiag {
namespace {

struct SysctlSpec {
  std::string name;
  std::vector<std::string> fields;  // Names for multi-valued sysctls; empty = single value.
};

const std::vector<SysctlSpec>& CuratedSysctls() {
  static const std::vector<SysctlSpec> kList = {
      {"net.ipv4.ip_local_port_range", {"low", "high"}},
      {"net.ipv4.tcp_tw_reuse", {}},
      {"net.ipv4.tcp_tw_reuse_delay", {}},
      {"net.ipv4.tcp_timestamps", {}},
      {"net.ipv4.tcp_tw_recycle", {}},
      {"net.ipv4.tcp_fin_timeout", {}},
      {"net.ipv4.tcp_max_tw_buckets", {}},
      {"net.ipv4.tcp_max_syn_backlog", {}},
      {"net.ipv4.tcp_syncookies", {}},
      {"net.core.somaxconn", {}},
      {"net.netfilter.nf_conntrack_max", {}},
      {"net.netfilter.nf_conntrack_buckets", {}},
      {"net.netfilter.nf_conntrack_tcp_timeout_time_wait", {}},
      {"net.netfilter.nf_conntrack_tcp_timeout_established", {}},
      {"net.netfilter.nf_conntrack_tcp_timeout_close_wait", {}},
  };
  return kList;
}

class SysctlCollector final : public Collector {
 public:
  explicit SysctlCollector(const Config& config) : specs_(CuratedSysctls()) {
    for (const auto& name : config.sysctl_include) {
      bool known = std::any_of(specs_.begin(), specs_.end(),
                               [&](const SysctlSpec& s) { return s.name == name; });
      if (!known) specs_.push_back({name, {}});
    }
  }

  Status Collect(const PollContext& ctx, MetricFamilies* out) override {
    auto family = FamilyBuilder::Gauge(
        "sockdiag_sysctl",
        "Value of a kernel sysctl in this network namespace, by dotted name (and field for "
        "multi-valued ones), read at the last poll.");
    double read_errors = 0;
    std::vector<long long> port_range;
    for (const auto& spec : specs_) {
      auto values = ctx.procfs.ReadSysctlInts(spec.name);
      if (!values.ok()) {
        if (spec.name == "net.ipv4.ip_local_port_range") {
          return values.status().WithPrefix("required sysctl unreadable");
        }
        if (!values.status().IsNotFound()) {
          read_errors++;
          LogOnce(LogLevel::kWarn, "sysctl:" + spec.name, "cannot read sysctl",
                  {{"name", spec.name}, {"err", values.status().ToString()}});
        }
        continue;
      }
      const auto& v = values.value();
      if (spec.name == "net.ipv4.ip_local_port_range") port_range = v;
      if (v.size() == 1) {
        family.Add({{"name", spec.name}}, static_cast<double>(v[0]));
        continue;
      }
      for (size_t i = 0; i < v.size(); ++i) {
        std::string field = i < spec.fields.size() ? spec.fields[i] : std::to_string(i);
        family.Add({{"name", spec.name}, {"field", field}}, static_cast<double>(v[i]));
      }
    }
    std::move(family).AppendTo(out);

    auto errors = FamilyBuilder::Gauge(
        "sockdiag_sysctl_read_errors",
        "Sysctls that exist but could not be read or parsed at the last poll.");
    errors.Add(read_errors);
    std::move(errors).AppendTo(out);

    if (port_range.size() == 2) {
      auto reserved = ctx.procfs.ReadFile("sys/net/ipv4/ip_local_reserved_ports");
      if (reserved.ok()) {
        auto ranges = ParsePortRanges(reserved.value());
        if (ranges.ok()) {
          auto f = FamilyBuilder::Gauge(
              "sockdiag_ephemeral_ports_reserved",
              "Ports of ip_local_port_range listed in ip_local_reserved_ports (never picked by "
              "connect()).");
          f.Add(static_cast<double>(CountReservedInRange(
              ranges.value(), static_cast<uint32_t>(port_range[0]),
              static_cast<uint32_t>(port_range[1]))));
          std::move(f).AppendTo(out);
        }
      }
    }
    return Status::Ok();
  }

 private:
  std::vector<SysctlSpec> specs_;
};

}  // namespace

std::unique_ptr<Collector> NewSysctlCollector(const Config& config) {
  return std::make_unique<SysctlCollector>(config);
}

}  // namespace sockdiag
