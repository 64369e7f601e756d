// The exhaustion forecast: the pure arithmetic (model/forecast.h) on
// hand-made histograms, then the port model's rates, growth, reuse model and
// forecast on synthetic socket streams with known ages and timings.

#include "model/forecast.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <catch2/catch.hpp>
#include <cmath>
#include <random>
#include <string>

#include "model/port_model.h"

using namespace sockdiag;

namespace {

constexpr double kHorizon = Forecast::kHorizonSeconds;

// TIME_WAIT closed at a steady `rate` per second for the last `seconds`
// (at most 60), spread over the 5 s buckets of remaining time.
ForecastInput SteadyTimeWait(double usable, double rate, double seconds) {
  ForecastInput in;
  in.usable = usable;
  for (size_t b = 0; b < ForecastInput::kBuckets; ++b) {
    // Remaining [5b, 5b+5) s means age (55-5b, 60-5b] s.
    const double age_low = 55.0 - 5.0 * static_cast<double>(b);
    const double covered = std::clamp(seconds - age_low, 0.0, 5.0);
    in.blocking_time_wait[b] = static_cast<uint32_t>(std::lround(rate * covered));
  }
  in.closes_per_second = rate;
  return in;
}

}  // namespace

TEST_CASE("forecast: a steady close rate that fits the range never exhausts", "[unit][forecast]") {
  // 40 closes/s for long: 2400 TIME_WAIT in a range of 3000, evenly expiring.
  ForecastInput in = SteadyTimeWait(3000, 40, 60);
  in.connections = 10;
  const Forecast f = ForecastExhaustion(in);
  CHECK(f.exhaustion_seconds == kHorizon);
  CHECK(f.steady_utilization == Approx((10 + 40 * 60) / 3000.0));
  // B(t) stays flat: what expires is replaced.
  for (double t : {0.0, 7.5, 30.0, 59.0, 60.0, 600.0}) CHECK(BlockingAt(in, t) == Approx(2410));
}

TEST_CASE("forecast: a step from nothing runs out at usable / rate", "[unit][forecast]") {
  // The churn case: 75 closes/s into 3000 ports, just started.
  ForecastInput in;
  in.usable = 3000;
  in.closes_per_second = 75;
  Forecast f = ForecastExhaustion(in);
  CHECK(f.exhaustion_seconds == Approx(40));
  CHECK(f.steady_utilization == Approx(75 * 60 / 3000.0));  // 1.5: demand beyond the range.

  // 20 s into the step: 1500 TIME_WAIT, none expiring before 40 s.
  in = SteadyTimeWait(3000, 75, 20);
  CHECK(ForecastExhaustion(in).exhaustion_seconds == Approx(20));
  // With reuse the same rate blocks only for the reuse delay: never.
  in.new_time_wait_block_seconds = 1;
  in.blocking_time_wait = {};
  in.blocking_time_wait[0] = 75;  // The last second's, still too young.
  f = ForecastExhaustion(in);
  CHECK(f.exhaustion_seconds == kHorizon);
  CHECK(f.steady_utilization == Approx(75 / 3000.0));
}

TEST_CASE("forecast: TIME_WAIT expiring while new ones arrive", "[unit][forecast]") {
  // 40/s for a minute (2400 TIME_WAIT), now 60/s: the old free at 40/s and
  // the new take 60/s, so B(t) = 2400 + 20 t crosses 3000 at 30 s, not at
  // (3000 - 2400) / 60 = 10 s.
  ForecastInput in = SteadyTimeWait(3000, 40, 60);
  in.closes_per_second = 60;
  CHECK(ForecastExhaustion(in).exhaustion_seconds == Approx(30));
  CHECK(ForecastExhaustion(in).steady_utilization == Approx(3600 / 3000.0));
  // At 45/s the range holds: 2700 at most.
  in.closes_per_second = 45;
  CHECK(ForecastExhaustion(in).exhaustion_seconds == kHorizon);
  CHECK(ForecastExhaustion(in).steady_utilization == Approx(0.9));

  // The crossing inside a bucket, found exactly: 500 freeing over the next
  // 5 s, nothing else blocking but 2400 connections, 200 closes/s.
  ForecastInput edge;
  edge.usable = 3000;
  edge.connections = 2400;
  edge.blocking_time_wait[0] = 500;
  edge.closes_per_second = 200;
  // B(t) = 2400 + 500 (1 - t/5) + 200 t = 2900 + 100 t below 5 s: 1 s.
  CHECK(ForecastExhaustion(edge).exhaustion_seconds == Approx(1));
}

