// Support for kernel integration tests: a private network namespace per
// test, real TCP populations on loopback, the real exporter binary as a
// child process, and an HTTP scrape parsed into samples (the framework-free
// parts, shared with bench/, are in tests/support/).
//
// Everything is torn down with the test process: sockets close, the child
// is killed, and the namespace disappears with its last user. Loops are
// bounded by counts and deadlines.
#pragma once

#include <netinet/in.h>
#include <sys/types.h>

#include <chrono>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "support/exposition.h"
#include "support/http.h"
#include "support/process.h"
#include "support/system.h"

namespace sockdiag::testing {

// Moves the calling thread into a fresh network namespace with "lo" up and
// raises RLIMIT_NOFILE. Children and threads created afterwards inherit it.
// Aborts the test (FAIL) when not root.
void EnterFreshNetns();

// Writes a sysctl in the current namespace ("net.ipv4.tcp_tw_reuse", "0");
// fails the test when it cannot.
void WriteSysctl(const std::string& dotted, const std::string& value);

// A file descriptor closed on destruction.
class Fd {
 public:
  Fd() = default;
  explicit Fd(int fd) : fd_(fd) {}
  Fd(Fd&& o) noexcept : fd_(o.release()) {}
  Fd& operator=(Fd&& o) noexcept;
  ~Fd();
  int get() const { return fd_; }
  int release() {
    int f = fd_;
    fd_ = -1;
    return f;
  }
  void reset();

 private:
  int fd_ = -1;
};

// "127.0.0.2" or "::1" plus a port, as a sockaddr.
struct Endpoint {
  std::string host;
  uint16_t port = 0;
};

// A listening TCP socket. backlog as given to listen().
Fd Listen(const Endpoint& at, int backlog = 4096);
// Local port of a bound socket.
uint16_t LocalPort(int fd);
// connect() to `to`, optionally binding the source address first (port 0).
Fd Connect(const Endpoint& to, const std::string& from_host = "");
// accept() one connection (blocking, 5 s timeout via poll).
Fd Accept(int listener);

// Shapes of connections, made on loopback; each returns the fds it keeps.
struct Pair {
  Fd client;
  Fd server;
};
// n ESTABLISHED pairs (both ends kept open).
std::vector<Pair> MakeEstablished(int listener, const Endpoint& to, int n,
                                  const std::string& from_host = "");
// n connections where the client closed and the server never does: the
// server end sits in CLOSE_WAIT (kept open), the client end in FIN_WAIT2.
std::vector<Fd> MakeCloseWait(int listener, const Endpoint& to, int n,
                              const std::string& from_host = "");
// n connections closed by the client first, then the server: the client
// end ends in TIME_WAIT for 60 s, nothing else remains.
void MakeClientTimeWait(int listener, const Endpoint& to, int n,
                        const std::string& from_host = "");
// n connections closed by the server first: the server end (local port =
// listener's) ends in TIME_WAIT.
void MakeServerTimeWait(int listener, const Endpoint& to, int n,
                        const std::string& from_host = "");

// Counts sockets in the current namespace by running `ss -Htan state X`
// (an independent reference for assertions).
int SsCount(const std::string& state_filter, const std::string& extra = "");

// How ExporterProcess starts the binary.
struct Launch {
  // Run before it: {"setpriv", ..., "--"}, or capsh's {"capsh", "--drop=...",
  // "--"} (with via_shell: capsh hands the rest to bash, so the exporter is
  // started as `-c 'exec "$0" "$@"' BIN ARGS...` and replaces bash).
  std::vector<std::string> prefix;
  bool via_shell = false;
};

// The real sockdiag_exporter, started in the current namespace on
// 127.0.0.1:<port> with the given extra flags; killed on destruction.
class ExporterProcess {
 public:
  // `wrapper`: a capsh prefix, e.g. {"capsh", "--drop=cap_net_admin", "--"}.
  explicit ExporterProcess(std::vector<std::string> flags, uint16_t port = 10061,
                           std::vector<std::string> wrapper = {});
  ExporterProcess(std::vector<std::string> flags, Launch launch, uint16_t port = 10061);
  ~ExporterProcess();
  ExporterProcess(const ExporterProcess&) = delete;
  ExporterProcess& operator=(const ExporterProcess&) = delete;

  uint16_t port() const { return port_; }
  pid_t pid() const { return child_.pid(); }
  // Waits (up to 10 s) until /-/ready answers 200.
  bool WaitReady();
  // One scrape; fails the test unless it is HTTP 200 with a valid exposition.
  Scrape ScrapeMetrics();
  // Scrapes until `pred` holds or the deadline passes; returns the last scrape.
  Scrape ScrapeUntil(const std::function<bool(const Scrape&)>& pred,
                     std::chrono::milliseconds deadline = std::chrono::seconds(10));
  // Sends SIGTERM and waits; returns the exit status (or -1 on timeout).
  int Terminate(std::chrono::milliseconds deadline = std::chrono::seconds(5));
  // Waits for it to exit on its own; the exit status, or -1 on timeout.
  int Wait(std::chrono::milliseconds deadline);
  // What the process wrote to stderr so far.
  std::string Stderr() const;

 private:
  uint16_t port_;
  std::string stderr_path_;
  ChildProcess child_;
};

// Runs the exporter binary with args to completion; returns exit code and
// stderr (for flag tests).
struct RunResult {
  int exit_code = -1;
  std::string out;
  std::string err;
};
RunResult RunExporter(const std::vector<std::string>& args,
                      std::chrono::milliseconds deadline = std::chrono::seconds(10));

// A named network namespace ("ip netns add sdtest-TAG-PID", lo up), deleted
// on destruction or by Delete().
class NamedNetns {
 public:
  explicit NamedNetns(const std::string& tag);
  ~NamedNetns() { Delete(); }
  NamedNetns(const NamedNetns&) = delete;
  NamedNetns& operator=(const NamedNetns&) = delete;

  void Delete();
  std::string path() const { return "/var/run/netns/" + name_; }
  // The namespace's inode in decimal: its `netns` label in pods mode.
  const std::string& inode() const { return inode_; }
  // Runs fn with the calling thread inside the namespace: sockets it
  // creates belong there and stay there.
  void Run(const std::function<void()>& fn);

 private:
  std::string name_;
  std::string inode_;
};

}  // namespace sockdiag::testing
