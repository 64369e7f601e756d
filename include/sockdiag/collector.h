// Collector: one source of metrics, polled periodically (node_exporter's
// collector model). Each collector lives in its own file under
// src/collectors/ and is listed once in the static table of registry.cc,
// which gives it --[no-]collector.NAME and a default.
//
// A poll of one network namespace runs, on the poller thread:
//   1. Begin() on every enabled collector (read sysctls, reset aggregates);
//   2. one streaming pass over the namespace's sockets, fanned out to the
//      socket_sink() of every collector that has one (no per-socket storage:
//      sinks aggregate as sockets stream past);
//   3. Collect() on every collector whose earlier steps succeeded, which
//      appends fresh MetricFamily values.
// A failing step marks that collector failed for this poll
// (sockdiag_collector_success 0) and never affects the others.
//
// Thread-safety: a collector is only ever called from the poller thread; it
// may keep state across polls (counters, caches) without locking.
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <string>

#include "sockdiag/config.h"
#include "sockdiag/metric_builder.h"
#include "sockdiag/status.h"

namespace sockdiag {

struct PollContext;      // source/poll_context.h
class SocketStreamSink;  // netlink/inet_diag.h

class Collector {
 public:
  virtual ~Collector() = default;

  // Step 1. A non-OK status fails this collector for this poll.
  virtual Status Begin(const PollContext& ctx) {
    (void)ctx;
    return Status::Ok();
  }

  // Step 2. Non-null when this collector consumes the socket stream in this
  // poll; wants_udp() adds UDP sockets to it.
  virtual SocketStreamSink* socket_sink() { return nullptr; }
  virtual bool wants_udp() const { return false; }

  // Step 3. Appends fresh families to *out. On failure *out is discarded.
  virtual Status Collect(const PollContext& ctx, MetricFamilies* out) = 0;
};

struct CollectorInfo {
  const char* name;
  bool enabled_by_default;
  const char* help;  // One line for --help.
  std::unique_ptr<Collector> (*factory)(const Config&);
  // The Linux capabilities it needs, bit n for capability number n
  // (<linux/capability.h>), for the capability report.
  uint64_t capabilities = 0;
};

// The static table of every collector, in exposition order.
std::span<const CollectorInfo> AllCollectors();

}  // namespace sockdiag
