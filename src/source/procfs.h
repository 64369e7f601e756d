// Read-only access to a procfs tree rooted at --path.procfs.
//
// The root is the seam: production uses /proc (or /host/proc in a
// container), tests point it at fixture trees under tests/data/. Reads are
// small whole-file reads with EINTR retried.
//
// Thread-safety: const methods; safe from any thread.
#pragma once

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

}  // namespace sockdiag
