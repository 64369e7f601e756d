// Test and bench support, part of tests/support (no test framework, so
// bench/ links it too): child processes.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <string>
#include <vector>

namespace sockdiag::testing {

struct SpawnOptions {
  // Where stdout and stderr go, a file created or truncated; "" = /dev/null.
  std::string output;
  // RLIMIT_NOFILE (soft and hard) of the child, when > 0.
  long nofile = 0;
  // The child is killed when the process that spawned it dies.
  bool die_with_parent = false;
  // When set, stderr goes to this file instead of `output`.
  std::string error_output;
};

// A child running `argv` (argv[0] a path, or a name looked up in PATH) with
// stdin from /dev/null; killed (SIGKILL) and reaped on destruction unless it
// was waited for.
class ChildProcess {
 public:
  ChildProcess() = default;
  explicit ChildProcess(std::vector<std::string> argv, const SpawnOptions& options = {});
  ChildProcess(ChildProcess&& other) noexcept : pid_(other.pid_) { other.pid_ = -1; }
  ChildProcess& operator=(ChildProcess&& other) noexcept;
  ~ChildProcess();

  // -1 when fork failed or once the child was reaped.
  pid_t pid() const { return pid_; }
  // Waits up to `deadline` for the child to exit: its exit status (128 +
  // signal when killed by one), or -1 when it is still running.
  int Wait(std::chrono::milliseconds deadline);
  // SIGTERM, then Wait().
  int Terminate(std::chrono::milliseconds deadline);

 private:
  pid_t pid_ = -1;
};

// The whole content of a file ("" when unreadable).
std::string ReadFile(const std::string& path);

}  // namespace sockdiag::testing
