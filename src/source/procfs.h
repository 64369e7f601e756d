// Read-only access to a procfs tree rooted at --path.procfs.
//
// The root is the seam: production uses /proc (or /host/proc in a
// container), tests point it at fixture trees under tests/data/. Reads are
// small whole-file reads with EINTR retried.
//
// Thread-safety: const methods; safe from any thread.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "sockdiag/status.h"

namespace sockdiag {

class ProcFs {
 public:
  explicit ProcFs(std::string root) : root_(std::move(root)) {}

  const std::string& root() const { return root_; }

  // "<root>/<relative>".
  std::string Path(std::string_view relative) const;

  // Reads a whole file (at most 4 MiB). NotFound when absent, Permission when
  // unreadable, Corruption when larger than the cap.
  Result<std::string> ReadFile(std::string_view relative) const;

  // Reads a sysctl by dotted name ("net.ipv4.tcp_tw_reuse") from
  // <root>/sys/net/ipv4/tcp_tw_reuse and splits it into whitespace-separated
  // integer fields. NotFound when the key does not exist on this kernel.
  Result<std::vector<long long>> ReadSysctlInts(std::string_view dotted_name) const;

 private:
  std::string root_;
};

// Parses whitespace-separated integers ("32768\t60999\n"). Corruption on
// anything else, or on no number at all.
Result<std::vector<long long>> ParseInts(std::string_view text);

// Parses a comma-separated list of ports and ranges as in
// ip_local_reserved_ports ("8080,9000-9010"); empty text is an empty list.
// Returns closed ranges [first, last].
struct PortRange {
  uint32_t first;
  uint32_t last;
};
Result<std::vector<PortRange>> ParsePortRanges(std::string_view text);

}  // namespace sockdiag

namespace sockdiag {
// Number of distinct ports of [low, high] covered by `reserved`.
uint64_t CountReservedInRange(const std::vector<PortRange>& reserved, uint32_t low,
                              uint32_t high);
}  // namespace sockdiag
