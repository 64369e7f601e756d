#include "model/forecast.h"

#include <algorithm>
#include <cstddef>

namespace sockdiag {
namespace {

constexpr double kBucketSeconds = ForecastInput::kBucketMs / 1000.0;

}  // namespace

double BlockingAt(const ForecastInput& in, double t) {
  double alive = 0;
  for (size_t i = 0; i < in.blocking_time_wait.size(); ++i) {
    if (in.blocking_time_wait[i] == 0) continue;
    // Bucket i frees evenly over [i, i+1) buckets from now.
    const double left = (static_cast<double>(i + 1) * kBucketSeconds - t) / kBucketSeconds;
    alive += in.blocking_time_wait[i] * std::clamp(left, 0.0, 1.0);
  }
  return in.connections + in.growth_per_second * t + alive +
         in.closes_per_second * std::min(t, in.new_time_wait_block_seconds);
}

Forecast ForecastExhaustion(const ForecastInput& in) {
  Forecast f;
  if (!(in.usable > 0)) {
    f.exhaustion_seconds = 0;
    f.steady_utilization = 1;
    return f;
  }
  const double hold = std::clamp(in.new_time_wait_block_seconds, 0.0, Forecast::kHorizonSeconds);
  const double closes = std::max(in.closes_per_second, 0.0);
  f.steady_utilization = (in.connections + closes * hold) / in.usable;

  double time_wait = 0;
  for (uint32_t n : in.blocking_time_wait) time_wait += n;
  const double now = in.connections + time_wait;
  if (now >= in.usable) {
    f.exhaustion_seconds = 0;
    return f;
  }
  // B(t) never exceeds this bound: most destinations stop here.
  const double horizon = Forecast::kHorizonSeconds;
  if (now + closes * hold + std::max(in.growth_per_second, 0.0) * horizon < in.usable) {
    f.exhaustion_seconds = horizon;
    return f;
  }

  ForecastInput clean = in;
  clean.closes_per_second = closes;
  clean.new_time_wait_block_seconds = hold;
  // B(t) is linear between these points: bucket edges, the end of the new
  // TIME_WAIT's hold, the horizon.
  std::array<double, ForecastInput::kBuckets + 3> points{};
  size_t n = 0;
  for (size_t i = 0; i <= ForecastInput::kBuckets; ++i) {
    points[n++] = static_cast<double>(i) * kBucketSeconds;
  }
  points[n++] = hold;
  points[n++] = horizon;
  std::sort(points.begin(), points.begin() + static_cast<std::ptrdiff_t>(n));

  double a = 0, at_a = now;
  for (size_t i = 1; i < n; ++i) {
    const double b = points[i];
    if (b <= a) continue;
    const double at_b = BlockingAt(clean, b);
    if (at_b >= in.usable) {
      f.exhaustion_seconds = std::min(a + (in.usable - at_a) * (b - a) / (at_b - at_a), horizon);
      return f;
    }
    a = b;
    at_a = at_b;
  }
  f.exhaustion_seconds = horizon;
  return f;
}

}  // namespace sockdiag
