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

std::string ReadAll(const std::string& path) {
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

std::string Unescape(const std::string& v) {
  std::string out;
  for (size_t i = 0; i < v.size(); ++i) {
    if (v[i] == '\\' && i + 1 < v.size()) {
      ++i;
      out += v[i] == 'n' ? '\n' : v[i];
    } else {
      out += v[i];
    }
  }
  return out;
}

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
  std::string path = "/proc/sys/";
  for (char c : dotted) path += (c == '.') ? '/' : c;
  std::ofstream out(path);
  REQUIRE(out.good());
  out << value << "\n";
  out.close();
  INFO("writing " << path);
  REQUIRE(!out.fail());
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

Scrape Scrape::Parse(const std::string& text) {
  Scrape s;
  s.text_ = text;
  std::istringstream in(text);
  std::string line;
  while (std::getline(in, line)) {
    if (line.empty() || line[0] == '#') continue;
    std::string name;
    std::map<std::string, std::string> labels;
    size_t i = 0;
    while (i < line.size() && line[i] != '{' && line[i] != ' ') name += line[i++];
    if (i < line.size() && line[i] == '{') {
      ++i;
      while (i < line.size() && line[i] != '}') {
        size_t eq = line.find('=', i);
        std::string key = line.substr(i, eq - i);
        size_t q = eq + 2;  // after ="
        std::string raw;
        while (q < line.size() && line[q] != '"') {
          if (line[q] == '\\' && q + 1 < line.size()) raw += line[q++];
          raw += line[q++];
        }
        labels[key] = Unescape(raw);
        i = q + 1;
        if (i < line.size() && line[i] == ',') ++i;
      }
      ++i;
    }
    while (i < line.size() && line[i] == ' ') ++i;
    double v = std::strtod(line.c_str() + i, nullptr);
    s.samples_.emplace(name, std::make_pair(labels, v));
  }
  return s;
}

std::optional<double> Scrape::Get(const std::string& name,
                                  const std::map<std::string, std::string>& labels) const {
  auto range = samples_.equal_range(name);
  for (auto it = range.first; it != range.second; ++it) {
    if (it->second.first == labels) return it->second.second;
  }
  return std::nullopt;
}

double Scrape::Value(const std::string& name,
                     const std::map<std::string, std::string>& labels) const {
  auto v = Get(name, labels);
  return v ? *v : -1;
}

std::vector<std::pair<std::map<std::string, std::string>, double>> Scrape::All(
    const std::string& name) const {
  std::vector<std::pair<std::map<std::string, std::string>, double>> out;
  auto range = samples_.equal_range(name);
  for (auto it = range.first; it != range.second; ++it) out.push_back(it->second);
  return out;
}

double Scrape::Sum(const std::string& name) const {
  double sum = 0;
  for (const auto& [labels, v] : All(name)) sum += v;
  return sum;
}

HttpResponse HttpGet(uint16_t port, const std::string& path, const std::string& method) {
  HttpResponse r;
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return r;
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(port);
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  timeval tv{10, 0};
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
  if (connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof(a)) != 0) {
    close(fd);
    return r;
  }
  std::string req = method + " " + path + " HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n";
  if (write(fd, req.data(), req.size()) != static_cast<ssize_t>(req.size())) {
    close(fd);
    return r;
  }
  std::string resp;
  char buf[65536];
  for (;;) {
    ssize_t n = read(fd, buf, sizeof(buf));
    if (n <= 0) break;
    resp.append(buf, static_cast<size_t>(n));
  }
  // Abort instead of closing: the RST also kills the server's FIN_WAIT2, so
  // scrapes leave no TIME_WAIT behind to pollute the counts under test.
  linger lg{1, 0};
  setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
  close(fd);
  if (resp.rfind("HTTP/1.", 0) != 0 || resp.size() < 12) return r;
  r.status = std::atoi(resp.c_str() + 9);
  size_t body = resp.find("\r\n\r\n");
  if (body != std::string::npos) r.body = resp.substr(body + 4);
  return r;
}

