// Command-line flags in the Prometheus exporter style (kingpin-like):
// --name=value or --name value, --[no-]collector.NAME, --collector.disable-defaults,
// --help, --version.
//
// Bad input never throws: ParseFlags returns InvalidArgument with a one-line
// message naming the flag and the problem; main prints it and exits 2.
#pragma once

#include <chrono>
#include <string>
#include <string_view>
#include <vector>

#include "sockdiag/config.h"
#include "sockdiag/status.h"

namespace sockdiag {

enum class FlagAction { kRun, kHelp, kVersion };

// Parses args (without argv[0]) into *config, resolving the collector set.
Result<FlagAction> ParseFlags(const std::vector<std::string>& args, Config* config);

// --help text.
std::string UsageText(std::string_view program);

// "15s", "1m30s", "250ms", "2h": positive durations only.
Result<std::chrono::milliseconds> ParseDuration(std::string_view text);

// A validated listen address split into host ("" = all interfaces) and port.
struct ListenAddress {
  std::string host;  // "", "127.0.0.1", "::1", ...
  int port = 0;      // 0 = any free port
};
Result<ListenAddress> ParseListenAddress(std::string_view text);

}  // namespace sockdiag