TEST_CASE("forecast: growth (a leak) and the horizon", "[unit][forecast]") {
  // The slow leak: 7.2 held connections/s.
  ForecastInput in;
  in.usable = 3000;
  in.connections = 1000;
  in.growth_per_second = 7.2;
  Forecast f = ForecastExhaustion(in);
  CHECK(f.exhaustion_seconds == Approx(2000 / 7.2));
  CHECK(f.steady_utilization == Approx(1000 / 3000.0));  // Growth is not a steady state.
  // Slower than the horizon allows: reported as the horizon.
  in.growth_per_second = 0.5;
  CHECK(ForecastExhaustion(in).exhaustion_seconds == kHorizon);
  in.growth_per_second = 2000.0 / 3599.0;
  CHECK(ForecastExhaustion(in).exhaustion_seconds == Approx(3599));
  // Shrinking never exhausts.
  in.growth_per_second = -3;
  CHECK(ForecastExhaustion(in).exhaustion_seconds == kHorizon);
  // Growth beyond the TIME_WAIT window, churn before it.
  in = SteadyTimeWait(3000, 20, 60);  // 1200 TIME_WAIT, steady.
  in.connections = 1000;
  in.growth_per_second = 2;
  CHECK(ForecastExhaustion(in).exhaustion_seconds == Approx(400));
}

TEST_CASE("forecast: exhausted now, and no usable port", "[unit][forecast]") {
  ForecastInput in;
  in.usable = 100;
  in.connections = 60;
  in.blocking_time_wait[11] = 40;
  CHECK(ForecastExhaustion(in).exhaustion_seconds == 0);
  in.usable = 0;
  const Forecast f = ForecastExhaustion(in);
  CHECK(f.exhaustion_seconds == 0);
  CHECK(f.steady_utilization == 1);
}

TEST_CASE("forecast: the first crossing of B(t), checked against a fine scan", "[unit][forecast]") {
  std::mt19937 rng(15);
  std::uniform_int_distribution<uint32_t> count(0, 400);
  std::uniform_real_distribution<double> rate(0, 120), growth(-5, 20), hold(0, 60);
  for (int trial = 0; trial < 300; ++trial) {
    ForecastInput in;
    in.usable = 3000;
    in.connections = count(rng) * 2;
    for (auto& b : in.blocking_time_wait) b = count(rng) / 4;
    in.closes_per_second = rate(rng);
    in.growth_per_second = growth(rng);
    in.new_time_wait_block_seconds = trial % 3 == 0 ? hold(rng) : 60;
    const double t = ForecastExhaustion(in).exhaustion_seconds;
    INFO("trial " << trial << " forecast " << t);
    REQUIRE(t >= 0);
    REQUIRE(t <= kHorizon);
    if (t < kHorizon) CHECK(BlockingAt(in, t) >= in.usable - 1e-6);
    // Nothing reaches usable earlier (step 10 ms over the first 2 minutes).
    for (double s = 0; s < std::min(t, 120.0) - 0.01; s += 0.01) {
      if (BlockingAt(in, s) >= in.usable) {
        FAIL("B(" << s << ") already reaches usable");
        break;
      }
    }
  }
}

// --- The port model on synthetic streams. ---

