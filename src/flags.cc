#include "sockdiag/flags.h"

#include <arpa/inet.h>

#include <charconv>
#include <functional>
#include <limits>
#include <map>

#include "sockdiag/collector.h"

namespace sockdiag {
namespace {

using Setter = std::function<Status(std::string_view value, Config* config)>;

struct FlagSpec {
  const char* name;
  const char* placeholder;  // nullptr for boolean flags (--x / --no-x).
  const char* help;
  const char* default_text;
  Setter set;
};

Status ParseIntFlag(std::string_view flag, std::string_view v, long long min, long long max,
                    long long* out) {
  long long x = 0;
  auto [ptr, ec] = std::from_chars(v.data(), v.data() + v.size(), x);
  if (ec != std::errc() || ptr != v.data() + v.size() || v.empty()) {
    return Status::InvalidArgument("--" + std::string(flag) + ": invalid number \"" +
                                   std::string(v) + "\"");
  }
  if (x < min || x > max) {
    return Status::InvalidArgument("--" + std::string(flag) + ": " + std::string(v) +
                                   " is out of range [" + std::to_string(min) + ", " +
                                   std::to_string(max) + "]");
  }
  *out = x;
  return Status::Ok();
}

template <typename T>
Setter IntSetter(const char* flag, T Config::*field, long long min, long long max) {
  return [flag, field, min, max](std::string_view v, Config* c) {
    long long x = 0;
    Status s = ParseIntFlag(flag, v, min, max, &x);
    if (s.ok()) c->*field = static_cast<T>(x);
    return s;
  };
}

// A duration flag; with bounds, values outside [min, max] are refused.
Setter DurationSetter(const char* flag, std::chrono::milliseconds Config::*field,
                      std::chrono::milliseconds min = std::chrono::milliseconds::zero(),
                      std::chrono::milliseconds max = std::chrono::milliseconds::max()) {
  return [flag, field, min, max](std::string_view v, Config* c) {
    auto d = ParseDuration(v);
    if (!d.ok()) {
      return Status::InvalidArgument("--" + std::string(flag) + ": " + d.status().context());
    }
    if (d.value() < min || d.value() > max) {
      auto text = [](std::chrono::milliseconds ms) {
        return ms.count() % 1000 == 0 ? std::to_string(ms.count() / 1000) + "s"
                                      : std::to_string(ms.count()) + "ms";
      };
      return Status::InvalidArgument("--" + std::string(flag) + ": " + std::string(v) +
                                     " is out of range [" + text(min) + ", " + text(max) + "]");
    }
    c->*field = d.value();
    return Status::Ok();
  };
}

Setter BoolSetter(bool Config::*field) {
  return [field](std::string_view v, Config* c) {
    c->*field = (v == "true");
    return Status::Ok();
  };
}

const std::vector<FlagSpec>& Specs() {
  static const std::vector<FlagSpec> kSpecs = {
      {"web.listen-address", "ADDRESS", "Address on which to expose metrics and the web pages.",
       ":10061",
       [](std::string_view v, Config* c) {
         auto a = ParseListenAddress(v);
         if (!a.ok()) return Status::InvalidArgument("--web.listen-address: " + a.status().context());
         c->listen_address = std::string(v);
         return Status::Ok();
       }},
      {"web.telemetry-path", "PATH", "Path under which to expose metrics.", "/metrics",
       [](std::string_view v, Config* c) {
         if (v.empty() || v[0] != '/' || v == "/" || v.find_first_of(" ?#") != v.npos) {
           return Status::InvalidArgument("--web.telemetry-path: must start with / and not be / (got \"" +
                                          std::string(v) + "\")");
         }
         c->telemetry_path = std::string(v);
         return Status::Ok();
       }},
      {"web.max-requests", "N",
       "Maximum number of requests served at once; the excess gets 503.", "40",
       IntSetter("web.max-requests", &Config::web_max_requests, 1, 10000)},
      {"web.config.file", "FILE", "Web config file (TLS, basic auth) in exporter-toolkit format.",
       "",
       [](std::string_view v, Config* c) {
         c->web_config_file = std::string(v);
         return Status::Ok();
       }},
      {"poll.interval", "DURATION",
       "Time between polls of the kernel; scrapes serve the last poll's snapshot.", "15s",
       DurationSetter("poll.interval", &Config::poll_interval)},
      {"path.procfs", "PATH", "procfs mountpoint.", "/proc",
       [](std::string_view v, Config* c) {
         if (v.empty()) return Status::InvalidArgument("--path.procfs: must not be empty");
         c->procfs = std::string(v);
         return Status::Ok();
       }},
      {"collector.sysctl.include", "NAME",
       "Extra sysctl to export by dotted name (repeatable), e.g. net.ipv4.tcp_keepalive_time.", "",
       [](std::string_view v, Config* c) {
         if (v.empty() || v.find('/') != v.npos || v.find("..") != v.npos || v.front() == '.') {
           return Status::InvalidArgument("--collector.sysctl.include: invalid sysctl name \"" +
                                          std::string(v) + "\"");
         }
         c->sysctl_include.emplace_back(v);
         return Status::Ok();
       }},
      {"ports.top-destinations", "K",
       "Destinations exported with per-destination series (0 disables).", "10",
       IntSetter("ports.top-destinations", &Config::ports_top_destinations, 0, 10000)},
      {"ports.top-services", "K", "Service ports exported per direction (the rest is \"other\").",
       "20", IntSetter("ports.top-services", &Config::ports_top_services, 0, 10000)},
      {"ports.max-listeners", "N", "Listeners exported with queue metrics, largest queue first.",
       "64", IntSetter("ports.max-listeners", &Config::ports_max_listeners, 0, 100000)},
      {"ports.max-destinations", "N",
       "Distinct destinations tracked per poll; more are counted as dropped.", "100000",
       IntSetter("ports.max-destinations", &Config::ports_max_destinations, 1, 10000000)},
      {"ports.rate-window", "DURATION",
       "Window of the per-destination close rate (TIME_WAIT closed within it), 1s to 60s.",
       "10s",
       DurationSetter("ports.rate-window", &Config::ports_rate_window, std::chrono::seconds(1),
                      std::chrono::seconds(60))},
      {"conntrack.dump-interval", "DURATION",
       "Time between full conntrack table dumps (conntrack_table collector).", "60s",
       DurationSetter("conntrack.dump-interval", &Config::conntrack_dump_interval)},
      {"conntrack.max-entries", "N", "Conntrack entries read per table dump at most.", "1000000",
       IntSetter("conntrack.max-entries", &Config::conntrack_max_entries, 1, 1000000000)},
      {"conntrack.top-snat", "K", "SNAT tuples exported with per-tuple series (0 disables).", "10",
       IntSetter("conntrack.top-snat", &Config::conntrack_top_snat, 0, 10000)},
      {"conntrack.nat-port-range", "LOW-HIGH",
       "Source ports SNAT/MASQUERADE may use, when the rule sets none.", "1024-65535",
       [](std::string_view v, Config* c) {
         auto ranges = ParsePortRanges(v);
         if (!ranges.ok() || ranges.value().size() != 1 || ranges.value()[0].first == 0) {
           return Status::InvalidArgument("--conntrack.nat-port-range: expected LOW-HIGH, got \"" +
                                          std::string(v) + "\"");
         }
         c->conntrack_nat_port_low = ranges.value()[0].first;
         c->conntrack_nat_port_high = ranges.value()[0].last;
         return Status::Ok();
       }},
      {"netns.mode", "MODE",
       "Namespaces to poll: self (the exporter's own) or pods (every network namespace found in "
       "procfs).",
       "self",
       [](std::string_view v, Config* c) {
         if (v == "self") {
           c->netns_mode = NetnsMode::kSelf;
         } else if (v == "pods") {
           c->netns_mode = NetnsMode::kPods;
         } else {
           return Status::InvalidArgument("--netns.mode: must be self or pods, got \"" +
                                          std::string(v) + "\"");
         }
         return Status::Ok();
       }},
      {"netns.max", "N", "Network namespaces polled at most (pods mode).", "256",
       IntSetter("netns.max", &Config::netns_max, 1, 100000)},
      {"netns.include-host", nullptr, "Also poll the host namespace in pods mode.", "true",
       BoolSetter(&Config::netns_include_host)},
      {"netns.run-dir", "DIR",
       "Directory of named network namespaces, polled in pods mode when present.",
       "/var/run/netns",
       [](std::string_view v, Config* c) {
         c->netns_run_dir = std::string(v);
         return Status::Ok();
       }},
      {"log.level", "LEVEL", "Only log messages with this severity or above: debug, info, warn, error.",
       "info",
       [](std::string_view v, Config* c) {
         static const std::map<std::string_view, LogLevel> kLevels = {
             {"debug", LogLevel::kDebug}, {"info", LogLevel::kInfo},
             {"warn", LogLevel::kWarn},   {"error", LogLevel::kError}};
         auto it = kLevels.find(v);
         if (it == kLevels.end()) {
           return Status::InvalidArgument("--log.level: must be debug, info, warn or error, got \"" +
                                          std::string(v) + "\"");
         }
         c->log_level = it->second;
         return Status::Ok();
       }},
      {"log.format", "FORMAT", "Log format: logfmt or json.", "logfmt",
       [](std::string_view v, Config* c) {
         if (v == "logfmt") {
           c->log_format = LogFormat::kLogfmt;
         } else if (v == "json") {
           c->log_format = LogFormat::kJson;
         } else {
           return Status::InvalidArgument("--log.format: must be logfmt or json, got \"" +
                                          std::string(v) + "\"");
         }
         return Status::Ok();
       }},
      {"debug.dump-netlink", "DIR",
       "Append every raw netlink reply to files in DIR (for recording test fixtures).", "",
       [](std::string_view v, Config* c) {
         c->dump_netlink_dir = std::string(v);
         return Status::Ok();
       }},
  };
  return kSpecs;
}

const CollectorInfo* FindCollector(std::string_view name) {
  for (const auto& info : AllCollectors()) {
    if (name == info.name) return &info;
  }
  return nullptr;
}

}  // namespace

Result<std::chrono::milliseconds> ParseDuration(std::string_view text) {
  if (text.empty()) return Status::InvalidArgument("empty duration");
  const std::string quoted = "\"" + std::string(text) + "\"";
  long double total_ms = 0;
  size_t i = 0;
  while (i < text.size()) {
    long long n = 0;
    auto [ptr, ec] = std::from_chars(text.data() + i, text.data() + text.size(), n);
    if (ec != std::errc() || n < 0) {
      return Status::InvalidArgument("invalid duration " + quoted +
                                     " (want a positive value like 15s, 1m or 500ms)");
    }
    i = static_cast<size_t>(ptr - text.data());
    std::string_view rest = text.substr(i);
    long double unit;
    size_t len;
    if (rest.starts_with("ms")) {
      unit = 1, len = 2;
    } else if (rest.starts_with("s")) {
      unit = 1000, len = 1;
    } else if (rest.starts_with("m")) {
      unit = 60000, len = 1;
    } else if (rest.starts_with("h")) {
      unit = 3600000, len = 1;
    } else {
      return Status::InvalidArgument("invalid duration " + quoted + ": missing or unknown unit " +
                                     "(ms, s, m, h)");
    }
    total_ms += static_cast<long double>(n) * unit;
    i += len;
  }
  if (total_ms <= 0) return Status::InvalidArgument("duration " + quoted + " must be positive");
  if (total_ms > 24.0L * 3600000) {
    return Status::InvalidArgument("duration " + quoted + " is longer than 24h");
  }
  return std::chrono::milliseconds(static_cast<long long>(total_ms));
}

Result<ListenAddress> ParseListenAddress(std::string_view text) {
  const std::string quoted = "\"" + std::string(text) + "\"";
  size_t colon = text.rfind(':');
  if (colon == std::string_view::npos) {
    return Status::InvalidArgument("address " + quoted + " has no port (want HOST:PORT or :PORT)");
  }
  std::string_view host = text.substr(0, colon);
  std::string_view port = text.substr(colon + 1);
  ListenAddress out;
  long long p = 0;
  auto [ptr, ec] = std::from_chars(port.data(), port.data() + port.size(), p);
  if (port.empty() || ec != std::errc() || ptr != port.data() + port.size() || p < 0 || p > 65535) {
    return Status::InvalidArgument("address " + quoted + " has an invalid port");
  }
  out.port = static_cast<int>(p);
  if (host.size() >= 2 && host.front() == '[' && host.back() == ']') {
    std::string h(host.substr(1, host.size() - 2));
    in6_addr a6;
    if (inet_pton(AF_INET6, h.c_str(), &a6) != 1) {
      return Status::InvalidArgument("address " + quoted + " has an invalid IPv6 host");
    }
    out.host = h;
  } else if (host == "localhost") {
    out.host = "127.0.0.1";
  } else if (!host.empty()) {
    std::string h(host);
    in_addr a4;
    if (inet_pton(AF_INET, h.c_str(), &a4) != 1) {
      return Status::InvalidArgument("address " + quoted +
                                     " has an invalid host (want an IPv4 address, [IPv6] or "
                                     "localhost)");
    }
    out.host = h;
  }
  return out;
}

Result<FlagAction> ParseFlags(const std::vector<std::string>& args, Config* config) {
  std::map<std::string, bool> explicit_collectors;
  bool disable_defaults = false;
  for (size_t i = 0; i < args.size(); ++i) {
    std::string_view arg = args[i];
    if (arg == "-h" || arg == "--help") return FlagAction::kHelp;
    if (arg == "--version") return FlagAction::kVersion;
    if (!arg.starts_with("--")) {
      return Status::InvalidArgument("unexpected argument \"" + std::string(arg) + "\"");
    }
    arg.remove_prefix(2);
    std::string_view name = arg, value;
    bool has_value = false;
    if (size_t eq = arg.find('='); eq != std::string_view::npos) {
      name = arg.substr(0, eq);
      value = arg.substr(eq + 1);
      has_value = true;
    }
    if (name == "collector.disable-defaults") {
      if (has_value) return Status::InvalidArgument("--collector.disable-defaults takes no value");
      disable_defaults = true;
      continue;
    }
    // --[no-]collector.NAME
    bool negated = name.starts_with("no-");
    std::string_view bare = negated ? name.substr(3) : name;
    if (bare.starts_with("collector.") && FindCollector(bare.substr(10)) != nullptr) {
      if (has_value) {
        return Status::InvalidArgument("--" + std::string(name) + " takes no value");
      }
      explicit_collectors[std::string(bare.substr(10))] = !negated;
      continue;
    }
    const FlagSpec* spec = nullptr;
    for (const auto& s : Specs()) {
      if (bare == s.name) spec = &s;
    }
    if (spec == nullptr) {
      if (bare.starts_with("collector.") && bare.find('.', 10) == std::string_view::npos) {
        return Status::InvalidArgument("unknown collector \"" + std::string(bare.substr(10)) +
                                       "\" in --" + std::string(name));
      }
      return Status::InvalidArgument("unknown flag --" + std::string(name));
    }
    if (spec->placeholder == nullptr) {  // Boolean.
      if (has_value) return Status::InvalidArgument("--" + std::string(name) + " takes no value");
      Status s = spec->set(negated ? "false" : "true", config);
      if (!s.ok()) return s;
      continue;
    }
    if (negated) return Status::InvalidArgument("unknown flag --" + std::string(name));
    if (!has_value) {
      if (i + 1 >= args.size()) {
        return Status::InvalidArgument("--" + std::string(name) + " needs a value (" +
                                       spec->placeholder + ")");
      }
      value = args[++i];
    }
    Status s = spec->set(value, config);
    if (!s.ok()) return s;
  }
  config->collectors.clear();
  for (const auto& info : AllCollectors()) {
    bool on = info.enabled_by_default && !disable_defaults;
    if (auto it = explicit_collectors.find(info.name); it != explicit_collectors.end()) {
      on = it->second;
    }
    if (on) config->collectors.insert(info.name);
  }
  return FlagAction::kRun;
}

std::string UsageText(std::string_view program) {
  std::string out = "usage: " + std::string(program) + " [<flags>]\n" +
                    "       " + std::string(program) + " diagnose [<flags>]\n\n" +
                    "Prometheus exporter for TCP socket states, ephemeral-port pressure per "
                    "destination, conntrack and the sysctls behind them.\n" +
                    "One-shot report of one network namespace: " + std::string(program) +
                    " diagnose --help\n\nFlags:\n";
  auto line = [&out](const std::string& left, const std::string& help) {
    out += "  " + left;
    out += left.size() < 38 ? std::string(38 - left.size(), ' ') : std::string("\n" + std::string(40, ' '));
    out += help + "\n";
  };
  line("-h, --help", "Show this help and exit.");
  line("--version", "Show the version and exit.");
  for (const auto& s : Specs()) {
    std::string left = s.placeholder ? "--" + std::string(s.name) + "=" + s.placeholder
                                     : "--[no-]" + std::string(s.name);
    std::string help = s.help;
    if (*s.default_text) help += " (default: " + std::string(s.default_text) + ")";
    line(left, help);
  }
  line("--collector.disable-defaults", "Disable every collector not enabled explicitly.");
  for (const auto& c : AllCollectors()) {
    line("--[no-]collector." + std::string(c.name),
         std::string(c.help) + " (default: " + (c.enabled_by_default ? "enabled" : "disabled") + ")");
  }
  return out;
}

}  // namespace sockdiag
