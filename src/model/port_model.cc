#include "model/port_model.h"

#include <netinet/in.h>
#include <sys/mman.h>
#include <sys/socket.h>

#include <algorithm>
#include <bit>
#include <cmath>
#include <cstring>
#include <tuple>

#include "model/forecast.h"
#include "netlink/address.h"

namespace sockdiag {
namespace {

// A destination: (family, local address, remote address, remote port). The
// layout has no padding, so keys compare and hash as bytes.
struct DestKey {
  uint8_t family;
  uint8_t zero;
  uint16_t remote_port;
  std::array<uint8_t, 16> local;
  std::array<uint8_t, 16> remote;
};
static_assert(sizeof(DestKey) == 36, "DestKey must have no padding");

bool SameKey(const DestKey& a, const DestKey& b) { return std::memcmp(&a, &b, sizeof(a)) == 0; }

// murmur3's 64-bit finalizer.
uint64_t Fmix64(uint64_t h) {
  h ^= h >> 33;
  h *= 0xff51afd7ed558ccdULL;
  h ^= h >> 33;
  h *= 0xc4ceb9fe1a85ec53ULL;
  h ^= h >> 33;
  return h;
}

// Hash of a destination, from the socket's own fields rather than from the
// key just built from them: reading that key back as words would wait on
// the stores that wrote it. IPv4 (most destinations) costs one multiply
// round; both families end in the same finalizer.
uint64_t HashDestination(uint8_t family, uint16_t remote_port, const std::array<uint8_t, 16>& local,
                         const std::array<uint8_t, 16>& remote) {
  const uint64_t tag = (uint64_t{family} << 16) | remote_port;
  if (family != AF_INET6) {
    uint32_t l, r;
    std::memcpy(&l, local.data(), 4);
    std::memcpy(&r, remote.data(), 4);
    const uint64_t addrs = (uint64_t{l} << 32) | r;
    return Fmix64((addrs * 0x9e3779b97f4a7c15ULL) ^ (tag * 0xc2b2ae3d27d4eb4fULL));
  }
  uint64_t w[4];
  std::memcpy(&w[0], local.data(), 16);
  std::memcpy(&w[2], remote.data(), 16);
  return Fmix64((w[0] * 0x9e3779b97f4a7c15ULL) ^ (w[1] * 0xc2b2ae3d27d4eb4fULL) ^
                (w[2] * 0x165667b19e3779f9ULL) ^ (w[3] * 0xd6e8feb86659fd93ULL) ^
                (tag * 0xff51afd7ed558ccdULL));
}

// A zero-initialised array of trivially copyable T. Arrays of 2 MiB or more
// are mapped on their own, 2 MiB-aligned, with MADV_HUGEPAGE: the
// destination table is probed at random, and huge pages spare most probes a
// TLB miss (a no-op where transparent huge pages are off).
template <typename T>
class ZeroedArray {
 public:
  explicit ZeroedArray(size_t n = 0) : size_(n) {
    const size_t bytes = n * sizeof(T);
    if (bytes >= kHugePage) {
      const size_t len = (bytes + kHugePage - 1) / kHugePage * kHugePage;
      void* p = mmap(nullptr, len + kHugePage, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS,
                     -1, 0);
      if (p != MAP_FAILED) {
        map_ = static_cast<char*>(p);
        map_len_ = len + kHugePage;
        const auto addr = reinterpret_cast<uintptr_t>(map_);
        char* aligned = map_ + ((kHugePage - addr % kHugePage) % kHugePage);
        madvise(aligned, len, MADV_HUGEPAGE);
        data_ = reinterpret_cast<T*>(aligned);
        return;
      }
    }
    heap_.reset(new T[n]());
    data_ = heap_.get();
  }
  ~ZeroedArray() {
    if (map_ != nullptr) munmap(map_, map_len_);
  }
  ZeroedArray(const ZeroedArray&) = delete;
  ZeroedArray& operator=(const ZeroedArray&) = delete;
  void swap(ZeroedArray& o) noexcept {
    std::swap(size_, o.size_);
    std::swap(data_, o.data_);
    std::swap(map_, o.map_);
    std::swap(map_len_, o.map_len_);
    heap_.swap(o.heap_);
  }

