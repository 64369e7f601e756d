// PollContext: everything a collector reads the system through while one
// network namespace is polled (the argument of Collector::Begin/Collect).
#pragma once

#include <string>

#include "sockdiag/config.h"
#include "source/clock.h"
#include "source/dump_session.h"
#include "source/procfs.h"

namespace sockdiag {

// What a collector may use while polling one network namespace.
struct PollContext {
  const Config& config;
  const ProcFs& procfs;
  // procfs-relative directory with this namespace's net files ("net" for
  // the exporter's own, "<pid>/net" for another namespace).
  std::string net_dir = "net";
  // Opens netlink sockets in the namespace being polled (may be null in
  // unit tests that do not need one).
  NetlinkFactory* netlink = nullptr;
  // Durations, dump schedules and exported timestamps read this clock.
  const Clock* clock = &SystemClock();
};

}  // namespace sockdiag