namespace {

std::array<uint8_t, 16> V4(const char* text) {
  std::array<uint8_t, 16> a{};
  REQUIRE(inet_pton(AF_INET, text, a.data()) == 1);
  return a;
}

// One client socket toward remote:3306 from 10.0.0.1 (or from `local`).
InetSocket Socket(uint8_t state, uint16_t local_port, const char* remote,
                  const char* local = "10.0.0.1") {
  InetSocket s;
  s.family = AF_INET;
  s.protocol = IPPROTO_TCP;
  s.state = state;
  s.local_port = local_port;
  s.remote_port = 3306;
  s.local_addr = V4(local);
  s.remote_addr = V4(remote);
  return s;
}

// A TIME_WAIT closed `age_ms` ago.
InetSocket TimeWait(uint16_t local_port, uint32_t age_ms, const char* remote,
                    const char* local = "10.0.0.1") {
  InetSocket s = Socket(kTcpTimeWait, local_port, remote, local);
  s.expires_ms = age_ms >= 60000 ? 0 : 60000 - age_ms;
  return s;
}

PortSettings Range(uint32_t usable, int tw_reuse = 0, int timestamps = 1) {
  PortSettings s;
  s.range_low = 20000;
  s.range_high = 20000 + usable - 1;
  s.tw_reuse = tw_reuse;
  s.timestamps = timestamps;
  return s;
}

// Closes at `rate` per second over the last `seconds` toward `remote`, on
// local ports from `first_port`; returns the next free port.
uint16_t Churn(PortModel& m, double rate, double seconds, const char* remote,
               uint16_t first_port = 20000, const char* local = "10.0.0.1") {
  const int n = static_cast<int>(std::lround(rate * seconds));
  for (int i = 0; i < n; ++i) {
    const auto age = static_cast<uint32_t>((i + 0.5) * 1000.0 / rate);
    m.Add(TimeWait(static_cast<uint16_t>(first_port + i), age, remote, local));
  }
  return static_cast<uint16_t>(first_port + n);
}

uint16_t Hold(PortModel& m, int n, const char* remote, uint16_t first_port) {
  for (int i = 0; i < n; ++i) {
    m.Add(Socket(kTcpEstablished, static_cast<uint16_t>(first_port + i), remote));
  }
  return static_cast<uint16_t>(first_port + n);
}

const PortReport::Destination* Find(const PortReport& r, const char* remote) {
  for (const auto& d : r.top_destinations) {
    if (d.remote_addr == V4(remote)) return &d;
  }
  return nullptr;
}

}  // namespace

TEST_CASE("model: close rate from TIME_WAIT ages over the rate window", "[unit][forecast]") {
  PortLimits limits;
  limits.rate_window_ms = 10000;
  PortModel m(limits);
  m.Begin(Range(3000), 100);
  // A step: 75/s for the last 20 s, toward 10.0.0.5; 5/s for a minute
  // toward 10.0.0.6.
  Churn(m, 75, 20, "10.0.0.5", 20000);
  Churn(m, 5, 60, "10.0.0.6", 22000);
  PortReport r = m.Report();
  const auto* a = Find(r, "10.0.0.5");
  const auto* b = Find(r, "10.0.0.6");
  REQUIRE(a != nullptr);
  REQUIRE(b != nullptr);
  CHECK(a->time_wait == 1500);
  CHECK(a->closes_per_second == Approx(75));
  CHECK(b->closes_per_second == Approx(5));
  // No reuse (tcp_tw_reuse=0): all TIME_WAIT blocks; none expires before
  // the range is full 20 s from now.
  CHECK(a->utilization == Approx(0.5));
  CHECK(a->exhaustion_seconds == Approx(20).margin(0.01));
  CHECK(a->steady_utilization == Approx(1.5));
  CHECK(b->exhaustion_seconds == kHorizon);
  CHECK(b->steady_utilization == Approx(0.1));
  CHECK(r.exhaustion_seconds_min == a->exhaustion_seconds);
  CHECK(r.steady_utilization_max == Approx(1.5));

  SECTION("a shorter window measures the same steady rate") {
    PortLimits w2;
    w2.rate_window_ms = 2000;
    PortModel m2(w2);
    m2.Begin(Range(3000), 100);
    Churn(m2, 75, 20, "10.0.0.5", 20000);
    CHECK(Find(m2.Report(), "10.0.0.5")->closes_per_second == Approx(75));
  }
}

TEST_CASE("model: a steady state that never exhausts forecasts the horizon", "[unit][forecast]") {
  PortModel m(PortLimits{});
  m.Begin(Range(3000), 0);
  Churn(m, 40, 60, "10.0.0.5");
  Hold(m, 200, "10.0.0.5", 22400);
  const PortReport r = m.Report();
  const auto* d = Find(r, "10.0.0.5");
  REQUIRE(d != nullptr);
  CHECK(d->utilization == Approx(2600 / 3000.0));
  CHECK(d->closes_per_second == Approx(40));
  CHECK(d->exhaustion_seconds == kHorizon);
  CHECK(d->steady_utilization == Approx(2600 / 3000.0));
  CHECK(r.exhaustion_seconds_min == kHorizon);
}

