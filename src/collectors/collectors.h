// Factories of the built-in collectors, one per file in src/collectors/.
// Only registry.cc and tests should need this header.
#pragma once

#include <memory>

#include "netlink/inet_diag.h"
#include "sockdiag/collector.h"
#include "source/poll_context.h"

namespace sockdiag {

std::unique_ptr<Collector> NewSocketsCollector(const Config& config);
std::unique_ptr<Collector> NewSysctlCollector(const Config& config);
std::unique_ptr<Collector> NewNetstatCollector(const Config& config);
std::unique_ptr<Collector> NewConntrackCollector(const Config& config);
std::unique_ptr<Collector> NewConntrackTableCollector(const Config& config);
std::unique_ptr<Collector> NewPortsCollector(const Config& config);

}  // namespace sockdiag
