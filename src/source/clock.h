// Clock: where polls and dumps read the time, behind a seam so that tests
// (the golden exposition test above all) get deterministic durations and
// timestamps.
//
// Now() is monotonic and serves durations and schedules; WallNow() is the
// Unix time exported in *_timestamp_seconds metrics.
//
// Thread-safety: SystemClock() may be used from any thread. A ManualClock
// is read and advanced by one thread at a time.
#pragma once

#include <chrono>

namespace sockdiag {

class Clock {
 public:
  virtual ~Clock() = default;
  virtual std::chrono::steady_clock::time_point Now() const = 0;
  virtual std::chrono::system_clock::time_point WallNow() const = 0;

  // Seconds from `start` to Now().
  double SecondsSince(std::chrono::steady_clock::time_point start) const {
    return std::chrono::duration<double>(Now() - start).count();
  }
  // WallNow() as Unix seconds.
  double UnixSeconds() const {
    return std::chrono::duration<double>(WallNow().time_since_epoch()).count();
  }
};

// std::chrono::steady_clock and system_clock.
const Clock& SystemClock();

// A clock that stands still until Advance() moves both of its readings.
class ManualClock final : public Clock {
 public:
  explicit ManualClock(std::chrono::system_clock::time_point wall) : wall_(wall) {}
  std::chrono::steady_clock::time_point Now() const override { return steady_; }
  std::chrono::system_clock::time_point WallNow() const override { return wall_; }
  void Advance(std::chrono::nanoseconds d) {
    steady_ += d;
    wall_ += std::chrono::duration_cast<std::chrono::system_clock::duration>(d);
  }

 private:
  std::chrono::steady_clock::time_point steady_{};
  std::chrono::system_clock::time_point wall_;
};

}  // namespace sockdiag
