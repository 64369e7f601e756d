// Durations as Prometheus and exporter-toolkit write them: Go's
// time.ParseDuration subset ("1s", "500ms", "1m30s", "1.5h", "0"), for the
// exporter's duration flags and the web config file.
//
// Thread-safety: reentrant.
#pragma once

#include <chrono>
#include <string_view>

#include "sockdiag/status.h"

namespace sockdiag {

// Decimal numbers each followed by a unit (ns, us or µs, ms, s, m, h),
// summed; "0" alone is zero. InvalidArgument, naming the text, otherwise
// (signs included: no negative durations).
Result<std::chrono::nanoseconds> ParseGoDuration(std::string_view text);

}  // namespace sockdiag
