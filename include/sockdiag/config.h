// Config: every setting of the exporter, with its default, as parsed from
// flags (see flags.h). Grouped as in node_exporter: web, polling, paths,
// collectors, then per-collector options.
//
// Thread-safety: built once at start, then read-only.
#pragma once

#include <chrono>
#include <cstdint>
#include <set>
#include <string>
#include <vector>

namespace sockdiag {

enum class LogLevel { kDebug, kInfo, kWarn, kError };
enum class LogFormat { kLogfmt, kJson };
enum class NetnsMode { kSelf, kPods };

struct Config {
  // --- web ---
  // Address to listen on: ":PORT" (all interfaces), "HOST:PORT", "[V6]:PORT".
  std::string listen_address = ":10061";
  std::string telemetry_path = "/metrics";
  // Concurrent requests served at once; the excess gets 503.
  int web_max_requests = 40;
  // exporter-toolkit style web config (TLS, basic auth); empty = plain HTTP.
  std::string web_config_file;

  // --- polling ---
  // Scrapes serve the snapshot of the last poll; this bounds its age.
  std::chrono::milliseconds poll_interval{15000};

  // --- paths ---
  std::string procfs = "/proc";

  // --- collectors ---
  // Names of enabled collectors, resolved from defaults and flags.
  std::set<std::string> collectors;

  // --- sysctl collector ---
  // Extra sysctls to export, dotted names.
  std::vector<std::string> sysctl_include;

  // --- ports collector ---
  int ports_top_destinations = 10;  // 0 disables per-destination series.
  int ports_top_services = 20;
  int ports_max_listeners = 64;
  // Destinations tracked per poll; past this, new ones are counted as dropped.
  int ports_max_destinations = 100000;
  // Window of the per-destination close rate (TIME_WAIT closed within it,
  // per second); 1s..60s.
  std::chrono::milliseconds ports_rate_window{10000};

  // --- conntrack collectors ---
  std::chrono::milliseconds conntrack_dump_interval{60000};
  uint64_t conntrack_max_entries = 1000000;
  int conntrack_top_snat = 10;
  // Source ports MASQUERADE/SNAT picks from when no range is configured.
  uint32_t conntrack_nat_port_low = 1024;
  uint32_t conntrack_nat_port_high = 65535;

  // --- network namespaces ---
  NetnsMode netns_mode = NetnsMode::kSelf;
  int netns_max = 256;
  bool netns_include_host = true;
  // Directory of named namespaces (ip netns, CNI); read when present.
  std::string netns_run_dir = "/var/run/netns";

  // --- logging ---
  LogLevel log_level = LogLevel::kInfo;
  LogFormat log_format = LogFormat::kLogfmt;

  // --- debugging ---
  // When set, raw netlink replies are appended to files in this directory.
  std::string dump_netlink_dir;

  bool IsEnabled(const std::string& collector) const { return collectors.count(collector) != 0; }
};

}  // namespace sockdiag
