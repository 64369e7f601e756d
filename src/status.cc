#include "sockdiag/status.h"

#include <cerrno>
#include <cstring>

namespace sockdiag {

Status Status::FromErrno(int err, std::string_view context) {
  switch (err) {
    case ENOENT:
      return NotFound(context, err);
    case EPERM:
    case EACCES:
      return Permission(context, err);
    case EOPNOTSUPP:
    case EPROTONOSUPPORT:
    case EAFNOSUPPORT:
      return Unsupported(context, err);
    default:
      return IOError(context, err);
  }
}

std::string Status::ToString() const {
  if (ok()) return "OK";
  std::string out = context_;
  if (errno_ != 0) {
    out += ": ";
    out += std::strerror(errno_);
  }
  return out;
}

Status Status::WithPrefix(std::string_view prefix) const {
  if (ok()) return *this;
  Status copy = *this;
  copy.context_ = std::string(prefix) + ": " + context_;
  return copy;
}

}  // namespace sockdiag
