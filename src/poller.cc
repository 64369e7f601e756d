#include "sockdiag/poller.h"

#include <sys/socket.h>

#include <algorithm>
#include <chrono>

#include "sockdiag/log.h"
#include "sockdiag/netlink.h"
#include "sockdiag/version.h"

namespace sockdiag {
namespace {

using Clock = std::chrono::steady_clock;

double SecondsSince(Clock::time_point start) {
  return std::chrono::duration<double>(Clock::now() - start).count();
}

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

Result<std::unique_ptr<NetlinkDumper>> LocalNetlinkFactory::Open(int bus) {
  auto sock = NetlinkSocket::Open(bus);
  if (!sock.ok()) return sock.status();
  if (!record_dir_.empty()) {
    sock.value()->set_record_path(record_dir_ + "/netlink-" + std::to_string(bus) + "-" +
                                  std::to_string(opened_++) + ".bin");
  }
  return std::unique_ptr<NetlinkDumper>(std::move(sock).value());
}

NamespacePoller::NamespacePoller(const Config& config, const ProcFs& procfs, std::string net_dir,
                                 NetlinkFactory* netlink)
    : config_(config), ctx_{config, procfs, std::move(net_dir), netlink} {
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
    auto t0 = Clock::now();
    status[i] = slots_[i]->collector->Begin(ctx_);
    seconds[i] += SecondsSince(t0);
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
    auto t0 = Clock::now();
    Status s;
    if (!sockdiag_ && ctx_.netlink != nullptr) {
      auto opened = ctx_.netlink->Open(NETLINK_SOCK_DIAG);
      if (opened.ok()) {
        sockdiag_ = std::move(opened).value();
      } else {
        s = opened.status().WithPrefix("open sock_diag socket");
      }
    }
    if (s.ok() && !sockdiag_) s = Status::Unsupported("no netlink factory");
    if (s.ok()) {
      SockDiagStream stream(sockdiag_.get());
      s = stream.Run(udp, fanout, &result.stream);
      auto* sock = dynamic_cast<NetlinkSocket*>(sockdiag_.get());
      if (sock != nullptr && sock->broken()) sockdiag_.reset();  // Reopen next poll.
    }
    result.stream_seconds = SecondsSince(t0);
    for (size_t i : consumers) {
      seconds[i] += result.stream_seconds;
      if (!s.ok()) status[i] = s;
    }
  }

  // Step 3: Collect.
  for (size_t i = 0; i < n; ++i) {
    if (status[i].ok()) {
      auto t0 = Clock::now();
      MetricFamilies out;
      status[i] = slots_[i]->collector->Collect(ctx_, &out);
      seconds[i] += SecondsSince(t0);
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

Poller::Poller(const Config& config)
    : config_(config),
      procfs_(config.procfs),
      netlink_(config.dump_netlink_dir),
      self_(std::make_unique<NamespacePoller>(config, procfs_, "net", &netlink_)),
      snapshot_(std::make_shared<const MetricFamilies>()) {}

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

void Poller::PollOnce() {
  auto t0 = Clock::now();
  NamespacePoller::Result r = self_->Poll();
  const double poll_seconds = SecondsSince(t0);
  polls_++;
  dump_interrupted_ += r.stream.interrupted_retries;

  auto families = std::make_shared<MetricFamilies>(std::move(r.families));
  auto success = FamilyBuilder::Gauge(
      "sockdiag_collector_success", "1 if the collector succeeded at the last poll, else 0.");
  auto duration = FamilyBuilder::Gauge("sockdiag_collector_duration_seconds",
                                       "Time the collector took at the last poll, including its "
                                       "share of the socket dump.");
  for (const auto& o : r.outcomes) {
    success.Add({{"collector", o.name}}, o.success ? 1 : 0);
    duration.Add({{"collector", o.name}}, o.seconds);
  }
  std::move(success).AppendTo(families.get());
  std::move(duration).AppendTo(families.get());

  FamilyBuilder::Gauge("sockdiag_build_info",
                       "Version and revision the exporter was built from; value is 1.")
      .Add({{"version", kVersion}, {"revision", kRevision}}, 1)
      .AppendTo(families.get());
  const double now = std::chrono::duration<double>(
                         std::chrono::system_clock::now().time_since_epoch())
                         .count();
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
  FamilyBuilder::Gauge("sockdiag_sock_diag_sockets", "Sockets streamed at the last poll.")
      .Add(static_cast<double>(r.stream.sockets))
      .AppendTo(families.get());
  FamilyBuilder::Gauge("sockdiag_sock_diag_duration_seconds",
                       "Time the sock_diag pass (all dumps) took at the last poll.")
      .Add(r.stream_seconds)
      .AppendTo(families.get());

  {
    std::lock_guard<std::mutex> lock(mu_);
    snapshot_ = std::move(families);
  }
  ready_ = true;
  Log(LogLevel::kDebug, "poll done",
      {{"seconds", std::to_string(poll_seconds)}, {"sockets", std::to_string(r.stream.sockets)}});
}

void Poller::Run() {
  const auto interval = config_.poll_interval;
  auto next = Clock::now();
  for (;;) {
    PollOnce();
    next += interval;
    const auto now = Clock::now();
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
