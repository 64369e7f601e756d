// Network-namespace discovery for --netns.mode=pods.
//
// Namespaces are found from <procfs>/<pid>/ns/net (every process, so this
// needs hostPID in a DaemonSet) and from the files of a runtime directory
// such as /var/run/netns (named namespaces that may hold no process),
// deduplicated by inode. A pod's UID is read from the cgroup path of a
// process in the namespace, which kubelet names after it for every runtime
// and cgroup driver; no Kubernetes API is used.
//
// Thread-safety: pure functions and read-only filesystem access.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "sockdiag/status.h"
#include "source/procfs.h"

namespace sockdiag {

struct NetnsTarget {
  uint64_t inode = 0;
  // Path to open for setns(): "<procfs>/<pid>/ns/net" or "<run dir>/<name>".
  std::string ns_path;
  // procfs-relative directory of the namespace's net files ("<pid>/net"),
  // empty when no process is known (then "thread-self/net" is used).
  std::string net_dir;
  // "host" for the namespace of pid 1 (or, when pid 1 cannot be inspected,
  // the exporter's own), else the inode in decimal.
  std::string label;
  // Kubernetes pod UID, when a process in the namespace belongs to a pod.
  std::string pod_uid;
};

struct NetnsDiscovery {
  std::vector<NetnsTarget> targets;  // Host first (if included), then by inode.
  uint64_t skipped = 0;              // Over the --netns.max cap.
};

// Lists the namespaces to poll. `run_dir` may be empty or absent.
NetnsDiscovery DiscoverNetns(const ProcFs& procfs, const std::string& run_dir, bool include_host,
                             size_t max);

}  // namespace sockdiag
