#include "poll/poller.h"

#include <algorithm>
#include <chrono>
#include <optional>

#include "netlink/netlink.h"
#include "sockdiag/log.h"
#include "sockdiag/version.h"
#include "source/netns.h"

namespace sockdiag {
namespace {

// Fans the socket stream out to every consuming collector.
class FanoutSink final : public SocketStreamSink {
 public:
  void Add(SocketStreamSink* s) { sinks_.push_back(s); }
  bool empty() const { return sinks_.empty(); }
  void OnSocket(const InetSocket& s) override {
    for (auto* sink : sinks_) sink->OnSocket(s);
  }
  void Reset() override {
    for (auto* sink : sinks_) sink->Reset();
  }
  void OnUnavailable(uint8_t protocol) override {
    for (auto* sink : sinks_) sink->OnUnavailable(protocol);
  }

 private:
  std::vector<SocketStreamSink*> sinks_;
};

// Level for a collector failure: an absent feature is routine (debug), a
// missing capability is worth one warning, anything else is an error.
LogLevel FailureLevel(const Status& s) {
  if (s.IsNotFound() || s.IsUnsupported()) return LogLevel::kDebug;
  if (s.IsPermission()) return LogLevel::kWarn;
  return LogLevel::kError;
}

}  // namespace

struct NamespacePoller::Slot {
  std::string name;
  std::unique_ptr<Collector> collector;
};

NamespacePoller::NamespacePoller(const Config& config, const ProcFs& procfs, std::string net_dir,
                                 NetlinkFactory* netlink, const Clock* clock)
    : ctx_{config, procfs, std::move(net_dir), netlink, clock} {
  for (const auto& info : AllCollectors()) {
    if (!config.IsEnabled(info.name)) continue;
    slots_.push_back(std::make_unique<Slot>(Slot{info.name, info.factory(config)}));
  }
}

NamespacePoller::~NamespacePoller() = default;

NamespacePoller::Result NamespacePoller::Poll() {
  Result result;
  const size_t n = slots_.size();
  std::vector<Status> status(n);
  std::vector<double> seconds(n, 0.0);

  // Step 1: Begin.
  for (size_t i = 0; i < n; ++i) {
    auto t0 = ctx_.clock->Now();
    status[i] = slots_[i]->collector->Begin(ctx_);
    seconds[i] += ctx_.clock->SecondsSince(t0);
  }

  // Step 2: one streaming pass shared by every socket consumer.
  FanoutSink fanout;
  bool udp = false;
  std::vector<size_t> consumers;
  for (size_t i = 0; i < n; ++i) {
    if (!status[i].ok()) continue;
    if (auto* sink = slots_[i]->collector->socket_sink()) {
      fanout.Add(sink);
      udp = udp || slots_[i]->collector->wants_udp();
      consumers.push_back(i);
    }
  }
  if (!fanout.empty()) {
    auto t0 = ctx_.clock->Now();
    Status s = sockdiag_.Open(ctx_.netlink);
    if (s.ok()) {
      SockDiagStream stream(&sockdiag_);
      s = stream.Run(udp, fanout, &result.stream);
    }
    result.stream_seconds = ctx_.clock->SecondsSince(t0);
    for (size_t i : consumers) {
      seconds[i] += result.stream_seconds;
      if (!s.ok()) status[i] = s;
    }
  }

  // Step 3: Collect.
  for (size_t i = 0; i < n; ++i) {
    if (status[i].ok()) {
      auto t0 = ctx_.clock->Now();
      MetricFamilies out;
      status[i] = slots_[i]->collector->Collect(ctx_, &out);
      seconds[i] += ctx_.clock->SecondsSince(t0);
      if (status[i].ok()) {
        std::move(out.begin(), out.end(), std::back_inserter(result.families));
      }
    }
    if (!status[i].ok()) {
      LogOnce(FailureLevel(status[i]), "collector:" + slots_[i]->name + ":" + status[i].ToString(),
              "collector failed",
              {{"collector", slots_[i]->name}, {"err", status[i].ToString()}});
    }
    result.outcomes.push_back({slots_[i]->name, status[i].ok(), seconds[i]});
  }
  return result;
}

// What one poll found across namespaces, before it becomes self metrics.
struct Poller::PollTotals {
  MetricFamilies families;
  std::map<std::string, size_t> index;  // Family name -> position in families.
  FamilyBuilder success = FamilyBuilder::Gauge(
      "sockdiag_collector_success", "1 if the collector succeeded at the last poll, else 0.");
  FamilyBuilder duration = FamilyBuilder::Gauge(
      "sockdiag_collector_duration_seconds",
      "Time the collector took at the last poll, including its share of the socket dump.");
  uint64_t sockets = 0;
  uint64_t interrupted = 0;
  double stream_seconds = 0;
  uint64_t netns_polled = 0;
  double netns_seconds = 0;

