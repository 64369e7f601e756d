#include "kernel/kernel_support.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <net/if.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <sys/ioctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <sstream>
#include <thread>

namespace sockdiag::testing {
namespace {

sockaddr_storage ToSockaddr(const Endpoint& e, socklen_t* len) {
  sockaddr_storage ss{};
  if (e.host.find(':') != std::string::npos) {
    auto* a = reinterpret_cast<sockaddr_in6*>(&ss);
    a->sin6_family = AF_INET6;
    a->sin6_port = htons(e.port);
    REQUIRE(inet_pton(AF_INET6, e.host.c_str(), &a->sin6_addr) == 1);
    *len = sizeof(sockaddr_in6);
  } else {
    auto* a = reinterpret_cast<sockaddr_in*>(&ss);
    a->sin_family = AF_INET;
    a->sin_port = htons(e.port);
    REQUIRE(inet_pton(AF_INET, e.host.c_str(), &a->sin_addr) == 1);
    *len = sizeof(sockaddr_in);
  }
  return ss;
}

int FamilyOf(const std::string& host) { return host.find(':') != std::string::npos ? AF_INET6 : AF_INET; }

}  // namespace

void EnterFreshNetns() {
  if (geteuid() != 0) FAIL("kernel tests need root (unshare CLONE_NEWNET)");
  REQUIRE(unshare(CLONE_NEWNET) == 0);
  int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  REQUIRE(fd >= 0);
  struct ifreq ifr {};
  std::strncpy(ifr.ifr_name, "lo", IFNAMSIZ - 1);
  REQUIRE(ioctl(fd, SIOCGIFFLAGS, &ifr) == 0);
  ifr.ifr_flags = static_cast<short>(ifr.ifr_flags | IFF_UP);
  REQUIRE(ioctl(fd, SIOCSIFFLAGS, &ifr) == 0);
  close(fd);
  struct rlimit rl {
    1 << 20, 1 << 20
  };
  if (setrlimit(RLIMIT_NOFILE, &rl) != 0) {
    rl = {65536, 65536};
    setrlimit(RLIMIT_NOFILE, &rl);
  }
}

void WriteSysctl(const std::string& dotted, const std::string& value) {
  const std::string error = SetSysctl(dotted, value);
  INFO(error);
  REQUIRE(error.empty());
}
Fd& Fd::operator=(Fd&& o) noexcept {
  if (this != &o) {
    reset();
    fd_ = o.release();
  }
  return *this;
}
Fd::~Fd() { reset(); }
void Fd::reset() {
  if (fd_ >= 0) close(fd_);
  fd_ = -1;
}

Fd Listen(const Endpoint& at, int backlog) {
  Fd fd(socket(FamilyOf(at.host), SOCK_STREAM | SOCK_CLOEXEC, 0));
  REQUIRE(fd.get() >= 0);
  int one = 1;
  setsockopt(fd.get(), SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
  socklen_t len;
  auto ss = ToSockaddr(at, &len);
  INFO("bind " << at.host << ":" << at.port << ": " << std::strerror(errno));
  REQUIRE(bind(fd.get(), reinterpret_cast<sockaddr*>(&ss), len) == 0);
  REQUIRE(listen(fd.get(), backlog) == 0);
  return fd;
}

uint16_t LocalPort(int fd) {
  sockaddr_storage ss{};
  socklen_t len = sizeof(ss);
  REQUIRE(getsockname(fd, reinterpret_cast<sockaddr*>(&ss), &len) == 0);
  if (ss.ss_family == AF_INET6) return ntohs(reinterpret_cast<sockaddr_in6*>(&ss)->sin6_port);
  return ntohs(reinterpret_cast<sockaddr_in*>(&ss)->sin_port);
}

Fd Connect(const Endpoint& to, const std::string& from_host) {
  Fd fd(socket(FamilyOf(to.host), SOCK_STREAM | SOCK_CLOEXEC, 0));
  REQUIRE(fd.get() >= 0);
  if (!from_host.empty()) {
    int one = 1;
    // Let connect() pick the port per destination, as a plain connect does.
    setsockopt(fd.get(), IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, &one, sizeof(one));
    socklen_t len;
    auto ss = ToSockaddr({from_host, 0}, &len);
    REQUIRE(bind(fd.get(), reinterpret_cast<sockaddr*>(&ss), len) == 0);
  }
  socklen_t len;
  auto ss = ToSockaddr(to, &len);
  int rc = connect(fd.get(), reinterpret_cast<sockaddr*>(&ss), len);
  INFO("connect " << to.host << ":" << to.port << ": " << std::strerror(errno));
  REQUIRE(rc == 0);
  return fd;
}

Fd Accept(int listener) {
  pollfd p{listener, POLLIN, 0};
  REQUIRE(poll(&p, 1, 5000) == 1);
  Fd fd(accept4(listener, nullptr, nullptr, SOCK_CLOEXEC));
  REQUIRE(fd.get() >= 0);
  return fd;
}

std::vector<Pair> MakeEstablished(int listener, const Endpoint& to, int n,
                                  const std::string& from_host) {
  std::vector<Pair> out;
  out.reserve(static_cast<size_t>(n));
  for (int i = 0; i < n; ++i) {
    Pair p;
    p.client = Connect(to, from_host);
    p.server = Accept(listener);
    out.push_back(std::move(p));
  }
  return out;
}

std::vector<Fd> MakeCloseWait(int listener, const Endpoint& to, int n,
                              const std::string& from_host) {
  std::vector<Fd> servers;
  for (int i = 0; i < n; ++i) {
    Fd c = Connect(to, from_host);
    servers.push_back(Accept(listener));
    c.reset();  // FIN from the client; the server never closes.
  }
  return servers;
}

namespace {

// n connections; the side that closes first owns TIME_WAIT. Waits for the
// FIN to reach the other side (read returns 0) before closing it.
void MakeTimeWait(int listener, const Endpoint& to, int n, const std::string& from_host,
                  bool client_first) {
  for (int i = 0; i < n; ++i) {
    Fd c = Connect(to, from_host);
    Fd s = Accept(listener);
    Fd& first = client_first ? c : s;
    Fd& second = client_first ? s : c;
    first.reset();
    pollfd p{second.get(), POLLIN, 0};
    REQUIRE(poll(&p, 1, 5000) == 1);
    char b;
    REQUIRE(read(second.get(), &b, 1) == 0);
    second.reset();
  }
}

}  // namespace

void MakeClientTimeWait(int listener, const Endpoint& to, int n, const std::string& from_host) {
  MakeTimeWait(listener, to, n, from_host, /*client_first=*/true);
}

void MakeServerTimeWait(int listener, const Endpoint& to, int n, const std::string& from_host) {
  MakeTimeWait(listener, to, n, from_host, /*client_first=*/false);
}

int SsCount(const std::string& state_filter, const std::string& extra) {
  std::string cmd = "ss -Htan state " + state_filter + " " + extra + " 2>/dev/null | wc -l";
  FILE* f = popen(cmd.c_str(), "r");
  REQUIRE(f != nullptr);
  int n = -1;
  if (fscanf(f, "%d", &n) != 1) n = -1;
  pclose(f);
  return n;
}

ExporterProcess::ExporterProcess(std::vector<std::string> flags, uint16_t port,
                                 std::vector<std::string> wrapper)
    : ExporterProcess(std::move(flags), Launch{std::move(wrapper), true}, port) {}

ExporterProcess::ExporterProcess(std::vector<std::string> flags, Launch launch, uint16_t port)
    : port_(port) {
  char tmpl[] = "/tmp/sockdiag-exporter-stderr-XXXXXX";
  const int fd = mkstemp(tmpl);
  REQUIRE(fd >= 0);
  close(fd);
  stderr_path_ = tmpl;
  std::vector<std::string> args = std::move(launch.prefix);
  if (launch.via_shell && !args.empty()) {
    args.push_back("-c");
    args.push_back("exec \"$0\" \"$@\"");
  }
  args.push_back(SOCKDIAG_EXPORTER_BIN);
  args.push_back("--web.listen-address=127.0.0.1:" + std::to_string(port));
  args.insert(args.end(), flags.begin(), flags.end());
  SpawnOptions options;
  options.output = stderr_path_;
  child_ = ChildProcess(args, options);
  REQUIRE(child_.pid() > 0);
}

ExporterProcess::~ExporterProcess() {
  child_ = ChildProcess();  // Killed and reaped before its log goes.
  if (!stderr_path_.empty()) unlink(stderr_path_.c_str());
}

bool ExporterProcess::WaitReady() {
  return WaitUntil([&] { return HttpGet(port_, "/-/ready").status == 200; });
}

Scrape ExporterProcess::ScrapeMetrics() {
  HttpResponse r = HttpGet(port_, "/metrics");
  INFO("exporter stderr:\n" << Stderr());
  INFO(r.error);
  REQUIRE(r.status == 200);
  std::string error;
  Scrape s = Scrape::Parse(r.body, &error);
  INFO(error);
  REQUIRE(error.empty());
  return s;
}

Scrape ExporterProcess::ScrapeUntil(const std::function<bool(const Scrape&)>& pred,
                                    std::chrono::milliseconds deadline) {
  Scrape last;
  WaitUntil(
      [&] {
        HttpResponse r = HttpGet(port_, "/metrics");
        if (r.status != 200) return false;
        last = Scrape::Parse(r.body);
        return pred(last);
      },
      deadline);
  return last;
}

int ExporterProcess::Terminate(std::chrono::milliseconds deadline) {
  return child_.Terminate(deadline);
}

int ExporterProcess::Wait(std::chrono::milliseconds deadline) { return child_.Wait(deadline); }

std::string ExporterProcess::Stderr() const { return ReadFile(stderr_path_); }

RunResult RunExporter(const std::vector<std::string>& args, std::chrono::milliseconds deadline) {
  char out_t[] = "/tmp/sockdiag-run-out-XXXXXX";
  char err_t[] = "/tmp/sockdiag-run-err-XXXXXX";
  const int outfd = mkstemp(out_t), errfd = mkstemp(err_t);
  REQUIRE(outfd >= 0);
  REQUIRE(errfd >= 0);
  close(outfd);
  close(errfd);
  std::vector<std::string> full = {SOCKDIAG_EXPORTER_BIN};
  full.insert(full.end(), args.begin(), args.end());
  RunResult r;
  {
    SpawnOptions options;
    options.output = out_t;
    options.error_output = err_t;
    ChildProcess child(full, options);
    REQUIRE(child.pid() > 0);
    r.exit_code = child.Wait(deadline);  // -1, and killed, past the deadline.
  }
  r.out = ReadFile(out_t);
  r.err = ReadFile(err_t);
  unlink(out_t);
  unlink(err_t);
  return r;
}

NamedNetns::NamedNetns(const std::string& tag)
    : name_("sdtest-" + tag + "-" + std::to_string(getpid())) {
  (void)std::system(("ip netns del " + name_ + " 2>/dev/null").c_str());  // A stale one.
  REQUIRE(std::system(("ip netns add " + name_).c_str()) == 0);
  REQUIRE(std::system(("ip -n " + name_ + " link set lo up").c_str()) == 0);
  struct stat st;
  REQUIRE(stat(path().c_str(), &st) == 0);
  inode_ = std::to_string(st.st_ino);
}

void NamedNetns::Delete() {
  if (!name_.empty()) (void)std::system(("ip netns del " + name_ + " 2>/dev/null").c_str());
  name_.clear();
}

void NamedNetns::Run(const std::function<void()>& fn) {
  const int self = open("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC);
  const int target = open(path().c_str(), O_RDONLY | O_CLOEXEC);
  REQUIRE(self >= 0);
  REQUIRE(target >= 0);
  REQUIRE(setns(target, CLONE_NEWNET) == 0);
  fn();
  REQUIRE(setns(self, CLONE_NEWNET) == 0);
  close(target);
  close(self);
}

}  // namespace sockdiag::testing
