#include "source/procfs.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <charconv>

namespace sockdiag {
namespace {

constexpr size_t kMaxFileSize = 4u << 20;

bool IsSpace(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r'; }

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

Result<std::vector<long long>> ParseInts(std::string_view text) {
  std::vector<long long> out;
  size_t i = 0;
  while (i < text.size()) {
    if (IsSpace(text[i])) {
      ++i;
      continue;
    }
    long long v = 0;
    auto [ptr, ec] = std::from_chars(text.data() + i, text.data() + text.size(), v);
    if (ec != std::errc() || (ptr != text.data() + text.size() && !IsSpace(*ptr))) {
      return Status::Corruption("not an integer list: \"" + std::string(text.substr(0, 64)) + "\"");
    }
    out.push_back(v);
    i = static_cast<size_t>(ptr - text.data());
  }
  if (out.empty()) return Status::Corruption("empty value where integers were expected");
  return out;
}

Result<std::vector<PortRange>> ParsePortRanges(std::string_view text) {
  std::vector<PortRange> out;
  while (!text.empty() && IsSpace(text.back())) text.remove_suffix(1);
  while (!text.empty() && IsSpace(text.front())) text.remove_prefix(1);
  if (text.empty()) return out;
  size_t start = 0;
  while (start <= text.size()) {
    size_t comma = text.find(',', start);
    if (comma == std::string_view::npos) comma = text.size();
    std::string_view item = text.substr(start, comma - start);
    uint32_t first = 0, last = 0;
    const char* b = item.data();
    const char* e = item.data() + item.size();
    auto r1 = std::from_chars(b, e, first);
    if (r1.ec != std::errc()) return Status::Corruption("bad port list item: " + std::string(item));
    last = first;
    if (r1.ptr != e) {
      if (*r1.ptr != '-') return Status::Corruption("bad port list item: " + std::string(item));
      auto r2 = std::from_chars(r1.ptr + 1, e, last);
      if (r2.ec != std::errc() || r2.ptr != e) {
        return Status::Corruption("bad port list item: " + std::string(item));
      }
    }
    if (first > 65535 || last > 65535 || first > last) {
      return Status::Corruption("bad port range: " + std::string(item));
    }
    out.push_back({first, last});
    start = comma + 1;
  }
  return out;
}

}  // namespace sockdiag
