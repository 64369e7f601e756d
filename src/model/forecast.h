// Time-to-exhaustion forecast of one destination's ephemeral ports.
//
// A pure function of a destination's aggregates from one streaming pass (no
// history beyond the growth rate the caller measured): the ports that block a
// new connect() now, when the blocking TIME_WAIT among them free (a histogram
// of their remaining timers), the close rate and the connection growth.
//
//   B(t) = N + g t + (blocking TIME_WAIT of today still alive at t)
//              + c min(t, H)
//
// N: ports held in any state but TIME_WAIT; g: their growth per second; c:
// closes per second; H: how long a new TIME_WAIT blocks its port (60 s,
// TCP_TIMEWAIT_LEN, when TIME_WAIT is not reusable toward the destination;
// the reuse delay when it is, since connect() may only take over a TIME_WAIT
// older than net.ipv4.tcp_tw_reuse_delay). The TIME_WAIT of a histogram
// bucket are taken to free evenly over the bucket, so B(t) is piecewise
// linear and its first crossing of `usable` is found exactly, segment by
// segment.
//
// Thread-safety: pure and reentrant.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>

namespace sockdiag {

struct ForecastInput {
  // Width of a histogram bucket and their number: 12 x 5 s covers the 60 s
  // of TIME_WAIT.
  static constexpr uint32_t kBucketMs = 5000;
  static constexpr size_t kBuckets = 12;

  double usable = 0;       // Ports connect() can pick for the destination.
  double connections = 0;  // N: ports held in every state but TIME_WAIT.
  // Blocking TIME_WAIT by remaining blocking time: bucket i frees in
  // [i, i+1) x 5 s (the last also takes anything longer).
  std::array<uint32_t, kBuckets> blocking_time_wait{};
  double closes_per_second = 0;  // c
  // H: seconds a new TIME_WAIT blocks its port (60, or the reuse delay).
  double new_time_wait_block_seconds = 60;
  double growth_per_second = 0;  // g (may be negative)
};

struct Forecast {
  // Beyond this a forecast is reported as the horizon itself: "not heading
  // for exhaustion within an hour". A finite number keeps graphs and min()
  // usable where +Inf would not.
  static constexpr double kHorizonSeconds = 3600;

  // First t >= 0 with B(t) >= usable, capped at kHorizonSeconds; 0 when the
  // ports are exhausted already or none is usable.
  double exhaustion_seconds = kHorizonSeconds;
  // (N + c H) / usable: where utilization settles once today's close rate
  // has filled the TIME_WAIT window (growth left out: a leak has no steady
  // state, the forecast covers it). May exceed 1; 1 when nothing is usable.
  double steady_utilization = 0;
};

Forecast ForecastExhaustion(const ForecastInput& in);

// B(t) for the same input (t >= 0), exposed for tests and diagnostics.
double BlockingAt(const ForecastInput& in, double t);

}  // namespace sockdiag