  size_t size() const { return size_; }
  T& operator[](size_t i) { return data_[i]; }
  const T& operator[](size_t i) const { return data_[i]; }
  const T* begin() const { return data_; }
  const T* end() const { return data_ + size_; }
  void Zero() { std::memset(static_cast<void*>(data_), 0, size_ * sizeof(T)); }

 private:
  static constexpr size_t kHugePage = size_t{2} << 20;
  size_t size_;
  T* data_ = nullptr;
  char* map_ = nullptr;
  size_t map_len_ = 0;
  std::unique_ptr<T[]> heap_;
};

template <typename T>
bool ByCountThenKey(uint64_t a_count, uint64_t b_count, const T& a_key, const T& b_key) {
  if (a_count != b_count) return a_count > b_count;
  return a_key < b_key;
}

}  // namespace

// Open-addressing hash table of destinations (linear probing, power-of-two
// capacity, load <= 3/4), capped at max_size destinations; sockets of
// destinations beyond the cap are counted as dropped. Sized by the
// destinations of the pass: it grows as they arrive, and Clear() shrinks it
// when the last pass needed far less.
//
// With many destinations nearly every socket lands on a slot that is not in
// cache. Add() therefore only hashes the key and prefetches its slot; the
// count happens kPending sockets later (or at Flush()), by when the slot has
// arrived. Counting order, and so which destinations the cap keeps, is
// unchanged.
class PortModel::DestinationTable {
 public:
  // What one socket adds to its destination's slot.
  struct Mark {
    bool time_wait = false;
    bool recent = false;            // TIME_WAIT closed within the rate window.
    uint8_t bucket = kNotBlocking;  // Blocking TIME_WAIT: histogram bucket.
  };
  static constexpr uint8_t kNotBlocking = 0xff;

  // Counts saturate at 65535: a destination holds at most 65535 local
  // ports, so only a dump that repeats sockets could reach it.
  struct Slot {
    DestKey key;
    uint32_t hash;
    uint16_t ports;  // 0: empty slot.
    uint16_t time_wait;
    uint16_t recent;
    // Blocking TIME_WAIT by remaining blocking time (ForecastInput's buckets).
    std::array<uint16_t, ForecastInput::kBuckets> blocking_time_wait;
  };

  explicit DestinationTable(size_t max_size) : max_size_(max_size), slots_(kMinCapacity) {}

  void Clear() {
    const size_t want = std::max(kMinCapacity, std::bit_ceil(size_ * 2 + 1));
    if (slots_.size() > 4 * want) {
      ZeroedArray<Slot> smaller(want);
      slots_.swap(smaller);
    } else {
      slots_.Zero();
    }
    size_ = 0;
    pending_count_ = 0;
    dropped_bits_.clear();
    sockets_dropped_ = 0;
  }

  // Counts one socket of `key` (whose HashDestination is `hash`). While
  // the table is small enough to stay in cache it counts at once; beyond,
  // it only prefetches the slot and counts kPending sockets later.
  void Add(const DestKey& key, uint64_t hash, Mark mark) {
    added_++;
    if (slots_.size() <= kDirectSlots) {
      Count(key, hash, mark);
      return;
    }
    if (pending_count_ == kPending) {
      const Pending& oldest = pending_[pending_next_];
      Count(oldest.key, oldest.hash, oldest.mark);
      pending_count_--;
    }
    Pending& p = pending_[pending_next_];
    p.key = key;
    p.hash = hash;
    p.mark = mark;
    __builtin_prefetch(&slots_[static_cast<size_t>(hash) & (slots_.size() - 1)]);
    pending_next_ = (pending_next_ + 1) % kPending;
    pending_count_++;
  }

  // Counts every queued socket.
  void Flush() {
    for (size_t i = pending_count_; i > 0; --i) {
      const Pending& p = pending_[(pending_next_ + kPending - i) % kPending];
      Count(p.key, p.hash, p.mark);
    }
    pending_count_ = 0;
  }