  // Moves `from` in, adding `extra` labels to every sample and merging
  // families of the same name (one per namespace) into one.
  void Add(MetricFamilies&& from, const Labels& extra) {
    for (auto& f : from) {
      if (!extra.empty()) {
        for (auto& m : f.metric) m.label.insert(m.label.end(), extra.begin(), extra.end());
      }
      auto it = index.find(f.name);
      if (it == index.end()) {
        index.emplace(f.name, families.size());
        families.push_back(std::move(f));
      } else {
        auto& into = families[it->second].metric;
        std::move(f.metric.begin(), f.metric.end(), std::back_inserter(into));
      }
    }
  }

  void AddResult(NamespacePoller::Result&& r, const Labels& extra) {
    Add(std::move(r.families), extra);
    for (const auto& o : r.outcomes) {
      Labels l = {{"collector", o.name}};
      l.insert(l.end(), extra.begin(), extra.end());
      success.Add(l, o.success ? 1 : 0);
      duration.Add(l, o.seconds);
    }
    sockets += r.stream.sockets;
    interrupted += r.stream.interrupted_retries;
    stream_seconds += r.stream_seconds;
  }
};

Poller::Poller(const Config& config, PollerSources sources)
    : config_(config),
      own_procfs_(config.procfs),
      own_netlink_(config.dump_netlink_dir),
      procfs_(sources.procfs != nullptr ? *sources.procfs : own_procfs_),
      netlink_(sources.netlink != nullptr ? *sources.netlink : own_netlink_),
      clock_(sources.clock != nullptr ? *sources.clock : SystemClock()),
      snapshot_(std::make_shared<const MetricFamilies>()) {
  if (config.netns_mode == NetnsMode::kSelf) {
    self_ = std::make_unique<NamespacePoller>(config, procfs_, "net", &netlink_, &clock_);
  } else {
    // The way back after visiting other namespaces. /proc itself, not
    // --path.procfs: this is the exporter's own thread.
    auto home = NetnsFile::Open("/proc/thread-self/ns/net");
    if (home.ok()) {
      own_netns_ = std::make_unique<NetnsFile>(std::move(home).value());
    } else {
      Log(LogLevel::kError, "cannot open own network namespace; pods mode polls nothing",
          {{"err", home.status().ToString()}});
    }
  }
}

Poller::~Poller() { Stop(); }

void Poller::Start() { thread_ = std::thread([this] { Run(); }); }

void Poller::Stop() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stop_ = true;
  }
  cv_.notify_all();
  if (thread_.joinable()) thread_.join();
}

std::shared_ptr<const MetricFamilies> Poller::Snapshot() const {
  std::lock_guard<std::mutex> lock(mu_);
  return snapshot_;
}

void Poller::PollSelf(PollTotals* totals) { totals->AddResult(self_->Poll(), {}); }

void Poller::PollNamespaces(PollTotals* totals) {
  if (!own_netns_) return;
  NetnsDiscovery found =
      DiscoverNetns(procfs_, config_.netns_run_dir, config_.netns_include_host,
                    static_cast<size_t>(config_.netns_max));
  netns_skipped_ += found.skipped;
  std::map<uint64_t, std::unique_ptr<NamespacePoller>> kept;
  for (const NetnsTarget& t : found.targets) {
    auto t0 = clock_.Now();
    std::optional<ScopedNetns> inside;
    {
      auto target = NetnsFile::Open(t.ns_path);  // Closed once entered.
      if (!target.ok()) {
        netns_vanished_++;  // The process or mount went away since discovery.
        continue;
      }
      auto entered = ScopedNetns::Enter(target.value(), *own_netns_);
      if (!entered.ok()) {
        const Status& s = entered.status();
        if (s.IsPermission()) {
          netns_errors_++;
          LogOnce(LogLevel::kWarn, "setns-eperm",
                  "cannot enter network namespaces: pods mode needs CAP_SYS_ADMIN (and "
                  "CAP_SYS_PTRACE to open other processes' namespaces)",
                  {{"err", s.ToString()}});
        } else {
          netns_vanished_++;
        }
        continue;
      }
      inside.emplace(std::move(entered).value());
    }
    auto& poller = kept[t.inode];
    if (auto it = netns_pollers_.find(t.inode); it != netns_pollers_.end()) {
      poller = std::move(it->second);
    } else {
      poller = std::make_unique<NamespacePoller>(config_, procfs_, "", &netlink_, &clock_);
    }
    poller->set_net_dir(t.net_dir.empty() ? "thread-self/net" : t.net_dir);
    NamespacePoller::Result r = poller->Poll();
    if (Status back = inside->Return(); !back.ok()) {
      // Should be impossible: we came from there. Stop polling others.
      Log(LogLevel::kError, "cannot return to own network namespace", {{"err", back.ToString()}});
      break;
    }
    Labels extra = {{"netns", t.label}};
    if (!t.pod_uid.empty()) extra.push_back({"pod_uid", t.pod_uid});
    totals->AddResult(std::move(r), extra);
    totals->netns_polled++;
    totals->netns_seconds += clock_.SecondsSince(t0);
  }
  // Pollers of namespaces not found any more close their sockets here,
  // releasing those namespaces.
  netns_pollers_ = std::move(kept);
}

