#include "flags.h"

#include <arpa/inet.h>

#include <charconv>
#include <cstdio>
#include <functional>
#include <limits>
#include <map>

#include "proc/duration.h"
#include "proc/proc_parsers.h"
#include "sockdiag/collector.h"
#include "sockdiag/version.h"

namespace sockdiag {
namespace {

std::string Quoted(std::string_view v) { return "\"" + std::string(v) + "\""; }

Status ParseIntFlag(std::string_view flag, std::string_view v, long long min, long long max,
                    long long* out) {
  long long x = 0;
  auto [ptr, ec] = std::from_chars(v.data(), v.data() + v.size(), x);
  if (ec != std::errc() || ptr != v.data() + v.size() || v.empty()) {
    return Status::InvalidArgument("--" + std::string(flag) + ": invalid number " + Quoted(v));
  }
  if (x < min || x > max) {
    return Status::InvalidArgument("--" + std::string(flag) + ": " + std::string(v) +
                                   " is out of range [" + std::to_string(min) + ", " +
                                   std::to_string(max) + "]");
  }
  *out = x;
  return Status::Ok();
}

// Builders of the common kinds of flags: each reads and shows one Config
// field, so a flag's default is the field's initialiser in config.h.
template <typename T>
FlagSpec IntFlag(const char* name, const char* placeholder, const char* help, T Config::*field,
                 long long min, long long max) {
  return {name, placeholder, help,
          [name, field, min, max](std::string_view v, Config* c) {
            long long x = 0;
            Status s = ParseIntFlag(name, v, min, max, &x);
            if (s.ok()) c->*field = static_cast<T>(x);
            return s;
          },
          [field](const Config& c) { return std::to_string(c.*field); }};
}

FlagSpec DurationFlag(const char* name, const char* help,
                      std::chrono::milliseconds Config::*field,
                      std::chrono::milliseconds min = std::chrono::milliseconds::zero(),
                      std::chrono::milliseconds max = std::chrono::milliseconds::max()) {
  return {name, "DURATION", help,
          [name, field, min, max](std::string_view v, Config* c) {
            auto d = ParseDuration(v);
            if (!d.ok()) {
              return Status::InvalidArgument("--" + std::string(name) + ": " +
                                             d.status().context());
            }
            if (d.value() < min || d.value() > max) {
              return Status::InvalidArgument("--" + std::string(name) + ": " + std::string(v) +
                                             " is out of range [" + FormatDuration(min) + ", " +
                                             FormatDuration(max) + "]");
            }
            c->*field = d.value();
            return Status::Ok();
          },
          [field](const Config& c) { return FormatDuration(c.*field); }};
}

FlagSpec BoolFlag(const char* name, const char* help, bool Config::*field) {
  return {name, nullptr, help,
          [field](std::string_view v, Config* c) {
            c->*field = (v == "true");
            return Status::Ok();
          },
          [field](const Config& c) { return std::string(c.*field ? "true" : "false"); }};
}

// A string flag; `check` (may be null) rejects values with a message.
FlagSpec StringFlag(const char* name, const char* placeholder, const char* help,
                    std::string Config::*field,
                    Status (*check)(std::string_view name, std::string_view v) = nullptr) {
  return {name, placeholder, help,
          [name, field, check](std::string_view v, Config* c) {
            if (check != nullptr) {
              Status s = check(name, v);
              if (!s.ok()) return s;
            }
            c->*field = std::string(v);
            return Status::Ok();
          },
          [field](const Config& c) { return c.*field; }};
}

// A flag choosing among named values of an enum field.
template <typename E>
FlagSpec ChoiceFlag(const char* name, const char* placeholder, const char* help, E Config::*field,
                    std::vector<std::pair<const char*, E>> choices) {
  return {name, placeholder, help,
          [name, field, choices](std::string_view v, Config* c) {
            std::string names;
            for (size_t i = 0; i < choices.size(); ++i) {
              if (v == choices[i].first) {
                c->*field = choices[i].second;
                return Status::Ok();
              }
              names += std::string(i == 0 ? "" : i + 1 == choices.size() ? " or " : ", ") +
                       choices[i].first;
            }
            return Status::InvalidArgument("--" + std::string(name) + ": must be " + names +
                                           ", got " + Quoted(v));
          },
          [field, choices](const Config& c) {
            for (const auto& [text, value] : choices) {
              if (c.*field == value) return std::string(text);
            }
            return std::string();
          }};
}

const std::vector<FlagSpec>& Specs() {
  static const std::vector<FlagSpec> kSpecs = {
      StringFlag("web.listen-address", "ADDRESS",
                 "Address on which to expose metrics and the web pages.", &Config::listen_address,
                 [](std::string_view, std::string_view v) {
                   auto a = ParseListenAddress(v);
                   if (!a.ok()) {
                     return Status::InvalidArgument("--web.listen-address: " +
                                                    a.status().context());
                   }
                   return Status::Ok();
                 }),
      StringFlag("web.telemetry-path", "PATH", "Path under which to expose metrics.",
                 &Config::telemetry_path,
                 [](std::string_view, std::string_view v) {
                   if (v.empty() || v[0] != '/' || v == "/" || v.find_first_of(" ?#") != v.npos) {
                     return Status::InvalidArgument(
                         "--web.telemetry-path: must start with / and not be / (got " + Quoted(v) +
                         ")");
                   }
                   return Status::Ok();
                 }),
      IntFlag("web.max-requests", "N",
              "Maximum number of requests served at once; the excess gets 503.",
              &Config::web_max_requests, 1, 10000),
      StringFlag("web.config.file", "FILE",
                 "Web config file (TLS, basic auth) in exporter-toolkit format.",
                 &Config::web_config_file),
      DurationFlag("poll.interval",
                   "Time between polls of the kernel; scrapes serve the last poll's snapshot.",
                   &Config::poll_interval),
      StringFlag("path.procfs", "PATH", "procfs mountpoint.", &Config::procfs,
                 [](std::string_view, std::string_view v) {
                   if (v.empty()) return Status::InvalidArgument("--path.procfs: must not be empty");
                   return Status::Ok();
                 }),
      {"collector.sysctl.include", "NAME",
       "Extra sysctl to export by dotted name (repeatable), e.g. net.ipv4.tcp_keepalive_time.",
       [](std::string_view v, Config* c) {
         if (v.empty() || v.find('/') != v.npos || v.find("..") != v.npos || v.front() == '.') {
           return Status::InvalidArgument("--collector.sysctl.include: invalid sysctl name " +
                                          Quoted(v));
         }
         c->sysctl_include.emplace_back(v);
         return Status::Ok();
       },
       nullptr},
      IntFlag("ports.top-destinations", "K",
              "Destinations exported with per-destination series (0 disables).",
              &Config::ports_top_destinations, 0, 10000),
      IntFlag("ports.top-services", "K",
              "Service ports exported per direction (the rest is \"other\").",
              &Config::ports_top_services, 0, 10000),
      IntFlag("ports.max-listeners", "N",
              "Listeners exported with queue metrics, largest queue first.",
              &Config::ports_max_listeners, 0, 100000),
      IntFlag("ports.max-destinations", "N",
              "Distinct destinations tracked per poll; more are counted as dropped.",
              &Config::ports_max_destinations, 1, 10000000),
      DurationFlag("ports.rate-window",
                   "Window of the per-destination close rate (TIME_WAIT closed within it), 1s to "
                   "60s.",
                   &Config::ports_rate_window, std::chrono::seconds(1), std::chrono::seconds(60)),
      DurationFlag("conntrack.dump-interval",
                   "Time between full conntrack table dumps (conntrack_table collector).",
                   &Config::conntrack_dump_interval),
      IntFlag("conntrack.max-entries", "N", "Conntrack entries read per table dump at most.",
              &Config::conntrack_max_entries, 1, 1000000000),
      IntFlag("conntrack.top-snat", "K",
              "SNAT tuples exported with per-tuple series (0 disables).",
              &Config::conntrack_top_snat, 0, 10000),
      {"conntrack.nat-port-range", "LOW-HIGH",
       "Source ports SNAT/MASQUERADE may use, when the rule sets none.",
       [](std::string_view v, Config* c) {
         auto ranges = ParsePortRanges(v);
         if (!ranges.ok() || ranges.value().size() != 1 || ranges.value()[0].first == 0) {
           return Status::InvalidArgument("--conntrack.nat-port-range: expected LOW-HIGH, got " +
                                          Quoted(v));
         }
         c->conntrack_nat_port_low = ranges.value()[0].first;
         c->conntrack_nat_port_high = ranges.value()[0].last;
         return Status::Ok();
       },
       [](const Config& c) {
         return std::to_string(c.conntrack_nat_port_low) + "-" +
                std::to_string(c.conntrack_nat_port_high);
       }},
      ChoiceFlag<NetnsMode>("netns.mode", "MODE",
                            "Namespaces to poll: self (the exporter's own) or pods (every "
                            "network namespace found in procfs).",
                            &Config::netns_mode,
                            {{"self", NetnsMode::kSelf}, {"pods", NetnsMode::kPods}}),
      IntFlag("netns.max", "N", "Network namespaces polled at most (pods mode).",
              &Config::netns_max, 1, 100000),
      BoolFlag("netns.include-host", "Also poll the host namespace in pods mode.",
               &Config::netns_include_host),
      StringFlag("netns.run-dir", "DIR",
                 "Directory of named network namespaces, polled in pods mode when present.",
                 &Config::netns_run_dir),
      ChoiceFlag<LogLevel>(
          "log.level", "LEVEL",
          "Only log messages with this severity or above: debug, info, warn, error.",
          &Config::log_level,
          {{"debug", LogLevel::kDebug},
           {"info", LogLevel::kInfo},
           {"warn", LogLevel::kWarn},
           {"error", LogLevel::kError}}),
      ChoiceFlag<LogFormat>("log.format", "FORMAT", "Log format: logfmt or json.",
                            &Config::log_format,
                            {{"logfmt", LogFormat::kLogfmt}, {"json", LogFormat::kJson}}),
      StringFlag("debug.dump-netlink", "DIR",
                 "Append every raw netlink reply to files in DIR (for recording test fixtures).",
                 &Config::dump_netlink_dir),
  };
  return kSpecs;
}

const FlagSpec* FindSpec(std::span<const FlagSpec> specs, std::string_view name) {
  for (const auto& s : specs) {
    if (name == s.name) return &s;
  }
  return nullptr;
}

const CollectorInfo* FindCollector(std::string_view name) {
  for (const auto& info : AllCollectors()) {
    if (name == info.name) return &info;
  }
  return nullptr;
}

}  // namespace

Result<std::chrono::milliseconds> ParseDuration(std::string_view text) {
  auto d = ParseGoDuration(text);
  if (!d.ok()) return d.status();
  const std::string quoted = "\"" + std::string(text) + "\"";
  if (d.value() < std::chrono::milliseconds(1)) {
    return Status::InvalidArgument("duration " + quoted + " must be 1ms or more");
  }
  if (d.value() > std::chrono::hours(24)) {
    return Status::InvalidArgument("duration " + quoted + " is longer than 24h");
  }
  return std::chrono::duration_cast<std::chrono::milliseconds>(d.value());
}

std::string FormatDuration(std::chrono::milliseconds d) {
  if (d.count() % 1000 == 0) return std::to_string(d.count() / 1000) + "s";
  return std::to_string(d.count()) + "ms";
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

std::span<const FlagSpec> ExporterFlags() { return Specs(); }

Result<FlagAction> ParseFlags(const std::vector<std::string>& args, Config* config,
                              std::span<const FlagSpec> extra) {
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
    const FlagSpec* spec = FindSpec(extra, bare);
    if (spec == nullptr) spec = FindSpec(Specs(), bare);
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

namespace {

void UsageLine(std::string* out, const std::string& left, const std::string& help) {
  *out += "  " + left;
  *out += left.size() < 38 ? std::string(38 - left.size(), ' ')
                           : std::string("\n" + std::string(40, ' '));
  *out += help + "\n";
}

}  // namespace

std::string FlagUsage(std::span<const FlagSpec> specs) {
  const Config defaults;
  std::string out;
  for (const auto& s : specs) {
    std::string left = s.placeholder ? "--" + std::string(s.name) + "=" + s.placeholder
                                     : "--[no-]" + std::string(s.name);
    std::string help = s.help;
    if (s.show) {
      const std::string shown = s.show(defaults);
      if (!shown.empty()) help += " (default: " + shown + ")";
    }
    UsageLine(&out, left, help);
  }
  return out;
}

std::string UsageText(std::string_view program) {
  std::string out = "usage: " + std::string(program) + " [<flags>]\n" +
                    "       " + std::string(program) + " diagnose [<flags>]\n\n" +
                    "Prometheus exporter for TCP socket states, ephemeral-port pressure per "
                    "destination, conntrack and the sysctls behind them.\n" +
                    "One-shot report of one network namespace: " + std::string(program) +
                    " diagnose --help\n\nFlags:\n";
  UsageLine(&out, "-h, --help", "Show this help and exit.");
  UsageLine(&out, "--version", "Show the version and exit.");
  out += FlagUsage(Specs());
  UsageLine(&out, "--collector.disable-defaults", "Disable every collector not enabled explicitly.");
  for (const auto& c : AllCollectors()) {
    UsageLine(&out, "--[no-]collector." + std::string(c.name),
              std::string(c.help) + " (default: " +
                  (c.enabled_by_default ? "enabled" : "disabled") + ")");
  }
  return out;
}

std::optional<int> PrintHelpOrVersion(FlagAction action, const std::string& usage) {
  switch (action) {
    case FlagAction::kHelp:
      std::fputs(usage.c_str(), stdout);
      return 0;
    case FlagAction::kVersion:
      std::printf("sockdiag_exporter version %s (revision %s)\n", kVersion, kRevision);
      return 0;
    case FlagAction::kRun:
      break;
  }
  return std::nullopt;
}

}  // namespace sockdiag