TEST_CASE("model: reuse on and off, and the reuse delay", "[unit][forecast]") {
  for (int reuse : {0, 1, 2}) {
    for (const char* local : {"10.0.0.1", "127.0.0.1"}) {
      PortModel m(PortLimits{});
      m.Begin(Range(5000, reuse), 0);
      Churn(m, 100, 45, "10.0.0.5", 20000, local);  // 4500 TIME_WAIT, none expiring for 15 s.
      const PortReport r = m.Report();
      REQUIRE(r.top_destinations.size() == 1);
      const auto& d = r.top_destinations[0];
      const bool reusable = reuse == 1 || (reuse == 2 && std::string(local) == "127.0.0.1");
      INFO("tw_reuse=" << reuse << " from " << local);
      CHECK(d.closes_per_second == Approx(100));
      if (reusable) {
        // Only the last second's TIME_WAIT (younger than the 1 s delay) block.
        CHECK(d.blocking == 100);
        CHECK(d.exhaustion_seconds == kHorizon);
        CHECK(d.steady_utilization == Approx(100 / 5000.0));
      } else {
        CHECK(d.blocking == 4500);
        CHECK(d.exhaustion_seconds == Approx(5).margin(0.01));
        CHECK(d.steady_utilization == Approx(6000 / 5000.0));
      }
    }
  }

  SECTION("a longer tcp_tw_reuse_delay keeps more TIME_WAIT blocking") {
    PortModel m(PortLimits{});
    PortSettings s = Range(5000, 1);
    s.tw_reuse_delay_ms = 5000;
    m.Begin(s, 0);
    Churn(m, 100, 45, "10.0.0.5");
    const PortReport r = m.Report();
    const auto& d = r.top_destinations.at(0);
    CHECK(d.blocking == 500);
    CHECK(d.steady_utilization == Approx(500 / 5000.0));
  }
}

TEST_CASE("model: growth from poll to poll, smoothed over the rate window", "[unit][forecast]") {
  PortLimits limits;
  limits.rate_window_ms = 10000;
  PortModel m(limits);
  auto poll = [&](double now, int held, int steady_held) {
    m.Begin(Range(3000), now);
    Hold(m, held, "10.0.0.5", 20000);
    Hold(m, steady_held, "10.0.0.6", 22500);
    return m.Report();
  };
  // First poll: nothing to compare with.
  PortReport r = poll(1000, 1000, 50);
  CHECK(Find(r, "10.0.0.5")->growth_per_second == 0);
  CHECK(Find(r, "10.0.0.5")->exhaustion_seconds == kHorizon);
  // A leak of 7.2/s: 72 more in 10 s. The first measurement is taken as is.
  r = poll(1010, 1072, 50);
  CHECK(Find(r, "10.0.0.5")->growth_per_second == Approx(7.2));
  CHECK(Find(r, "10.0.0.5")->exhaustion_seconds == Approx((3000 - 1072) / 7.2));
  CHECK(Find(r, "10.0.0.6")->growth_per_second == 0);
  CHECK(r.exhaustion_seconds_min == Approx((3000 - 1072) / 7.2));
  // Report() again in the same pass measures the same.
  CHECK(m.Report().top_destinations.at(0).growth_per_second == Approx(7.2));
  r = poll(1015, 1108, 50);
  CHECK(Find(r, "10.0.0.5")->growth_per_second == Approx(7.2));
  // The leak stops: the estimate decays with a 10 s time constant.
  r = poll(1025, 1108, 50);
  CHECK(Find(r, "10.0.0.5")->growth_per_second == Approx(7.2 * std::exp(-1.0)).epsilon(1e-4));
  // TIME_WAIT do not count as connections: closing them all is a drop.
  m.Begin(Range(3000), 1035);
  Churn(m, 110.8, 10, "10.0.0.5");
  Hold(m, 50, "10.0.0.6", 22500);
  r = m.Report();
  const double raw = -1108 / 10.0;
  const double alpha = 1 - std::exp(-1.0);
  CHECK(Find(r, "10.0.0.5")->growth_per_second ==
        Approx(7.2 * std::exp(-1.0) + alpha * (raw - 7.2 * std::exp(-1.0))).epsilon(1e-4));
  CHECK(Find(r, "10.0.0.5")->growth_per_second < 0);
}