void Poller::PollOnce() {
  auto t0 = clock_.Now();
  PollTotals totals;
  if (self_) {
    PollSelf(&totals);
  } else {
    PollNamespaces(&totals);
  }
  const double poll_seconds = clock_.SecondsSince(t0);
  polls_++;
  dump_interrupted_ += totals.interrupted;

  auto families = std::make_shared<MetricFamilies>(std::move(totals.families));
  totals.success.AppendTo(families.get());
  totals.duration.AppendTo(families.get());
  FamilyBuilder::Gauge("sockdiag_build_info",
                       "Version and revision the exporter was built from; value is 1.")
      .Add({{"version", kVersion}, {"revision", kRevision}}, 1)
      .AppendTo(families.get());
  const double now = clock_.UnixSeconds();
  FamilyBuilder::Gauge("sockdiag_last_poll_timestamp_seconds",
                       "Unix time the last poll finished; scrapes serve its snapshot.")
      .Add(now)
      .AppendTo(families.get());
  FamilyBuilder::Gauge("sockdiag_poll_duration_seconds", "Time the last poll took.")
      .Add(poll_seconds)
      .AppendTo(families.get());
  FamilyBuilder::Counter("sockdiag_polls_total", "Polls completed since start.")
      .Add(static_cast<double>(polls_))
      .AppendTo(families.get());
  FamilyBuilder::Counter("sockdiag_polls_skipped_total",
                         "Poll ticks skipped because the previous poll was still running.")
      .Add(static_cast<double>(polls_skipped_))
      .AppendTo(families.get());
  FamilyBuilder::Counter("sockdiag_netlink_dump_interrupted_total",
                         "sock_diag passes restarted because the kernel flagged the dump as "
                         "interrupted (NLM_F_DUMP_INTR).")
      .Add(static_cast<double>(dump_interrupted_))
      .AppendTo(families.get());
  FamilyBuilder::Gauge("sockdiag_sock_diag_sockets",
                       "Sockets streamed at the last poll (all polled namespaces).")
      .Add(static_cast<double>(totals.sockets))
      .AppendTo(families.get());
  FamilyBuilder::Gauge("sockdiag_sock_diag_duration_seconds",
                       "Time the sock_diag passes (all dumps, all namespaces) took at the last "
                       "poll.")
      .Add(totals.stream_seconds)
      .AppendTo(families.get());
  if (!self_) {
    FamilyBuilder::Gauge("sockdiag_netns_polled", "Network namespaces polled at the last poll.")
        .Add(static_cast<double>(totals.netns_polled))
        .AppendTo(families.get());
    FamilyBuilder::Gauge("sockdiag_netns_poll_duration_seconds",
                         "Time spent polling network namespaces at the last poll.")
        .Add(totals.netns_seconds)
        .AppendTo(families.get());
    FamilyBuilder::Counter("sockdiag_netns_skipped_total",
                           "Network namespaces left out because of --netns.max, summed over "
                           "polls.")
        .Add(static_cast<double>(netns_skipped_))
        .AppendTo(families.get());
    FamilyBuilder::Counter("sockdiag_netns_vanished_total",
                           "Network namespaces that disappeared between discovery and polling.")
        .Add(static_cast<double>(netns_vanished_))
        .AppendTo(families.get());
    FamilyBuilder::Counter("sockdiag_netns_errors_total",
                           "Network namespaces that could not be entered (missing capability).")
        .Add(static_cast<double>(netns_errors_))
        .AppendTo(families.get());
  }

  {
    std::lock_guard<std::mutex> lock(mu_);
    snapshot_ = std::move(families);
  }
  ready_ = true;
  Log(LogLevel::kDebug, "poll done",
      {{"seconds", std::to_string(poll_seconds)}, {"sockets", std::to_string(totals.sockets)}});
}

void Poller::Run() {
  const auto interval = config_.poll_interval;
  auto next = clock_.Now();
  for (;;) {
    PollOnce();
    next += interval;
    const auto now = clock_.Now();
    if (now > next) {
      // Overran: skip the ticks that passed, start the next poll now.
      const auto behind = (now - next) / interval;
      polls_skipped_ += static_cast<uint64_t>(behind) + 1;
      next = now;
    }
    std::unique_lock<std::mutex> lock(mu_);
    if (cv_.wait_until(lock, next, [this] { return stop_; })) return;
  }
}

}  // namespace sockdiag
