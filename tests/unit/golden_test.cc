// Golden exposition: netlink replies recorded from a real kernel
// (tests/data/netlink/*.bin) and the procfs fixture (tests/data/proc) go
// through every collector, NamespacePoller and the Poller's self-metrics;
// sockdiag_capability is added as the web server adds it; prometheus-cpp's
// TextSerializer writes the result, which must equal tests/golden/*.prom
// byte for byte. A ManualClock fixes every duration and timestamp; the
// build's version and revision are written as @VERSION@ and @REVISION@.
//
// Every family, whichever collector or layer built it, also passes
// prometheus-cpp's CheckMetricName/CheckLabelName and the project's naming
// rules.
//
// SOCKDIAG_UPDATE_GOLDEN=1 rewrites the golden files instead of comparing
// them (tests/golden/README.md).

#include <linux/netlink.h>
#include <prometheus/check_names.h>
#include <prometheus/text_serializer.h>

#include <catch2/catch.hpp>
#include <chrono>
#include <cstdlib>
#include <fstream>
#include <set>
#include <sstream>
#include <string>

#include "caps.h"
#include "diagnose/diagnose.h"
#include "flags.h"
#include "poll/poller.h"
#include "sockdiag/version.h"
#include "source/clock.h"
#include "source/replay.h"
#include "unit/golden.h"

using namespace sockdiag;

namespace {

const std::string kData = SOCKDIAG_TEST_DATA;

// 2026-01-01T00:00:00Z.
constexpr std::chrono::seconds kWallStart{1767225600};

// The exporter's flags with --netns.run-dir pointing nowhere, so pods mode
// never sees this machine's named namespaces.
Config ConfigFromFlags(std::vector<std::string> flags) {
  flags.push_back("--netns.run-dir=/nonexistent-netns-run-dir");
  Config config;
  auto action = ParseFlags(flags, &config);
  REQUIRE(action.ok());
  return config;
}

// CAP_NET_ADMIN (needed by the conntrack collectors) and CAP_NET_RAW (not
// needed) held, on a kernel knowing capabilities 0..40.
MetricFamilies CapabilityFamiliesFor(const Config& config) {
  const uint64_t effective = (uint64_t{1} << kCapNetAdmin) | (uint64_t{1} << 13);
  return CapabilityFamilies(MakeCapabilityReport(effective, 40, config));
}

void ReplaceAll(std::string* s, const std::string& from, const std::string& to) {
  for (size_t at = s->find(from); at != std::string::npos; at = s->find(from, at + to.size())) {
    s->replace(at, from.size(), to);
  }
}

std::string Serialize(const MetricFamilies& families) {
  std::string text = prometheus::TextSerializer().Serialize(families);
  ReplaceAll(&text, "version=\"" + std::string(kVersion) + "\"", "version=\"@VERSION@\"");
  ReplaceAll(&text, "revision=\"" + std::string(kRevision) + "\"", "revision=\"@REVISION@\"");
  return text;
}

// Prometheus naming rules over every family: valid and unique names, the
// sockdiag_ prefix, HELP text, _total exactly on counters, valid label
// names never repeated within a sample.
void LintFamilies(const MetricFamilies& families) {
  std::set<std::string> names;
  for (const auto& f : families) {
    INFO("family " << f.name);
    CHECK(prometheus::CheckMetricName(f.name));
    CHECK(f.name.rfind("sockdiag_", 0) == 0);
    CHECK(names.insert(f.name).second);
    CHECK_FALSE(f.help.empty());
    const bool counter = f.type == prometheus::MetricType::Counter;
    const bool total = f.name.size() > 6 && f.name.substr(f.name.size() - 6) == "_total";
    CHECK(counter == total);
    for (const auto& m : f.metric) {
      std::set<std::string> label_names;
      for (const auto& l : m.label) {
        INFO("label " << l.name);
        CHECK(prometheus::CheckLabelName(l.name));
        CHECK(label_names.insert(l.name).second);
      }
    }
  }
}

const prometheus::MetricFamily* Find(const MetricFamilies& families, const std::string& name) {
  for (const auto& f : families) {
    if (f.name == name) return &f;
  }
  return nullptr;
}


// One self-mode poll of the recordings; `opens` gets the sockets opened.
MetricFamilies ReplayedPoll(const Config& config, int* opens) {
  ProcFs procfs(kData + "/proc");
  ReplayFactory replay;
  REQUIRE(replay.AddFile(NETLINK_SOCK_DIAG, kData + "/netlink/sock_diag_recording.bin").ok());
  // One recording per socket, in the order the collectors open them.
  REQUIRE(replay.AddFile(NETLINK_NETFILTER, kData + "/netlink/ctnetlink_stats_recording.bin").ok());
  REQUIRE(replay.AddFile(NETLINK_NETFILTER, kData + "/netlink/ctnetlink_table_recording.bin").ok());
  ManualClock clock{std::chrono::system_clock::time_point(kWallStart)};
  Poller poller(config, {&procfs, &replay, &clock});
  poller.PollOnce();
  *opens = replay.opens();
  return *poller.Snapshot();
}

}  // namespace

TEST_CASE("golden exposition: recorded kernel replies through every collector", "[golden]") {
  const Config config = ConfigFromFlags({});
  int opens = 0;
  MetricFamilies families = ReplayedPoll(config, &opens);
  for (auto& f : CapabilityFamiliesFor(config)) families.push_back(std::move(f));

  LintFamilies(families);
  // Every collector succeeded, so the golden file holds their output.
  const auto* success = Find(families, "sockdiag_collector_success");
  REQUIRE(success != nullptr);
  CHECK(success->metric.size() == config.collectors.size());
  for (const auto& m : success->metric) {
    INFO("collector " << m.label.at(0).value);
    CHECK(m.gauge.value == 1);
  }
  CHECK(opens == 3);
  sockdiag::testing::CompareWithGolden(Serialize(families), "self.prom");
}

TEST_CASE("golden diagnose report of the recorded poll", "[golden][diagnose]") {
  const Config config = ConfigFromFlags({});
  int opens = 0;
  const MetricFamilies families = ReplayedPoll(config, &opens);
  DiagnoseInput input;
  input.last = &families;
  input.target = "current network namespace";
  input.netns_inode = 4026531840;
  const DiagnoseReport report = AnalyzeDiagnosis(input);
  sockdiag::testing::CompareWithGolden(RenderDiagnosisText(report), "diagnose_self.txt");
  sockdiag::testing::CompareWithGolden(RenderDiagnosisJson(report), "diagnose_self.json");
}

TEST_CASE("golden exposition: pods mode finding no namespace", "[golden]") {
  const Config config = ConfigFromFlags({"--netns.mode=pods"});
  ProcFs procfs(kData + "/proc");  // No <pid> directories.
  ReplayFactory replay;
  ManualClock clock{std::chrono::system_clock::time_point(kWallStart)};

  Poller poller(config, {&procfs, &replay, &clock});
  poller.PollOnce();
  MetricFamilies families = *poller.Snapshot();
  for (auto& f : CapabilityFamiliesFor(config)) families.push_back(std::move(f));

  LintFamilies(families);
  CHECK(Find(families, "sockdiag_netns_polled") != nullptr);
  CHECK(replay.opens() == 0);
  sockdiag::testing::CompareWithGolden(Serialize(families), "pods_no_namespace.prom");
}
