// Poller: runs the enabled collectors every --poll.interval on its own
// thread and publishes an immutable snapshot of their metrics.
//
// Scrapes never touch the kernel: they copy the latest snapshot, so a scrape
// during a long dump answers at once with the previous poll's data (HELP
// texts say "at the last poll"). Polls never overlap; when one runs past its
// interval the missed ticks are counted in sockdiag_polls_skipped_total.
//
// Thread-safety: Snapshot(), ready() and Stop() may be called from any
// thread. Start() once. PollOnce() only while the thread is not running.
#pragma once

#include <linux/netlink.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "netlink/inet_diag.h"
#include "sockdiag/collector.h"
#include "sockdiag/config.h"
#include "sockdiag/metric_builder.h"
#include "source/clock.h"
#include "source/dump_session.h"
#include "source/netlink_socket.h"
#include "source/poll_context.h"
#include "source/netns.h"
#include "source/procfs.h"

namespace sockdiag {

// The collectors of one network namespace and the netlink socket they
// share. Polls that namespace when asked; not thread-safe.
class NamespacePoller {
 public:
  struct Result {
    MetricFamilies families;
    // Per collector: name, success, seconds.
    struct CollectorOutcome {
      std::string name;
      bool success;
      double seconds;
    };
    std::vector<CollectorOutcome> outcomes;
    SocketStreamStats stream;
    double stream_seconds = 0;
  };

  // `netlink` opens sockets in the namespace; `clock` times the collectors
  // (both borrowed, must outlive this).
  NamespacePoller(const Config& config, const ProcFs& procfs, std::string net_dir,
                  NetlinkFactory* netlink, const Clock* clock = &SystemClock());
  ~NamespacePoller();
  NamespacePoller(const NamespacePoller&) = delete;
  NamespacePoller& operator=(const NamespacePoller&) = delete;

  Result Poll();

  // Where this namespace's net files are, relative to procfs.
  void set_net_dir(std::string net_dir) { ctx_.net_dir = std::move(net_dir); }

 private:
  struct Slot;
  PollContext ctx_;
  std::vector<std::unique_ptr<Slot>> slots_;
  DumpSession sockdiag_{NETLINK_SOCK_DIAG, "sock_diag"};
};

// What a Poller reads the system through. Null members mean the real
// system: procfs at --path.procfs, netlink sockets opened by the polling
// thread (recorded under --debug.dump-netlink), the system clock. Tests swap
// in fixture trees, replayed recordings and a ManualClock. Borrowed: what
// is given must outlive the Poller.
struct PollerSources {
  const ProcFs* procfs = nullptr;
  NetlinkFactory* netlink = nullptr;
  const Clock* clock = nullptr;
};

class Poller {
 public:
  explicit Poller(const Config& config, PollerSources sources = {});
  ~Poller();
  Poller(const Poller&) = delete;
  Poller& operator=(const Poller&) = delete;

  // Starts the polling thread; the first poll begins immediately.
  void Start();
  // Stops the thread, interrupting the wait between polls (not a running
  // dump, which is bounded by the netlink receive timeout).
  void Stop();

  // Runs one poll on the calling thread and publishes it. In pods mode the
  // calling thread enters each namespace in turn (setns) and returns to its
  // own before this returns.
  void PollOnce();

  // The latest snapshot (never null; empty before the first poll).
  std::shared_ptr<const MetricFamilies> Snapshot() const;
  // True once a poll has completed.
  bool ready() const { return ready_.load(); }

  // Per-namespace outcome of one poll, for the self metrics.
  struct PollTotals;

 private:
  void Run();
  void PollSelf(PollTotals* totals);
  void PollNamespaces(PollTotals* totals);

  const Config& config_;
  ProcFs own_procfs_;
  LocalNetlinkFactory own_netlink_;
  const ProcFs& procfs_;
  NetlinkFactory& netlink_;
  const Clock& clock_;
  std::unique_ptr<NamespacePoller> self_;  // --netns.mode=self
  // --netns.mode=pods: one poller per namespace inode, kept across polls
  // (its netlink sockets stay bound to that namespace) and dropped when the
  // namespace is no longer found, which releases it.
  std::map<uint64_t, std::unique_ptr<NamespacePoller>> netns_pollers_;
  std::unique_ptr<NetnsFile> own_netns_;  // Pods mode: the way back.

  mutable std::mutex mu_;
  std::shared_ptr<const MetricFamilies> snapshot_;  // GUARDED_BY(mu_)
  bool stop_ = false;                               // GUARDED_BY(mu_)
  std::condition_variable cv_;
  std::thread thread_;
  std::atomic<bool> ready_{false};

  // Only touched by the polling thread (or PollOnce's caller).
  uint64_t polls_ = 0;
  uint64_t polls_skipped_ = 0;
  uint64_t dump_interrupted_ = 0;
  uint64_t netns_skipped_ = 0;
  uint64_t netns_vanished_ = 0;
  uint64_t netns_errors_ = 0;
};

}  // namespace sockdiag