TEST_CASE("model: destinations not tracked in both polls", "[unit][forecast]") {
  PortLimits limits;
  limits.max_destinations = 2;
  PortModel m(limits);
  m.Begin(Range(3000), 0);
  Hold(m, 10, "10.0.0.5", 20000);
  m.Report();

  // A destination seen for the first time grows from 0 when the last pass
  // was below the cap.
  m.Begin(Range(3000), 5);
  Hold(m, 10, "10.0.0.5", 20000);
  Hold(m, 50, "10.0.0.6", 21000);
  PortReport r = m.Report();
  CHECK(Find(r, "10.0.0.5")->growth_per_second == 0);
  CHECK(Find(r, "10.0.0.6")->growth_per_second == Approx(10));
  CHECK(r.sockets_dropped == 0);

  // This pass reaches the cap: 10.0.0.7 is dropped.
  m.Begin(Range(3000), 10);
  Hold(m, 10, "10.0.0.5", 20000);
  Hold(m, 50, "10.0.0.6", 21000);
  Hold(m, 5, "10.0.0.7", 22000);
  r = m.Report();
  CHECK(r.sockets_dropped == 5);
  CHECK(Find(r, "10.0.0.7") == nullptr);

  // 10.0.0.5 is gone: nothing to report for it. 10.0.0.7 is tracked now,
  // but the last pass may have dropped it: its growth is unknown (0).
  m.Begin(Range(3000), 15);
  Hold(m, 40, "10.0.0.7", 22000);
  Hold(m, 50, "10.0.0.6", 21000);
  r = m.Report();
  CHECK(Find(r, "10.0.0.5") == nullptr);
  CHECK(Find(r, "10.0.0.7")->growth_per_second == 0);
  CHECK(Find(r, "10.0.0.6")->growth_per_second == Approx(10 * std::exp(-1.0)).epsilon(1e-4));

  SECTION("a pass that never reported is no reference; the elapsed time spans it") {
    m.Begin(Range(3000), 20);
    Hold(m, 90, "10.0.0.7", 22000);  // The stream fails: no Report().
    m.Begin(Range(3000), 25);
    Hold(m, 60, "10.0.0.7", 22000);
    r = m.Report();
    CHECK(Find(r, "10.0.0.7")->growth_per_second == Approx(20.0 / 10.0));
  }
  SECTION("a restarted stream keeps the reference") {
    m.Begin(Range(3000), 20);
    Hold(m, 90, "10.0.0.7", 22000);
    m.Reset();
    Hold(m, 60, "10.0.0.7", 22000);
    r = m.Report();
    CHECK(Find(r, "10.0.0.7")->growth_per_second == Approx(4));
  }
}

