#include "proc/duration.h"

#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <string>

namespace sockdiag {

Result<std::chrono::nanoseconds> ParseGoDuration(std::string_view text) {
  const std::string quoted = "\"" + std::string(text) + "\"";
  if (text == "0") return std::chrono::nanoseconds(0);
  if (text.empty()) return Status::InvalidArgument("empty duration");
  if (text.front() == '-' || text.front() == '+') {
    return Status::InvalidArgument("duration " + quoted + " must be positive");
  }
  double total = 0;
  size_t i = 0;
  while (i < text.size()) {
    size_t start = i;
    while (i < text.size() && ((text[i] >= '0' && text[i] <= '9') || text[i] == '.')) ++i;
    if (i == start || i - start > 20) {
      return Status::InvalidArgument("invalid duration " + quoted +
                                     " (want e.g. 1s, 500ms, 1m30s)");
    }
    const std::string number(text.substr(start, i - start));
    if (number == "." || number.find('.') != number.rfind('.')) {
      return Status::InvalidArgument("invalid duration " + quoted);
    }
    size_t unit_start = i;
    while (i < text.size() && !((text[i] >= '0' && text[i] <= '9') || text[i] == '.')) ++i;
    const std::string_view unit = text.substr(unit_start, i - unit_start);
    double scale = 0;
    if (unit == "ns")
      scale = 1;
    else if (unit == "us" || unit == "\xc2\xb5s" || unit == "\xce\xbcs")
      scale = 1e3;
    else if (unit == "ms")
      scale = 1e6;
    else if (unit == "s")
      scale = 1e9;
    else if (unit == "m")
      scale = 60e9;
    else if (unit == "h")
      scale = 3600e9;
    else {
      return Status::InvalidArgument("invalid duration " + quoted +
                                     " (units: ns, us, ms, s, m, h)");
    }
    total += std::strtod(number.c_str(), nullptr) * scale;
  }
  if (!std::isfinite(total) || total > 9.2e18) {
    return Status::InvalidArgument("duration " + quoted + " too large");
  }
  return std::chrono::nanoseconds(static_cast<int64_t>(total));
}

}  // namespace sockdiag
