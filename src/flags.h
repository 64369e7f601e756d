// Command-line flags in the Prometheus exporter style (kingpin-like):
// --name=value or --name value, --[no-]collector.NAME, --collector.disable-defaults,
// --help, --version.
//
// Bad input never throws: ParseFlags returns InvalidArgument with a one-line
// message naming the flag and the problem; main prints it and exits 2.
#pragma once

#include <chrono>
#include <functional>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "sockdiag/config.h"
#include "sockdiag/status.h"

namespace sockdiag {

enum class FlagAction { kRun, kHelp, kVersion };

// One --NAME flag. `placeholder` names its value (nullptr: a boolean
// --[no-]NAME); `set` parses a value into *config, InvalidArgument naming the
// flag when it is bad; `show` prints the value a Config holds as the flag
// would take it, so --help shows each default from Config{}, where it is
// stated once (null: no default shown).
struct FlagSpec {
  const char* name;
  const char* placeholder;
  const char* help;
  std::function<Status(std::string_view value, Config* config)> set;
  std::function<std::string(const Config& config)> show;
};

// The exporter's flags, in --help order (the collector switches aside).
std::span<const FlagSpec> ExporterFlags();

// Parses args (without argv[0]) into *config, resolving the collector set.
// `extra` are a subcommand's own flags (diagnose's --netns, ...), whose
// setters store into the subcommand's options; they are looked up first.
Result<FlagAction> ParseFlags(const std::vector<std::string>& args, Config* config,
                              std::span<const FlagSpec> extra = {});

// --help text.
std::string UsageText(std::string_view program);
// The --help lines of `specs`.
std::string FlagUsage(std::span<const FlagSpec> specs);

// What main and `diagnose` do with --help and --version: print `usage` or
// the version line to stdout and return the exit status (0); nullopt for
// kRun.
std::optional<int> PrintHelpOrVersion(FlagAction action, const std::string& usage);

// A duration flag: Go's duration syntax (proc/duration.h: "15s", "1m30s",
// "250ms", "1.5h"), from 1ms to 24h.
Result<std::chrono::milliseconds> ParseDuration(std::string_view text);
// "15s", "250ms": a duration as a duration flag takes it.
std::string FormatDuration(std::chrono::milliseconds d);

// A validated listen address split into host ("" = all interfaces) and port.
struct ListenAddress {
  std::string host;  // "", "127.0.0.1", "::1", ...
  int port = 0;      // 0 = any free port
};
Result<ListenAddress> ParseListenAddress(std::string_view text);

}  // namespace sockdiag