TEST_CASE("model: TIME_WAIT from before tcp_timestamps came on stay blocking", "[unit][forecast]") {
  // Field case 3's "fix": tcp_tw_reuse=1 with tcp_timestamps turned on.
  PortModel m(PortLimits{});
  auto poll = [&](double now, int timestamps, uint32_t age_shift_ms) {
    m.Begin(Range(3000, 1, timestamps), now);
    // 2000 TIME_WAIT closed before the change (ages 20..40 s at the change)
    // and 600 closed 10 s after it (at now=1010), all toward one backend.
    for (uint32_t i = 0; i < 2000; ++i) {
      m.Add(TimeWait(static_cast<uint16_t>(20000 + i), 20000 + i * 10 + age_shift_ms, "10.0.0.5"));
    }
    if (age_shift_ms >= 10000) {
      for (uint32_t i = 0; i < 600; ++i) {
        m.Add(TimeWait(static_cast<uint16_t>(22200 + i), age_shift_ms - 10000 + 1000 + i,
                       "10.0.0.5"));
      }
    }
    return m.Report();
  };
  PortReport r = poll(1000, 0, 0);  // timestamps 0: nothing reusable.
  CHECK(r.top_destinations.at(0).blocking == 2000);
  r = poll(1000.5, 1, 500);  // The exporter sees them come on.
  CHECK(r.top_destinations.at(0).blocking == 2000);
  CHECK(r.utilization_max == Approx(2000 / 3000.0));
  // 15 s later: the old ones still block (they expire by themselves), the
  // 600 opened after the change do not.
  r = poll(1015.5, 1, 15500);
  const auto& d = r.top_destinations.at(0);
  CHECK(d.time_wait == 2600);
  CHECK(d.blocking == 2000);
  // They free as their timers end: nothing heads for exhaustion.
  CHECK(d.exhaustion_seconds == kHorizon);
  // Once the oldest could not be alive any more the pin is dropped.
  r = poll(1075, 1, 75000);
  CHECK(r.top_destinations.at(0).blocking == 0);

  SECTION("a change before the first poll cannot be seen") {
    PortModel fresh(PortLimits{});
    fresh.Begin(Range(3000, 1, 1), 2000);
    for (int i = 0; i < 100; ++i) {
      fresh.Add(TimeWait(static_cast<uint16_t>(20000 + i), 30000, "10.0.0.5"));
    }
    CHECK(fresh.Report().top_destinations.at(0).blocking == 0);
  }
  SECTION("timestamps off again drop the pin; on again pin anew") {
    r = poll(1020, 0, 20000);
    CHECK(r.top_destinations.at(0).blocking == 2600);
    r = poll(1021, 1, 21000);
    CHECK(r.top_destinations.at(0).blocking == 2600);  // All closed before this poll.
  }
}

TEST_CASE("model: the destination running out first is listed beyond the top-K",
          "[unit][forecast]") {
  PortLimits limits;
  limits.top_destinations = 1;
  PortModel m(limits);
  m.Begin(Range(3000), 0);
  Hold(m, 2000, "10.0.0.5", 20000);     // Most ports, steady.
  Churn(m, 50, 10, "10.0.0.6", 22000);  // 500 ports, 50/s: out in 50 s.
  Churn(m, 1, 10, "10.0.0.7", 22600);
  PortReport r = m.Report();
  REQUIRE(r.top_destinations.size() == 2);
  CHECK(r.top_destinations[0].remote_addr == V4("10.0.0.5"));
  CHECK(r.top_destinations[1].remote_addr == V4("10.0.0.6"));
  CHECK(r.top_destinations[1].exhaustion_seconds == Approx(50).margin(0.01));
  CHECK(r.exhaustion_seconds_min == r.top_destinations[1].exhaustion_seconds);
  CHECK(r.utilization_max == Approx(2000 / 3000.0));

  SECTION("not added when it is in the top-K or nothing heads for exhaustion") {
    PortModel q(limits);
    q.Begin(Range(3000), 0);
    Hold(q, 2000, "10.0.0.5", 20000);
    Churn(q, 1, 10, "10.0.0.7", 22600);
    r = q.Report();
    CHECK(r.top_destinations.size() == 1);
    CHECK(r.exhaustion_seconds_min == kHorizon);
  }
  SECTION("K=0 still computes the min and max") {
    PortLimits none;
    none.top_destinations = 0;
    PortModel z(none);
    z.Begin(Range(3000), 0);
    Churn(z, 50, 10, "10.0.0.6", 22000);
    r = z.Report();
    CHECK(r.top_destinations.empty());
    CHECK(r.exhaustion_seconds_min == Approx(50).margin(0.01));
    CHECK(r.steady_utilization_max == Approx(1));
  }
  SECTION("no destination: the horizon and 0; no usable port: 0 and 1") {
    PortModel e(limits);
    e.Begin(Range(3000), 0);
    r = e.Report();
    CHECK(r.exhaustion_seconds_min == kHorizon);
    CHECK(r.steady_utilization_max == 0);
    PortSettings none_usable = Range(10);
    none_usable.reserved_in_range = 10;
    e.Begin(none_usable, 1);
    r = e.Report();
    CHECK(r.exhaustion_seconds_min == 0);
    CHECK(r.steady_utilization_max == 1);
  }
}
