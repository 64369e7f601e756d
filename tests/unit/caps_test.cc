#include "caps.h"

#include <catch2/catch.hpp>

#include "source/capabilities.h"

using namespace sockdiag;

namespace {

uint64_t Bit(int cap) { return uint64_t{1} << cap; }

Config WithCollectors(std::set<std::string> collectors) {
  Config c;
  c.collectors = std::move(collectors);
  return c;
}

// Value of sockdiag_capability{capability=name,needed=needed}, or -1.
double Sample(const MetricFamilies& families, const std::string& name, const std::string& needed) {
  for (const auto& f : families) {
    for (const auto& m : f.metric) {
      std::string cap, need;
      for (const auto& l : m.label) {
        if (l.name == "capability") cap = l.value;
        if (l.name == "needed") need = l.value;
      }
      if (cap == name && need == needed) return m.gauge.value;
    }
  }
  return -1;
}

}  // namespace

TEST_CASE("caps: names", "[caps]") {
  CHECK(CapabilityName(0) == "CAP_CHOWN");
  CHECK(CapabilityName(kCapNetAdmin) == "CAP_NET_ADMIN");
  CHECK(CapabilityName(kCapSysAdmin) == "CAP_SYS_ADMIN");
  CHECK(CapabilityName(kCapSysPtrace) == "CAP_SYS_PTRACE");
  CHECK(CapabilityName(40) == "CAP_CHECKPOINT_RESTORE");
  CHECK(CapabilityName(45) == "CAP_45");
}

TEST_CASE("caps: sockets, sysctl and netstat need nothing", "[caps]") {
  Config c = WithCollectors({"sockets", "sysctl", "netstat"});
  CHECK(NeededCapabilities(c).empty());
  CapabilityReport r = MakeCapabilityReport(0, 40, c);
  CHECK(r.missing.empty());
  CHECK(r.unneeded.empty());
  CHECK_FALSE(r.all);
  // Nothing needed, nothing held: an empty (dropped) family.
  MetricFamilies f = CapabilityFamilies(r);
  REQUIRE(f.size() == 1);
  CHECK(f[0].name == "sockdiag_capability");
  CHECK(f[0].metric.empty());
}

TEST_CASE("caps: conntrack needs CAP_NET_ADMIN, pods mode SYS_ADMIN and SYS_PTRACE", "[caps]") {
  Config c = WithCollectors({"sockets", "conntrack", "conntrack_table"});
  c.netns_mode = NetnsMode::kPods;
  auto needed = NeededCapabilities(c);
  REQUIRE(needed.size() == 3);
  CHECK(needed.at(kCapNetAdmin) ==
        std::vector<std::string>{"collector.conntrack", "collector.conntrack_table"});
  CHECK(needed.at(kCapSysAdmin) == std::vector<std::string>{"netns.mode=pods"});
  CHECK(needed.at(kCapSysPtrace) == std::vector<std::string>{"netns.mode=pods"});

  // Holding NET_ADMIN and NET_RAW: SYS_ADMIN and SYS_PTRACE missing, NET_RAW superfluous.
  CapabilityReport r = MakeCapabilityReport(Bit(kCapNetAdmin) | Bit(13), 40, c);
  CHECK(r.missing == std::vector<int>{kCapSysPtrace, kCapSysAdmin});
  CHECK(r.unneeded == std::vector<int>{13});
  MetricFamilies f = CapabilityFamilies(r);
  CHECK(Sample(f, "CAP_NET_ADMIN", "true") == 1);
  CHECK(Sample(f, "CAP_SYS_ADMIN", "true") == 0);
  CHECK(Sample(f, "CAP_SYS_PTRACE", "true") == 0);
  CHECK(Sample(f, "CAP_NET_RAW", "false") == 1);
  CHECK(f[0].metric.size() == 4);
}

TEST_CASE("caps: full root is detected and everything unneeded is listed", "[caps]") {
  Config c = WithCollectors({"conntrack"});
  const uint64_t all = (uint64_t{1} << 41) - 1;  // 0..40
  CapabilityReport r = MakeCapabilityReport(all, 40, c);
  CHECK(r.all);
  CHECK(r.missing.empty());
  CHECK(r.unneeded.size() == 40);
  CHECK(Sample(CapabilityFamilies(r), "CAP_NET_ADMIN", "true") == 1);
  // One capability short of the kernel's set is not "all".
  CHECK_FALSE(MakeCapabilityReport(all & ~Bit(24), 40, c).all);
}

TEST_CASE("caps: a privileged listen port needs CAP_NET_BIND_SERVICE", "[caps]") {
  Config c = WithCollectors({"sockets"});
  c.listen_address = ":443";
  CHECK(NeededCapabilities(c).count(kCapNetBindService) == 1);
  c.listen_address = "127.0.0.1:10061";
  CHECK(NeededCapabilities(c).empty());
}

TEST_CASE("caps: the process can read its own effective set", "[caps]") {
  auto eff = EffectiveCapabilities();
  REQUIRE(eff.ok());
  const int last = LastCapability();
  CHECK(last >= 36);
  CHECK(last < 64);
}
