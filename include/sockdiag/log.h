// Minimal structured logger: one line per event on stderr, logfmt or JSON.
//
// Thread-safety: Log() may be called from any thread; lines never interleave.
#pragma once

#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "sockdiag/config.h"

namespace sockdiag {

using LogFields = std::vector<std::pair<std::string, std::string>>;

void SetLogOptions(LogLevel level, LogFormat format);
void Log(LogLevel level, std::string_view msg, const LogFields& fields = {});

// Logs at most once per `key` for the process lifetime (for conditions that
// would otherwise repeat every poll, e.g. a missing capability); later calls
// log at debug level.
void LogOnce(LogLevel level, std::string_view key, std::string_view msg,
             const LogFields& fields = {});

// Formats one line; exposed for tests.
std::string FormatLogLine(LogFormat format, LogLevel level, std::string_view msg,
                          const LogFields& fields, std::string_view timestamp);

}  // namespace sockdiag
