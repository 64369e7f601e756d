#include "source/netns.h"

#include <dirent.h>
#include <fcntl.h>
#include <sched.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <map>

#include "proc/proc_parsers.h"

namespace sockdiag {
namespace {

bool StatInode(const std::string& path, uint64_t* inode) {
  struct stat st;
  if (stat(path.c_str(), &st) != 0) return false;
  *inode = st.st_ino;
  return true;
}

}  // namespace

NetnsDiscovery DiscoverNetns(const ProcFs& procfs, const std::string& run_dir, bool include_host,
                             size_t max) {
  struct Found {
    NetnsTarget target;
    bool has_pid = false;
  };
  std::map<uint64_t, Found> found;
  // The host's namespace is pid 1's. Where pid 1 is not inspectable
  // (ptrace restrictions), fall back to our own, which under hostNetwork is
  // the host's.
  uint64_t host_inode = 0;
  const bool have_host = StatInode(procfs.Path("1/ns/net"), &host_inode) ||
                         StatInode(procfs.Path("self/ns/net"), &host_inode);

  if (DIR* d = opendir(procfs.root().c_str())) {
    while (struct dirent* e = readdir(d)) {
      const std::string name = e->d_name;
      if (name.empty() || !std::all_of(name.begin(), name.end(), ::isdigit)) continue;
      uint64_t inode = 0;
      const std::string ns_path = procfs.Path(name + "/ns/net");
      if (!StatInode(ns_path, &inode)) continue;  // Gone, or no permission.
      auto& f = found[inode];
      // Keep the lowest pid: usually the pod's sandbox (pause) process.
      if (f.has_pid && std::stoull(f.target.net_dir) <= std::stoull(name)) continue;
      f.has_pid = true;
      f.target.inode = inode;
      f.target.ns_path = ns_path;
      f.target.net_dir = name + "/net";
    }
    closedir(d);
  }
  if (!run_dir.empty()) {
    if (DIR* d = opendir(run_dir.c_str())) {
      while (struct dirent* e = readdir(d)) {
        const std::string name = e->d_name;
        if (name == "." || name == "..") continue;
        uint64_t inode = 0;
        const std::string path = run_dir + "/" + name;
        if (!StatInode(path, &inode)) continue;
        auto& f = found[inode];
        if (f.target.inode != 0) continue;
        f.target.inode = inode;
        f.target.ns_path = path;
      }
      closedir(d);
    }
  }

  NetnsDiscovery out;
  for (auto& [inode, f] : found) {
    NetnsTarget t = std::move(f.target);
    const bool is_host = have_host && inode == host_inode;
    if (is_host && !include_host) continue;
    t.label = is_host ? "host" : std::to_string(inode);
    if (!is_host && !t.net_dir.empty()) {
      const std::string pid = t.net_dir.substr(0, t.net_dir.find('/'));
      auto cgroup = procfs.ReadFile(pid + "/cgroup");
      if (cgroup.ok()) {
        if (auto uid = ParsePodUid(cgroup.value())) t.pod_uid = *uid;
      }
    }
    out.targets.push_back(std::move(t));
  }
  // Host first, then by inode (std::map order).
  std::stable_partition(out.targets.begin(), out.targets.end(),
                        [](const NetnsTarget& t) { return t.label == "host"; });
  if (out.targets.size() > max) {
    out.skipped = out.targets.size() - max;
    out.targets.resize(max);
  }
  return out;
}

std::optional<uint64_t> CurrentNetnsInode() {
  uint64_t inode = 0;
  if (!StatInode("/proc/thread-self/ns/net", &inode)) return std::nullopt;
  return inode;
}

Result<NetnsFile> NetnsFile::Open(std::string path) {
  const int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return Status::FromErrno(errno, "open " + path);
  return NetnsFile(fd, std::move(path));
}

NetnsFile::NetnsFile(NetnsFile&& other) noexcept
    : fd_(other.fd_), path_(std::move(other.path_)) {
  other.fd_ = -1;
}

NetnsFile& NetnsFile::operator=(NetnsFile&& other) noexcept {
  if (this != &other) {
    if (fd_ >= 0) close(fd_);
    fd_ = other.fd_;
    path_ = std::move(other.path_);
    other.fd_ = -1;
  }
  return *this;
}

NetnsFile::~NetnsFile() {
  if (fd_ >= 0) close(fd_);
}

Status NetnsFile::Enter() const {
  if (setns(fd_, CLONE_NEWNET) != 0) return Status::FromErrno(errno, "setns " + path_);
  return Status::Ok();
}

Result<ScopedNetns> ScopedNetns::Enter(const NetnsFile& target, const NetnsFile& home) {
  Status s = target.Enter();
  if (!s.ok()) return s;
  return ScopedNetns(&home);
}

ScopedNetns::~ScopedNetns() { (void)Return(); }

Status ScopedNetns::Return() {
  if (home_ == nullptr) return Status::Ok();
  Status s = home_->Enter();
  if (s.ok()) home_ = nullptr;
  return s;
}

}  // namespace sockdiag
