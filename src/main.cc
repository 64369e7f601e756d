// sockdiag_exporter: flags -> Config -> Poller -> WebServer; nothing else.
// `sockdiag_exporter diagnose ...` runs the one-shot report instead.

#include <malloc.h>
#include <signal.h>

#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "caps.h"
#include "diagnose/diagnose.h"
#include "flags.h"
#include "poll/poller.h"
#include "sockdiag/log.h"
#include "sockdiag/version.h"
#include "source/capabilities.h"
#include "web/web.h"

namespace {

int Usage(const char* program, const sockdiag::Status& s) {
  std::fprintf(stderr, "%s: error: %s, try --help\n", program, s.context().c_str());
  return 2;
}

}  // namespace

int main(int argc, char** argv) {
  using namespace sockdiag;
  const char* program = "sockdiag_exporter";
  std::vector<std::string> args(argv + 1, argv + argc);
  if (!args.empty() && args[0] == "diagnose") {
    return RunDiagnose(program, std::vector<std::string>(args.begin() + 1, args.end()));
  }

  Config config;
  auto action = ParseFlags(args, &config);
  if (!action.ok()) return Usage(program, action.status());
  if (auto done = PrintHelpOrVersion(action.value(), UsageText(program))) return *done;
  SetLogOptions(config.log_level, config.log_format);

  // glibc gives threads that allocate at the same time their own malloc
  // arenas (up to 8 per core) and each arena keeps what is freed in it. With
  // CivetWeb's worker pool serving concurrent scrapes (each building a body,
  // maybe a gzip state), RSS then wanders by MiBs as arenas fill and fragment
  // although the memory in use is flat (bench/README.md, "Soak"), and grows
  // with the node's core count. Two arenas serve a few concurrent scrapes
  // without contention. MALLOC_ARENA_MAX in the environment still wins.
  if (std::getenv("MALLOC_ARENA_MAX") == nullptr) mallopt(M_ARENA_MAX, 2);

  // Block the stop signals in every thread; main waits for them below.
  sigset_t stop_signals;
  sigemptyset(&stop_signals);
  sigaddset(&stop_signals, SIGINT);
  sigaddset(&stop_signals, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &stop_signals, nullptr);
  signal(SIGPIPE, SIG_IGN);

  auto effective = EffectiveCapabilities();
  const CapabilityReport caps =
      MakeCapabilityReport(effective.ok() ? effective.value() : 0, LastCapability(), config);

  Poller poller(config);
  auto web = WebServer::Start(config, &poller, CapabilityFamilies(caps));
  if (!web.ok()) return Usage(program, web.status());

  std::string collectors;
  for (const auto& c : config.collectors) collectors += (collectors.empty() ? "" : ",") + c;
  Log(LogLevel::kInfo, "starting sockdiag_exporter",
      {{"version", kVersion},
       {"revision", kRevision},
       {"address", config.listen_address},
       {"port", std::to_string(web.value()->port())},
       {"tls", web.value()->tls() ? "true" : "false"},
       {"collectors", collectors}});
  LogCapabilityReport(caps);
  poller.Start();

  int sig = 0;
  sigwait(&stop_signals, &sig);
  Log(LogLevel::kInfo, "shutting down", {{"signal", sig == SIGTERM ? "SIGTERM" : "SIGINT"}});
  poller.Stop();
  // CivetWeb's orderly stop waits out its ~1 s poll quantum; nothing is
  // pending that a process exit would lose, so leave without it.
  std::fflush(nullptr);
  std::_Exit(0);
}