  // Sockets queued since the table was made: tells whether it changed.
  uint64_t added() const { return added_; }
  // Valid after Flush().
  size_t size() const { return size_; }
  const ZeroedArray<Slot>& slots() const { return slots_; }
  uint64_t sockets_dropped() const { return sockets_dropped_; }
  // Distinct destinations dropped: linear counting over a 2^20-bit bitmap,
  // exact in practice for small counts, ~0.1% error at a million.
  uint64_t destinations_dropped() const {
    if (dropped_bits_.empty()) return 0;
    const double m = static_cast<double>(kDroppedWords * 64);
    uint64_t set = 0;
    for (uint64_t w : dropped_bits_) set += static_cast<uint64_t>(std::popcount(w));
    const double zeros = m - static_cast<double>(set);
    // Saturated: report the largest count the bitmap can tell apart.
    if (zeros < 1) return static_cast<uint64_t>(m * std::log(m));
    return static_cast<uint64_t>(std::llround(m * std::log(m / zeros)));
  }

 private:
  static constexpr size_t kMinCapacity = 64;
  static constexpr size_t kPending = 8;
  // Up to 2048 slots (144 KiB: about 1500 destinations) the table stays in
  // the L2 cache, and prefetching would only cost copies.
  static constexpr size_t kDirectSlots = 2048;
  static constexpr int kDroppedBitsLog2 = 20;
  static constexpr size_t kDroppedWords = (size_t{1} << kDroppedBitsLog2) / 64;

  struct Pending {
    DestKey key;
    uint64_t hash;
    Mark mark;
  };

  static void Increment(uint16_t& n) { n = static_cast<uint16_t>(n + (n != 0xffff ? 1 : 0)); }

  static void Apply(Slot& s, Mark m) {
    Increment(s.ports);
    if (!m.time_wait) return;
    Increment(s.time_wait);
    if (m.recent) Increment(s.recent);
    if (m.bucket != kNotBlocking) Increment(s.blocking_time_wait[m.bucket]);
  }

  void Count(const DestKey& key, uint64_t hash, Mark mark) {
    const uint32_t h32 = static_cast<uint32_t>(hash);
    size_t mask = slots_.size() - 1;
    size_t i = static_cast<size_t>(hash) & mask;
    for (;; i = (i + 1) & mask) {
      Slot& s = slots_[i];
      if (s.ports == 0) break;
      if (s.hash == h32 && SameKey(s.key, key)) {
        Apply(s, mark);
        return;
      }
    }
    if (size_ >= max_size_) {
      sockets_dropped_++;
      if (dropped_bits_.empty()) dropped_bits_.assign(kDroppedWords, 0);
      const uint64_t bit = hash >> (64 - kDroppedBitsLog2);
      dropped_bits_[bit / 64] |= uint64_t{1} << (bit % 64);
      return;
    }
    if ((size_ + 1) * 4 > slots_.size() * 3) {
      Grow();
      mask = slots_.size() - 1;
      i = static_cast<size_t>(hash) & mask;
      while (slots_[i].ports != 0) i = (i + 1) & mask;
    }
    Slot& s = slots_[i];
    s = Slot{};
    s.key = key;
    s.hash = h32;
    Apply(s, mark);
    size_++;
  }

  void Grow() {
    ZeroedArray<Slot> old(slots_.size() * 2);
    old.swap(slots_);
    const size_t mask = slots_.size() - 1;
    for (const Slot& s : old) {
      if (s.ports == 0) continue;
      // The stored hash is the low 32 bits of the full one: enough to index
      // any table of up to 2^32 slots.
      size_t i = s.hash & mask;
      while (slots_[i].ports != 0) i = (i + 1) & mask;
      slots_[i] = s;
    }
  }

