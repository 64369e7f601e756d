// PortSettings: what a namespace's sysctls say about connect()'s choice of
// a local port, and the port-range arithmetic behind it.
//
// Thread-safety: plain values and reentrant functions.
#pragma once

#include <cstdint>
#include <vector>

#include "proc/proc_parsers.h"

namespace sockdiag {

// What the namespace's sysctls say about connect()'s choice of local port,
// read at the start of each poll.
struct PortSettings {
  uint32_t range_low = 32768;  // net.ipv4.ip_local_port_range
  uint32_t range_high = 60999;
  uint64_t reserved_in_range = 0;  // net.ipv4.ip_local_reserved_ports inside the range
  int tw_reuse = 2;                // net.ipv4.tcp_tw_reuse
  int timestamps = 1;              // net.ipv4.tcp_timestamps
  // net.ipv4.tcp_tw_reuse_delay (Linux 6.13+); older kernels wait about 1 s.
  uint32_t tw_reuse_delay_ms = 1000;

  // (high - low + 1) - reserved ports inside the range; 0 when that is not
  // positive.
  uint64_t UsablePorts() const;
  bool InRange(uint16_t port) const { return port >= range_low && port <= range_high; }
  // Whether connect() may take over a TIME_WAIT socket of a destination:
  // timestamps on, and tcp_tw_reuse 1, or 2 with a loopback end (the kernel
  // checks both the local and the remote address).
  bool TimeWaitReusable(bool loopback) const;
};

// Number of distinct ports of [low, high] covered by `reserved`.
uint64_t CountReservedInRange(const std::vector<PortRange>& reserved, uint32_t low,
                              uint32_t high);

}  // namespace sockdiag
