#include "source/procfs.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>

#include "proc/proc_parsers.h"

namespace sockdiag {
namespace {

constexpr size_t kMaxFileSize = 4u << 20;

}  // namespace

std::string ProcFs::Path(std::string_view relative) const {
  std::string path = root_;
  if (!path.empty() && path.back() != '/') path += '/';
  path += relative;
  return path;
}

Result<std::string> ProcFs::ReadFile(std::string_view relative) const {
  const std::string path = Path(relative);
  int fd;
  do {
    fd = open(path.c_str(), O_RDONLY | O_CLOEXEC);
  } while (fd < 0 && errno == EINTR);
  if (fd < 0) return Status::FromErrno(errno, "open " + path);
  std::string out;
  char buf[8192];
  for (;;) {
    ssize_t n = read(fd, buf, sizeof(buf));
    if (n < 0) {
      if (errno == EINTR) continue;
      int err = errno;
      close(fd);
      return Status::FromErrno(err, "read " + path);
    }
    if (n == 0) break;
    out.append(buf, static_cast<size_t>(n));
    if (out.size() > kMaxFileSize) {
      close(fd);
      return Status::Corruption(path + ": larger than 4 MiB");
    }
  }
  close(fd);
  return out;
}

Result<std::vector<long long>> ProcFs::ReadSysctlInts(std::string_view dotted_name) const {
  std::string relative = "sys/";
  for (char c : dotted_name) relative += (c == '.') ? '/' : c;
  auto text = ReadFile(relative);
  if (!text.ok()) return text.status();
  auto ints = ParseInts(text.value());
  if (!ints.ok()) return ints.status().WithPrefix(std::string(dotted_name));
  return ints;
}

}  // namespace sockdiag