  const size_t max_size_;
  ZeroedArray<Slot> slots_;
  size_t size_ = 0;
  std::array<Pending, kPending> pending_{};
  size_t pending_next_ = 0;  // Where the next socket goes; the oldest when full.
  size_t pending_count_ = 0;
  uint64_t added_ = 0;
  // Linear-counting bitmap of dropped destinations; allocated on the first
  // drop of a pass.
  std::vector<uint64_t> dropped_bits_;
  uint64_t sockets_dropped_ = 0;
};

// The destinations of the last reported pass: their connections (ports held
// in every state but TIME_WAIT) and smoothed growth, for measuring growth at
// the next pass. Open addressing, load <= 1/2, sized by those destinations.
class PortModel::PreviousTable {
 public:
  struct Entry {
    DestKey key;
    uint32_t hash;
    uint16_t connections;
    uint8_t used;          // 0: empty.
    uint8_t growth_known;  // 0: growth not measured yet (first sight, unknown).
    float growth;
  };

  bool valid() const { return valid_; }
  double time() const { return time_; }
  // Destinations were dropped at the cap in that pass: one tracked now but
  // absent then may have existed.
  bool at_cap() const { return at_cap_; }

  // Replaces the content with the `n` non-empty slots of a pass and the
  // growth measured for each (NaN: unknown).
  void Rebuild(const ZeroedArray<DestinationTable::Slot>& slots, size_t n,
               const std::vector<float>& growth, double time, bool at_cap) {
    const size_t want = std::max<size_t>(64, std::bit_ceil(n * 2 + 1));
    if (entries_.size() != want) {
      ZeroedArray<Entry> fresh(want);
      entries_.swap(fresh);
    } else {
      entries_.Zero();
    }
    const size_t mask = entries_.size() - 1;
    for (size_t slot_index = 0; slot_index < slots.size(); ++slot_index) {
      const auto& s = slots[slot_index];
      if (slot_index + kAhead < slots.size()) Prefetch(slots[slot_index + kAhead].hash);
      if (s.ports == 0) continue;
      size_t i = s.hash & mask;
      while (entries_[i].used != 0) i = (i + 1) & mask;
      Entry& e = entries_[i];
      e.key = s.key;
      e.hash = s.hash;
      e.connections = static_cast<uint16_t>(s.ports - s.time_wait);
      e.used = 1;
      const float g = slot_index < growth.size() ? growth[slot_index] : NAN;
      e.growth_known = std::isnan(g) ? 0 : 1;
      e.growth = std::isnan(g) ? 0 : g;
    }
    valid_ = true;
    time_ = time;
    at_cap_ = at_cap;
  }

  // Brings in the entry where a lookup of `hash` starts; tables of many
  // destinations are walked in slot order, their entries in hash order.
  void Prefetch(uint32_t hash) const {
    if (entries_.size() != 0) __builtin_prefetch(&entries_[hash & (entries_.size() - 1)]);
  }
  static constexpr size_t kAhead = 8;

  const Entry* Find(const DestKey& key, uint32_t hash) const {
    if (entries_.size() == 0) return nullptr;
    const size_t mask = entries_.size() - 1;
    for (size_t i = hash & mask;; i = (i + 1) & mask) {
      const Entry& e = entries_[i];
      if (e.used == 0) return nullptr;
      if (e.hash == hash && SameKey(e.key, key)) return &e;
    }
  }

 private:
  ZeroedArray<Entry> entries_;
  bool valid_ = false;
  double time_ = 0;
  bool at_cap_ = false;
};

// Socket counts per service port of one direction: a direct index over all
// 65536 ports into a dense list of the ports seen, so counting costs no hash
// and clearing costs only the ports seen.
struct PortModel::PortIndex {
  std::vector<uint32_t> entry_of_port = std::vector<uint32_t>(65536, 0);  // 1-based; 0 = none.
  std::vector<std::pair<uint16_t, StateCounts>> entries;