ExporterProcess::ExporterProcess(std::vector<std::string> flags, uint16_t port,
                                 std::vector<std::string> wrapper)
    : port_(port) {
  char tmpl[] = "/tmp/sockdiag-exporter-stderr-XXXXXX";
  int errfd = mkstemp(tmpl);
  REQUIRE(errfd >= 0);
  stderr_path_ = tmpl;
  std::vector<std::string> args = {SOCKDIAG_EXPORTER_BIN,
                                   "--web.listen-address=127.0.0.1:" + std::to_string(port)};
  args.insert(args.end(), flags.begin(), flags.end());
  if (!wrapper.empty()) {
    // capsh's "--" hands the rest to bash: "-c 'exec "$0" "$@"' BIN ARGS...",
    // so the exporter replaces bash and pid() is the exporter's.
    std::vector<std::string> full = wrapper;
    full.push_back("-c");
    full.push_back("exec \"$0\" \"$@\"");
    full.insert(full.end(), args.begin(), args.end());
    args = full;
  }
  pid_ = fork();
  REQUIRE(pid_ >= 0);
  if (pid_ == 0) {
    dup2(errfd, 2);
    int devnull = open("/dev/null", O_RDWR);
    dup2(devnull, 0);
    dup2(devnull, 1);
    std::vector<char*> argv;
    for (auto& a : args) argv.push_back(a.data());
    argv.push_back(nullptr);
    execvp(argv[0], argv.data());
    _exit(127);
  }
  close(errfd);
}

ExporterProcess::~ExporterProcess() {
  if (pid_ > 0) {
    kill(pid_, SIGKILL);
    waitpid(pid_, nullptr, 0);
  }
  if (!stderr_path_.empty()) unlink(stderr_path_.c_str());
}

bool ExporterProcess::WaitReady() {
  return WaitUntil([&] { return HttpGet(port_, "/-/ready").status == 200; });
}

Scrape ExporterProcess::ScrapeMetrics() {
  HttpResponse r = HttpGet(port_, "/metrics");
  INFO("exporter stderr:\n" << Stderr());
  REQUIRE(r.status == 200);
  return Scrape::Parse(r.body);
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
  if (pid_ <= 0) return -1;
  kill(pid_, SIGTERM);
  int status = 0;
  const auto end = std::chrono::steady_clock::now() + deadline;
  while (std::chrono::steady_clock::now() < end) {
    pid_t r = waitpid(pid_, &status, WNOHANG);
    if (r == pid_) {
      pid_ = -1;
      return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  return -1;
}

std::string ExporterProcess::Stderr() const { return ReadAll(stderr_path_); }

RunResult RunExporter(const std::vector<std::string>& args, std::chrono::milliseconds deadline) {
  char out_t[] = "/tmp/sockdiag-run-out-XXXXXX";
  char err_t[] = "/tmp/sockdiag-run-err-XXXXXX";
  int outfd = mkstemp(out_t), errfd = mkstemp(err_t);
  REQUIRE(outfd >= 0);
  REQUIRE(errfd >= 0);
  std::vector<std::string> full = {SOCKDIAG_EXPORTER_BIN};
  full.insert(full.end(), args.begin(), args.end());
  pid_t pid = fork();
  REQUIRE(pid >= 0);
  if (pid == 0) {
    dup2(outfd, 1);
    dup2(errfd, 2);
    std::vector<char*> argv;
    for (auto& a : full) argv.push_back(a.data());
    argv.push_back(nullptr);
    execv(argv[0], argv.data());
    _exit(127);
  }
  close(outfd);
  close(errfd);
  RunResult r;
  int status = 0;
  bool done = WaitUntil([&] { return waitpid(pid, &status, WNOHANG) == pid; }, deadline);
  if (!done) {
    kill(pid, SIGKILL);
    waitpid(pid, &status, 0);
  } else {
    r.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  }
  r.out = ReadAll(out_t);
  r.err = ReadAll(err_t);
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

bool WaitUntil(const std::function<bool()>& pred, std::chrono::milliseconds deadline) {
  const auto end = std::chrono::steady_clock::now() + deadline;
  for (;;) {
    if (pred()) return true;
    if (std::chrono::steady_clock::now() >= end) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
}

}  // namespace sockdiag::testing
