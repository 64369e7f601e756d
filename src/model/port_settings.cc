#include "model/port_settings.h"

#include <algorithm>

namespace sockdiag {

uint64_t PortSettings::UsablePorts() const {
  if (range_high < range_low) return 0;
  const uint64_t width = uint64_t{range_high} - range_low + 1;
  return width > reserved_in_range ? width - reserved_in_range : 0;
}

bool PortSettings::TimeWaitReusable(bool loopback) const {
  if (timestamps == 0) return false;
  return tw_reuse == 1 || (tw_reuse == 2 && loopback);
}

uint64_t CountReservedInRange(const std::vector<PortRange>& reserved, uint32_t low,
                              uint32_t high) {
  // Ranges may overlap; mark ports in a bitmap over [low, high].
  if (high < low) return 0;
  std::vector<bool> seen(high - low + 1, false);
  uint64_t count = 0;
  for (const auto& r : reserved) {
    uint32_t a = std::max(r.first, low), b = std::min(r.last, high);
    for (uint32_t p = a; p <= b && a <= b; ++p) {
      if (!seen[p - low]) {
        seen[p - low] = true;
        count++;
      }
    }
  }
  return count;
}

}  // namespace sockdiag