  StateCounts& At(uint16_t port) {
    uint32_t& e = entry_of_port[port];
    if (e == 0) {
      entries.push_back({port, StateCounts{}});
      e = static_cast<uint32_t>(entries.size());
    }
    return entries[e - 1].second;
  }
  void Clear() {
    for (const auto& [port, counts] : entries) entry_of_port[port] = 0;
    entries.clear();
  }
};

const char* DirectionName(Direction d) { return d == Direction::kInbound ? "inbound" : "outbound"; }

PortModel::PortModel(const PortLimits& limits)
    : limits_(limits),
      services_{std::make_unique<PortIndex>(), std::make_unique<PortIndex>()},
      destinations_(
          std::make_unique<DestinationTable>(std::max<size_t>(limits.max_destinations, 1))),
      previous_(std::make_unique<PreviousTable>()) {}

PortModel::~PortModel() = default;

namespace {

constexpr uint32_t kTimeWaitMs = 60000;  // TCP_TIMEWAIT_LEN.
// How long a pin lasts: TIME_WAIT is 60 s, and the kernel's timer wheel
// fires a 60 s timer up to ~5 s late (HZ=100), showing 0 ms left meanwhile.
constexpr double kPinSeconds = 70;

uint8_t BucketOf(uint32_t remaining_ms) {
  return static_cast<uint8_t>(
      std::min<uint32_t>(remaining_ms / ForecastInput::kBucketMs, ForecastInput::kBuckets - 1));
}

}  // namespace

void PortModel::Begin(const PortSettings& settings, double now_seconds) {
  if (reported_) {
    // The last pass completed: it becomes the reference for growth (with
    // sockets added after its report, if any, measured again).
    if (destinations_->added() != added_at_report_) {
      destinations_->Flush();
      const GrowthContext g = StartGrowth();
      for (size_t i = 0; i < destinations_->slots().size(); ++i) MeasureGrowth(g, i);
    }
    previous_->Rebuild(destinations_->slots(), destinations_->size(), growth_, now_,
                       destinations_->sockets_dropped() > 0);
    reported_ = false;
  }
  settings_ = settings;
  now_ = now_seconds;

  // A TIME_WAIT opened while tcp_timestamps was 0 is never reused: when
  // timestamps come on, those closed before this poll stay blocking.
  if (settings.timestamps == 0) {
    pin_since_.reset();
  } else if (last_timestamps_ == 0) {
    pin_since_ = now_seconds;
  }
  if (pin_since_ && now_seconds - *pin_since_ > kPinSeconds) pin_since_.reset();
  last_timestamps_ = settings.timestamps;
  pinned_max_expires_ = -1;
  if (pin_since_) {
    const double pin_age_ms = (now_seconds - *pin_since_) * 1000.0;
    pinned_max_expires_ =
        static_cast<int64_t>(std::max(0.0, static_cast<double>(kTimeWaitMs) - pin_age_ms));
  }
  const uint32_t window = std::min(limits_.rate_window_ms, kTimeWaitMs);
  recent_min_expires_ = kTimeWaitMs - window;
  young_min_expires_ = kTimeWaitMs - std::min(settings.tw_reuse_delay_ms, kTimeWaitMs);
  Reset();
}

void PortModel::Reset() {
  listened_.reset();
  listeners_.clear();
  services_[0]->Clear();
  services_[1]->Clear();
  destinations_->Clear();
  ephemeral_ = {};
  time_wait_expiring_ = {};
  tcp_sockets_ = 0;
  reported_ = false;  // A restarted pass has not been reported.
}

void PortModel::CountService(Direction d, uint16_t port, uint8_t state) {
  services_[static_cast<size_t>(d)]->At(port)[state]++;
}

void PortModel::Add(const InetSocket& s) {
  if (s.protocol != IPPROTO_TCP || s.state == 0 || s.state >= kTcpStateCount) return;
  tcp_sockets_++;
  if (s.state == kTcpListen) {
    listened_.set(s.local_port);
    listeners_.push_back({s.family, s.local_addr, s.local_port, s.rqueue, s.wqueue});
    CountService(Direction::kInbound, s.local_port, s.state);
    return;
  }

  const bool local_in_range = settings_.InRange(s.local_port);
  if (local_in_range) ephemeral_[s.family == AF_INET6 ? 1 : 0][s.state]++;
  if (s.state == kTcpTimeWait) {
    // The first bucket whose bound it is within (the last: none), without
    // a branch per bound: timers left are as good as random.
    size_t bucket = 0;
    for (uint32_t within : PortReport::kTimeWaitWithinSeconds) {
      bucket += s.expires_ms > within * 1000u ? 1 : 0;
    }
    time_wait_expiring_[bucket]++;
  }

  if (listened_.test(s.local_port)) {
    CountService(Direction::kInbound, s.local_port, s.state);
    return;
  }
  if (!local_in_range) {
    // A fixed local port talking to an ephemeral one: the server end of a
    // connection whose listener has gone. Label the fixed port.
    if (settings_.InRange(s.remote_port)) {
      CountService(Direction::kInbound, s.local_port, s.state);
    } else {
      CountService(Direction::kOutbound, s.remote_port, s.state);
    }
    return;
  }
  CountService(Direction::kOutbound, s.remote_port, s.state);

  DestKey key{};
  key.family = s.family;
  key.remote_port = s.remote_port;
  const size_t addr_len = s.family == AF_INET6 ? 16 : 4;
  std::memcpy(key.local.data(), s.local_addr.data(), addr_len);
  std::memcpy(key.remote.data(), s.remote_addr.data(), addr_len);

  DestinationTable::Mark mark;
  if (s.state == kTcpTimeWait) {
    // Age = 60 s - the timer left; 0 left means past due (older than 60 s).
    const uint32_t left = std::min(s.expires_ms, kTimeWaitMs);
    mark.time_wait = true;
    mark.recent = left >= recent_min_expires_;
    const bool reusable = settings_.TimeWaitReusable(
        settings_.tw_reuse == 2 &&
        (IsLoopbackAddress(s.family, s.local_addr) || IsLoopbackAddress(s.family, s.remote_addr)));
    if (!reusable) {
      mark.bucket = BucketOf(left);
    } else if (left >= young_min_expires_) {
      // Younger than the reuse delay: blocks until it reaches it.
      mark.bucket = BucketOf(left - young_min_expires_);
    } else if (pinned_max_expires_ >= 0 &&
               (left == 0 || static_cast<int64_t>(left) < pinned_max_expires_)) {
      mark.bucket = BucketOf(left);  // Opened without timestamps: blocks until it expires.
    }
  }
  destinations_->Add(key, HashDestination(s.family, s.remote_port, s.local_addr, s.remote_addr),
                     mark);
}

PortModel::GrowthContext PortModel::StartGrowth() {
  const auto& slots = destinations_->slots();
  growth_.assign(slots.size(), NAN);
  GrowthContext g;
  g.dt = now_ - previous_->time();
  g.valid = previous_->valid() && g.dt > 0;
  // Exponential smoothing with the rate window as time constant: over
  // about one window whatever the poll interval.
  g.alpha = 1.0 - std::exp(-g.dt * 1000.0 / static_cast<double>(limits_.rate_window_ms));
  return g;
}

void PortModel::MeasureGrowth(const GrowthContext& g, size_t i) {
  const auto& slots = destinations_->slots();
  if (i + PreviousTable::kAhead < slots.size()) {
    previous_->Prefetch(slots[i + PreviousTable::kAhead].hash);
  }
  const auto& s = slots[i];
  if (!g.valid || s.ports == 0) return;
  const double connections = s.ports - s.time_wait;
  const PreviousTable::Entry* e = previous_->Find(s.key, s.hash);
  if (e == nullptr) {
    // Not tracked then: it had no socket, unless the cap dropped it.
    if (!previous_->at_cap()) growth_[i] = static_cast<float>(connections / g.dt);
    return;
  }
  const double raw = (connections - e->connections) / g.dt;
  growth_[i] = static_cast<float>(e->growth_known ? e->growth + g.alpha * (raw - e->growth) : raw);
}

PortReport PortModel::Report() {
  destinations_->Flush();
  const GrowthContext growth = StartGrowth();
  reported_ = true;
  added_at_report_ = destinations_->added();
  PortReport r;
  r.usable_ports = settings_.UsablePorts();
  r.ephemeral_sockets = ephemeral_;
  r.tcp_sockets = tcp_sockets_;
  for (size_t i = 0, sum = 0; i < r.time_wait_expiring.size(); ++i) {
    sum += time_wait_expiring_[i];
    r.time_wait_expiring[i] = sum;
  }

  // Destinations: the max and min over all of them, then the top-K by
  // ports held, then the lowest forecast if it is not among them.
  using Slot = DestinationTable::Slot;
  const auto& slots = destinations_->slots();
  const double usable = static_cast<double>(r.usable_ports);
  const double window_seconds = static_cast<double>(limits_.rate_window_ms) / 1000.0;
  const double reuse_delay_seconds =
      static_cast<double>(std::min(settings_.tw_reuse_delay_ms, kTimeWaitMs)) / 1000.0;
  auto evaluate = [&](size_t i) {
    const Slot& s = slots[i];
    PortReport::Destination d;
    d.family = s.key.family;
    d.local_addr = s.key.local;
    d.remote_addr = s.key.remote;
    d.remote_port = s.key.remote_port;
    d.ports = s.ports;
    d.time_wait = s.time_wait;
    ForecastInput in;
    in.usable = usable;
    in.connections = s.ports - s.time_wait;
    uint64_t blocking_time_wait = 0;
    for (size_t b = 0; b < in.blocking_time_wait.size(); ++b) {
      in.blocking_time_wait[b] = s.blocking_time_wait[b];
      blocking_time_wait += s.blocking_time_wait[b];
    }
    d.blocking = std::min<uint64_t>(d.ports, (d.ports - d.time_wait) + blocking_time_wait);
    d.utilization = r.usable_ports == 0 ? 1.0 : static_cast<double>(d.blocking) / usable;
    d.closes_per_second = s.recent / window_seconds;
    in.closes_per_second = d.closes_per_second;
    const bool loopback = IsLoopbackAddress(s.key.family, s.key.local) ||
                          IsLoopbackAddress(s.key.family, s.key.remote);
    in.new_time_wait_block_seconds =
        settings_.TimeWaitReusable(loopback) ? reuse_delay_seconds : kTimeWaitMs / 1000.0;
    d.growth_per_second = std::isnan(growth_[i]) ? 0.0 : growth_[i];
    in.growth_per_second = d.growth_per_second;
    const Forecast f = ForecastExhaustion(in);
    d.exhaustion_seconds = f.exhaustion_seconds;
    d.steady_utilization = f.steady_utilization;
    return d;
  };
  // Lowest forecast first; ties: most ports blocking, then the key.
  auto key_less = [](const Slot& a, const Slot& b) {
    return std::tie(a.key.family, a.key.local, a.key.remote, a.key.remote_port) <
           std::tie(b.key.family, b.key.local, b.key.remote, b.key.remote_port);
  };
  std::vector<const Slot*> dests;
  dests.reserve(limits_.top_destinations > 0 ? destinations_->size() : 0);
  r.utilization_max = r.usable_ports == 0 ? 1.0 : 0.0;
  r.exhaustion_seconds_min = r.usable_ports == 0 ? 0.0 : Forecast::kHorizonSeconds;
  r.steady_utilization_max = r.usable_ports == 0 ? 1.0 : 0.0;
  const Slot* soonest = nullptr;
  PortReport::Destination soonest_d;
  for (size_t i = 0; i < slots.size(); ++i) {
    MeasureGrowth(growth, i);
    const Slot& s = slots[i];
    if (s.ports == 0) continue;
    const PortReport::Destination d = evaluate(i);
    r.utilization_max = std::max(r.utilization_max, d.utilization);
    r.steady_utilization_max = std::max(r.steady_utilization_max, d.steady_utilization);
    r.exhaustion_seconds_min = std::min(r.exhaustion_seconds_min, d.exhaustion_seconds);
    if (d.exhaustion_seconds < Forecast::kHorizonSeconds &&
        (soonest == nullptr || d.exhaustion_seconds < soonest_d.exhaustion_seconds ||
         (d.exhaustion_seconds == soonest_d.exhaustion_seconds &&
          (d.blocking > soonest_d.blocking ||
           (d.blocking == soonest_d.blocking && key_less(s, *soonest)))))) {
      soonest = &s;
      soonest_d = d;
    }
    if (limits_.top_destinations > 0) dests.push_back(&s);
  }
  r.destinations = destinations_->size();
  const size_t k = std::min(limits_.top_destinations, dests.size());
  std::partial_sort(dests.begin(), dests.begin() + static_cast<std::ptrdiff_t>(k), dests.end(),
                    [&](const Slot* a, const Slot* b) {
                      if (a->ports != b->ports) return a->ports > b->ports;
                      return key_less(*a, *b);
                    });
  bool soonest_listed = false;
  for (size_t i = 0; i < k; ++i) {
    r.top_destinations.push_back(evaluate(static_cast<size_t>(dests[i] - slots.begin())));
    soonest_listed = soonest_listed || dests[i] == soonest;
  }
  if (k > 0 && soonest != nullptr && !soonest_listed) r.top_destinations.push_back(soonest_d);
  r.sockets_dropped = destinations_->sockets_dropped();
  r.destinations_dropped = destinations_->destinations_dropped();

  // Service ports: top-K per direction by sockets, then "other".
  for (Direction dir : {Direction::kInbound, Direction::kOutbound}) {
    struct Candidate {
      uint16_t port;
      uint64_t total;
      const StateCounts* counts;
    };
    std::vector<Candidate> ports;
    for (const auto& [port, counts] : services_[static_cast<size_t>(dir)]->entries) {
      uint64_t total = 0;
      for (uint64_t c : counts) total += c;
      ports.push_back({port, total, &counts});
    }
    const size_t top = std::min(limits_.top_services, ports.size());
    const auto mid = ports.begin() + static_cast<std::ptrdiff_t>(top);
    std::partial_sort(ports.begin(), mid, ports.end(), [](const Candidate& a, const Candidate& b) {
      return ByCountThenKey(a.total, b.total, a.port, b.port);
    });
    for (auto it = ports.begin(); it != mid; ++it) {
      r.service_ports.push_back({dir, it->port, *it->counts});
    }
    PortReport::ServicePort other{dir, std::nullopt, {}};
    for (auto it = mid; it != ports.end(); ++it) {
      for (size_t st = 0; st < other.sockets.size(); ++st) other.sockets[st] += (*it->counts)[st];
    }
    r.service_ports.push_back(other);
  }

  // Listeners: merge those sharing an address and port, largest queue first.
  std::vector<PortReport::Listener> listeners;
  listeners.reserve(listeners_.size());
  for (const auto& l : listeners_) {
    listeners.push_back({l.family, l.addr, l.port, l.queue_length, l.queue_limit});
  }
  auto key_of = [](const PortReport::Listener& l) { return std::tie(l.family, l.addr, l.port); };
  std::sort(listeners.begin(), listeners.end(),
            [&](const auto& a, const auto& b) { return key_of(a) < key_of(b); });
  std::vector<PortReport::Listener> merged;
  for (const auto& l : listeners) {
    if (!merged.empty() && key_of(merged.back()) == key_of(l)) {
      merged.back().queue_length += l.queue_length;
      merged.back().queue_limit += l.queue_limit;
    } else {
      merged.push_back(l);
    }
  }
  const size_t nl = std::min(limits_.max_listeners, merged.size());
  std::partial_sort(merged.begin(), merged.begin() + static_cast<std::ptrdiff_t>(nl), merged.end(),
                    [&](const auto& a, const auto& b) {
                      if (a.queue_length != b.queue_length) return a.queue_length > b.queue_length;
                      return key_of(a) < key_of(b);
                    });
  merged.resize(nl);
  r.listeners = std::move(merged);
  return r;
}

}  // namespace sockdiag
