// Network namespaces: discovery for --netns.mode=pods, and moving the
// calling thread into one (pods mode, diagnose --netns).
//
// Namespaces are found from <procfs>/<pid>/ns/net (every process, so this
// needs hostPID in a DaemonSet) and from the files of a runtime directory
// such as /var/run/netns (named namespaces that may hold no process),
// deduplicated by inode. A pod's UID is read from the cgroup path of a
// process in the namespace, which kubelet names after it for every runtime
// and cgroup driver; no Kubernetes API is used.
//
// Thread-safety: discovery reads the filesystem only. Entering a namespace
// moves the calling thread alone (setns), so a thread that enters one must
// return before it does anything else.
#pragma once

#include <cstdint>
#include <optional>
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

// The inode of the calling thread's network namespace (its `net:[N]`).
std::optional<uint64_t> CurrentNetnsInode();

// A network namespace file held open (the fd closes with it):
// /proc/<pid>/ns/net, /proc/thread-self/ns/net or a bind mount such as
// /var/run/netns/NAME.
class NetnsFile {
 public:
  // Status::FromErrno(errno, "open <path>") on failure.
  static Result<NetnsFile> Open(std::string path);
  NetnsFile(NetnsFile&& other) noexcept;
  NetnsFile& operator=(NetnsFile&& other) noexcept;
  ~NetnsFile();

  // Moves the calling thread into this namespace (setns(CLONE_NEWNET)).
  // Status::FromErrno(errno, "setns <path>") on failure: Permission without
  // CAP_SYS_ADMIN; err() EINVAL when the file is not a network namespace.
  Status Enter() const;
  const std::string& path() const { return path_; }

 private:
  NetnsFile(int fd, std::string path) : fd_(fd), path_(std::move(path)) {}
  int fd_ = -1;
  std::string path_;
};

// The calling thread inside another network namespace until Return(), or
// the destructor (which cannot report a failure), moves it back home.
class ScopedNetns {
 public:
  // Enters `target`; `home` is where to return (borrowed, must outlive
  // this). On failure the thread has not moved.
  static Result<ScopedNetns> Enter(const NetnsFile& target, const NetnsFile& home);
  ScopedNetns(ScopedNetns&& other) noexcept : home_(other.home_) { other.home_ = nullptr; }
  ScopedNetns& operator=(ScopedNetns&&) = delete;
  ~ScopedNetns();

  // Moves the thread back home; a failure leaves it where it is.
  Status Return();

 private:
  explicit ScopedNetns(const NetnsFile* home) : home_(home) {}
  const NetnsFile* home_;  // Null once returned.
};

}  // namespace sockdiag
