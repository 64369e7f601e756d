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
#include "flags.h"
#include "poll/poller.h"
#include "sockdiag/version.h"
#include "source/clock.h"
#include "source/replay.h"

using namespace sockdiag;

namespace {

const std::string kData = SOCKDIAG_TEST_DATA;
const std::string kGolden = SOCKDIAG_TEST_GOLDEN;

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

// Compares with the golden file, or rewrites it when asked to.
void CompareWithGolden(const std::string& actual, const std::string& name) {
  const std::string path = kGolden + "/" + name;
  const char* update = std::getenv("SOCKDIAG_UPDATE_GOLDEN");
  if (update != nullptr && std::string(update) == "1") {
    std::ofstream(path, std::ios::binary) << actual;
    WARN("rewrote " << path);
    return;
  }
  std::ifstream in(path, std::ios::binary);
  REQUIRE(in.good());
  std::stringstream expected_text;
  expected_text << in.rdbuf();
  const std::string expected = expected_text.str();
  if (actual == expected) return;
  // Name the first line that differs rather than print both files.
  std::istringstream a(actual), e(expected);
  std::string a_line, e_line;
  int line = 0;
  for (;;) {
    ++line;
    const bool more_a = static_cast<bool>(std::getline(a, a_line));
    const bool more_e = static_cast<bool>(std::getline(e, e_line));
    if (!more_a) a_line = "<end of output>";
    if (!more_e) e_line = "<end of file>";
    if (a_line != e_line || (!more_a && !more_e)) break;
  }
  FAIL_CHECK(path << " differs at line " << line << "\n  expected: " << e_line
                  << "\n  actual:   " << a_line
                  << "\n(after a deliberate change, SOCKDIAG_UPDATE_GOLDEN=1 rewrites it: "
                     "tests/golden/README.md)");
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

}  // namespace

TEST_CASE("golden exposition: recorded kernel replies through every collector", "[golden]") {
  const Config config = ConfigFromFlags({});
  ProcFs procfs(kData + "/proc");
  ReplayFactory replay;
  REQUIRE(replay.AddFile(NETLINK_SOCK_DIAG, kData + "/netlink/sock_diag_recording.bin").ok());
  // One recording per socket, in the order the collectors open them.
  REQUIRE(replay.AddFile(NETLINK_NETFILTER, kData + "/netlink/ctnetlink_stats_recording.bin").ok());
  REQUIRE(replay.AddFile(NETLINK_NETFILTER, kData + "/netlink/ctnetlink_table_recording.bin").ok());
  ManualClock clock{std::chrono::system_clock::time_point(kWallStart)};

  Poller poller(config, {&procfs, &replay, &clock});
  poller.PollOnce();
  MetricFamilies families = *poller.Snapshot();
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
  CHECK(replay.opens() == 3);
  CompareWithGolden(Serialize(families), "self.prom");
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
  CompareWithGolden(Serialize(families), "pods_no_namespace.prom");
}
