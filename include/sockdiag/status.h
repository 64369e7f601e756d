// Status: the result of an operation that can fail, with an errno and context.
//
// Modelled on leveldb's Status: success is cheap (no allocation), an error
// carries a code, the errno that caused it (0 when none) and a message that
// names what was being done ("open /proc/sys/net/ipv4/tcp_tw_reuse"). Functions
// return it; the caller decides what is fatal. Result<T> pairs a value with it.
//
// Thread-safety: a Status is a value; distinct objects may be used from
// different threads without synchronisation.
#pragma once

#include <string>
#include <string_view>
#include <utility>
#include <variant>

namespace sockdiag {

class Status {
 public:
  enum class Code {
    kOk = 0,
    kNotFound,         // ENOENT: a file, module or kernel feature is absent.
    kPermission,       // EPERM/EACCES: a capability is missing.
    kInvalidArgument,  // Bad user input (flags, config).
    kCorruption,       // Bytes from the kernel or a file that do not parse.
    kUnsupported,      // The kernel does not know the request (EOPNOTSUPP, EPROTONOSUPPORT...).
    kIOError,          // Any other system error.
  };

  Status() = default;

  static Status Ok() { return Status(); }
  static Status NotFound(std::string_view context, int err = 0) {
    return Status(Code::kNotFound, err, context);
  }
  static Status Permission(std::string_view context, int err = 0) {
    return Status(Code::kPermission, err, context);
  }
  static Status InvalidArgument(std::string_view context) {
    return Status(Code::kInvalidArgument, 0, context);
  }
  static Status Corruption(std::string_view context) {
    return Status(Code::kCorruption, 0, context);
  }
  static Status Unsupported(std::string_view context, int err = 0) {
    return Status(Code::kUnsupported, err, context);
  }
  static Status IOError(std::string_view context, int err = 0) {
    return Status(Code::kIOError, err, context);
  }
  // Maps an errno to the matching code: ENOENT -> NotFound, EPERM/EACCES ->
  // Permission, EOPNOTSUPP/EPROTONOSUPPORT/EAFNOSUPPORT -> Unsupported, else IOError.
  static Status FromErrno(int err, std::string_view context);

  bool ok() const { return code_ == Code::kOk; }
  Code code() const { return code_; }
  int err() const { return errno_; }
  const std::string& context() const { return context_; }

  bool IsNotFound() const { return code_ == Code::kNotFound; }
  bool IsPermission() const { return code_ == Code::kPermission; }
  bool IsUnsupported() const { return code_ == Code::kUnsupported; }

  // "context: strerror(errno)" or "context", or "OK".
  std::string ToString() const;

  // Returns a copy whose context is "prefix: <old context>".
  Status WithPrefix(std::string_view prefix) const;

 private:
  Status(Code code, int err, std::string_view context)
      : code_(code), errno_(err), context_(context) {}

  Code code_ = Code::kOk;
  int errno_ = 0;
  std::string context_;
};

// A value or a non-OK Status.
template <typename T>
class Result {
 public:
  Result(T value) : v_(std::move(value)) {}        // NOLINT: implicit by design.
  Result(Status status) : v_(std::move(status)) {}  // NOLINT: implicit by design.

  bool ok() const { return std::holds_alternative<T>(v_); }
  // REQUIRES: ok().
  const T& value() const& { return std::get<T>(v_); }
  T& value() & { return std::get<T>(v_); }
  T&& value() && { return std::get<T>(std::move(v_)); }
  // Returns OK when a value is held.
  Status status() const { return ok() ? Status::Ok() : std::get<Status>(v_); }

 private:
  std::variant<T, Status> v_;
};

}  // namespace sockdiag
