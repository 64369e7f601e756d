// The impure side of `sockdiag_exporter diagnose`: its flags, entering the
// requested network namespace, two polls, printing.

#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <thread>

#include "diagnose/diagnose.h"
#include "poll/poller.h"
#include "sockdiag/log.h"
#include "source/netns.h"

namespace sockdiag {
namespace {

bool AllDigits(std::string_view s) {
  if (s.empty()) return false;
  for (char c : s) {
    if (c < '0' || c > '9') return false;
  }
  return true;
}

// One-line errors, as main() prints them for the exporter's flags.
int UsageError(const char* program, const std::string& message) {
  std::fprintf(stderr, "%s diagnose: error: %s, try %s diagnose --help\n", program, message.c_str(),
               program);
  return 2;
}

int RunError(const char* program, const std::string& message) {
  std::fprintf(stderr, "%s diagnose: error: %s\n", program, message.c_str());
  return 2;
}

// sockdiag_collector_success for one poll's outcomes, so the analysis sees
// which collectors reported.
void AppendOutcomes(NamespacePoller::Result* r) {
  auto success = FamilyBuilder::Gauge("sockdiag_collector_success",
                                      "1 if the collector succeeded at the last poll, else 0.");
  for (const auto& o : r->outcomes) success.Add({{"collector", o.name}}, o.success ? 1 : 0);
  success.AppendTo(&r->families);
}

}  // namespace

std::vector<FlagSpec> DiagnoseFlags(DiagnoseOptions* options) {
  return {
      {"netns", "PATH|PID",
       "Enter this network namespace first: a file such as /var/run/netns/NAME, or a pid (its "
       "<procfs>/PID/ns/net). Needs CAP_SYS_ADMIN. Without it: the current namespace.",
       [options](std::string_view v, Config*) {
         if (v.empty()) return Status::InvalidArgument("--netns: needs a PATH or a PID");
         if (AllDigits(v) && (v.size() > 9 || std::stoul(std::string(v)) == 0)) {
           return Status::InvalidArgument("--netns: invalid pid \"" + std::string(v) + "\"");
         }
         options->netns = std::string(v);
         return Status::Ok();
       },
       nullptr},
      {"format", "text|json", "Report format: text, or json (its keys are stable).",
       [options](std::string_view v, Config*) {
         if (v == "text") {
           options->format = DiagnoseOptions::Format::kText;
         } else if (v == "json") {
           options->format = DiagnoseOptions::Format::kJson;
         } else {
           return Status::InvalidArgument("--format: must be text or json, got \"" +
                                          std::string(v) + "\"");
         }
         return Status::Ok();
       },
       [](const Config&) {
         return std::string(DiagnoseOptions{}.format == DiagnoseOptions::Format::kJson ? "json"
                                                                                       : "text");
       }},
      {"interval", "DURATION",
       "Time between the two polls, over which rates are computed; at most 60s.",
       [options](std::string_view v, Config*) {
         auto d = ParseDuration(v);
         if (!d.ok()) return Status::InvalidArgument("--interval: " + d.status().context());
         if (d.value() > std::chrono::seconds(60)) {
           return Status::InvalidArgument("--interval: at most 60s (TIME_WAIT lasts 60 s)");
         }
         options->interval = d.value();
         return Status::Ok();
       },
       [](const Config&) { return FormatDuration(DiagnoseOptions{}.interval); }},
  };
}

Result<FlagAction> ParseDiagnoseFlags(const std::vector<std::string>& args, Config* config,
                                      DiagnoseOptions* options) {
  const std::vector<FlagSpec> extra = DiagnoseFlags(options);
  auto action = ParseFlags(args, config, extra);
  if (!action.ok() || action.value() != FlagAction::kRun) return action;
  if (config->netns_mode != NetnsMode::kSelf) {
    return Status::InvalidArgument(
        "--netns.mode: diagnose examines one namespace; use --netns=PATH|PID");
  }
  return action;
}

std::string DiagnoseUsageText(std::string_view program) {
  const std::string p(program);
  DiagnoseOptions unused;
  return "usage: " + p + " diagnose [--netns=PATH|PID] [--format=text|json] [<flags>]\n\n" +
         "Polls one network namespace twice, 1 s apart, with the exporter's collectors and\n"
         "prints what runs out (ephemeral ports per destination, conntrack, listen queues),\n"
         "who holds it (destinations, service ports, CLOSE_WAIT) and what to change.\n\n"
         "Flags:\n" +
         FlagUsage(DiagnoseFlags(&unused)) +
         "  -h, --help                            Show this help and exit.\n\n"
         "The exporter's collector, path, ports and conntrack flags apply too, e.g.\n"
         "--path.procfs, --[no-]collector.NAME, --ports.top-destinations,\n"
         "--conntrack.nat-port-range (see " +
         p +
         " --help).\n\n"
         "Exit status: 0 healthy, 1 a finding crosses an alert threshold of\n"
         "dashboards/alerts.yaml, 2 bad usage or the namespace cannot be entered.\n";
}

int RunDiagnose(const char* program, const std::vector<std::string>& args) {
  Config config;
  // The report says which collectors failed; keep stderr for real errors.
  config.log_level = LogLevel::kError;
  DiagnoseOptions options;
  auto action = ParseDiagnoseFlags(args, &config, &options);
  if (!action.ok()) return UsageError(program, action.status().context());
  if (auto done = PrintHelpOrVersion(action.value(), DiagnoseUsageText(program))) return *done;
  SetLogOptions(config.log_level, config.log_format);

  ProcFs procfs(config.procfs);
  std::string target = "current network namespace";
  std::string net_dir = "net";
  if (!options.netns.empty()) {
    std::string path;
    if (AllDigits(options.netns)) {
      path = procfs.Path(options.netns + "/ns/net");
      net_dir = options.netns + "/net";
      target = "network namespace of pid " + options.netns;
    } else {
      path = options.netns;
      net_dir = "thread-self/net";
      target = "network namespace " + path;
    }
    auto ns = NetnsFile::Open(path);
    if (!ns.ok()) {
      return RunError(program, "--netns=" + options.netns + ": " + ns.status().ToString());
    }
    // Never returns: the report is the last thing this process does.
    if (Status entered = ns.value().Enter(); !entered.ok()) {
      std::string why = std::strerror(entered.err());
      if (entered.err() == EINVAL) why = "not a network namespace";
      if (entered.err() == EPERM) why += " (entering a namespace needs CAP_SYS_ADMIN)";
      return RunError(program, "--netns=" + options.netns + ": setns " + path + ": " + why);
    }
  }

  LocalNetlinkFactory netlink(config.dump_netlink_dir);
  NamespacePoller poller(config, procfs, net_dir, &netlink);
  const Clock& clock = SystemClock();
  const auto t0 = clock.Now();
  NamespacePoller::Result first = poller.Poll();
  std::this_thread::sleep_until(t0 + options.interval);
  const auto t1 = clock.Now();
  NamespacePoller::Result last = poller.Poll();
  AppendOutcomes(&first);
  AppendOutcomes(&last);

  DiagnoseInput input;
  input.first = &first.families;
  input.last = &last.families;
  input.interval_seconds = std::chrono::duration<double>(t1 - t0).count();
  input.target = target;
  input.netns_inode = CurrentNetnsInode();
  const DiagnoseReport report = AnalyzeDiagnosis(input);
  const std::string out = options.format == DiagnoseOptions::Format::kJson
                              ? RenderDiagnosisJson(report)
                              : RenderDiagnosisText(report);
  std::fputs(out.c_str(), stdout);
  std::fflush(stdout);
  return DiagnosisExitStatus(report);
}

}  // namespace sockdiag
