#include "kernel/web_support.h"

#include <crypt.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <sstream>
#include <thread>

namespace sockdiag::testing {
namespace {

std::string ReadText(const std::string& path) {
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// Single-quotes for sh.
std::string ShellQuote(const std::string& s) {
  std::string out = "'";
  for (char c : s) {
    if (c == '\'') {
      out += "'\\''";
    } else {
      out += c;
    }
  }
  return out + "'";
}

}  // namespace

bool SendAll(int fd, std::string_view data) {
  while (!data.empty()) {
    const ssize_t n = send(fd, data.data(), data.size(), MSG_NOSIGNAL);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return false;
    data.remove_prefix(static_cast<size_t>(n));
  }
  return true;
}

std::string ReadUntilClose(int fd, std::chrono::milliseconds deadline) {
  std::string out;
  const auto end = std::chrono::steady_clock::now() + deadline;
  char buf[65536];
  for (;;) {
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        end - std::chrono::steady_clock::now());
    if (left.count() <= 0) break;
    pollfd p{fd, POLLIN, 0};
    if (poll(&p, 1, static_cast<int>(left.count())) <= 0) break;
    const ssize_t n = recv(fd, buf, sizeof(buf), 0);
    if (n <= 0) break;
    out.append(buf, static_cast<size_t>(n));
  }
  return out;
}

int StatusCode(const std::string& response) {
  if (response.size() < 12 || response.compare(0, 5, "HTTP/") != 0) return 0;
  return std::atoi(response.substr(9, 3).c_str());
}

int RawRequest(uint16_t port, std::string_view request, std::string* response) {
  Fd fd = Connect({"127.0.0.1", port});
  SendAll(fd.get(), request);  // The server may answer before it read everything.
  std::string r = ReadUntilClose(fd.get(), std::chrono::seconds(15));
  if (response != nullptr) *response = r;
  return StatusCode(r);
}

TempDir::TempDir() {
  char tmpl[] = "/tmp/sockdiag-web-XXXXXX";
  REQUIRE(mkdtemp(tmpl) != nullptr);
  path_ = tmpl;
}

TempDir::~TempDir() {
  if (!path_.empty()) Shell("rm -rf " + ShellQuote(path_));
}

int Shell(const std::string& command) {
  const int status = std::system(command.c_str());
  return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

void WriteFile(const std::string& path, const std::string& content) {
  std::ofstream out(path, std::ios::trunc);
  out << content;
  out.close();
  REQUIRE(!out.fail());
}

void MakeTestPki(const TempDir& dir) {
  const std::string d = ShellQuote(dir.path());
  WriteFile(dir / "server.ext",
            "subjectAltName=IP:127.0.0.1,IP:::1\nextendedKeyUsage=serverAuth\n");
  WriteFile(dir / "client.ext", "subjectAltName=DNS:prometheus\nextendedKeyUsage=clientAuth\n");
  WriteFile(dir / "other.ext", "subjectAltName=DNS:other\nextendedKeyUsage=clientAuth\n");
  const std::string ec = "-newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes";
  auto ca = [&](const std::string& name) {
    return "openssl req -x509 " + ec + " -keyout " + name + ".key -out " + name +
           ".crt -days 2 -subj /CN=" + name + " 2>/dev/null";
  };
  auto leaf = [&](const std::string& name, const std::string& issuer, const std::string& ext) {
    return "openssl req " + ec + " -keyout " + name + ".key -out " + name +
           ".csr -subj /CN=" + name + " 2>/dev/null && openssl x509 -req -in " + name +
           ".csr -CA " + issuer + ".crt -CAkey " + issuer +
           ".key -CAcreateserial -days 2 -extfile " + ext + " -out " + name + ".crt 2>/dev/null";
  };
  const std::string script =
      "set -e; cd " + d + "; " + ca("ca") + "; " + ca("rogueca") + "; " +
      leaf("server", "ca", "server.ext") + "; " + leaf("client", "ca", "client.ext") + "; " +
      leaf("other", "ca", "other.ext") + "; " + leaf("rogue", "rogueca", "client.ext");
  REQUIRE(Shell(script) == 0);
}

CurlResult Curl(const std::vector<std::string>& args) {
  TempDir dir;
  std::string cmd = "curl -sS --max-time 10 -o " + ShellQuote(dir / "body") + " -w '%{http_code}' ";
  for (const auto& a : args) cmd += ShellQuote(a) + " ";
  cmd += "> " + ShellQuote(dir / "code") + " 2>/dev/null";
  CurlResult r;
  r.exit_code = Shell(cmd);
  r.http_code = std::atoi(ReadText(dir / "code").c_str());
  r.body = ReadText(dir / "body");
  return r;
}

std::string BcryptHash(const std::string& password, unsigned long cost) {
  char setting[CRYPT_GENSALT_OUTPUT_SIZE];
  REQUIRE(crypt_gensalt_rn("$2b$", cost, nullptr, 0, setting, sizeof(setting)) != nullptr);
  crypt_data data{};
  const char* h = crypt_rn(password.c_str(), setting, &data, sizeof(data));
  REQUIRE(h != nullptr);
  return h;
}

LaunchedExporter::LaunchedExporter(std::vector<std::string> prefix, std::vector<std::string> flags,
                                   uint16_t port, long nofile)
    : port_(port) {
  char tmpl[] = "/tmp/sockdiag-launched-stderr-XXXXXX";
  const int errfd = mkstemp(tmpl);
  REQUIRE(errfd >= 0);
  stderr_path_ = tmpl;
  std::vector<std::string> args = std::move(prefix);
  args.push_back(SOCKDIAG_EXPORTER_BIN);
  args.push_back("--web.listen-address=127.0.0.1:" + std::to_string(port));
  args.insert(args.end(), flags.begin(), flags.end());
  pid_ = fork();
  REQUIRE(pid_ >= 0);
  if (pid_ == 0) {
    dup2(errfd, 2);
    const int devnull = open("/dev/null", O_RDWR);
    dup2(devnull, 0);
    dup2(devnull, 1);
    if (nofile > 0) {
      struct rlimit rl {
        static_cast<rlim_t>(nofile), static_cast<rlim_t>(nofile)
      };
      setrlimit(RLIMIT_NOFILE, &rl);
    }
    std::vector<char*> argv;
    for (auto& a : args) argv.push_back(a.data());
    argv.push_back(nullptr);
    execvp(argv[0], argv.data());
    _exit(127);
  }
  close(errfd);
}

LaunchedExporter::~LaunchedExporter() {
  if (pid_ > 0) {
    kill(pid_, SIGKILL);
    waitpid(pid_, nullptr, 0);
  }
  if (!stderr_path_.empty()) unlink(stderr_path_.c_str());
}

bool LaunchedExporter::WaitReady() {
  return WaitUntil([&] { return HttpGet(port_, "/-/ready").status == 200; });
}

Scrape LaunchedExporter::ScrapeMetrics() {
  HttpResponse r = HttpGet(port_, "/metrics");
  INFO("exporter stderr:\n" << Stderr());
  REQUIRE(r.status == 200);
  return Scrape::Parse(r.body);
}

std::string LaunchedExporter::Stderr() const { return ReadText(stderr_path_); }

int LaunchedExporter::Wait(std::chrono::milliseconds deadline) {
  int status = 0;
  if (!WaitUntil([&] { return waitpid(pid_, &status, WNOHANG) == pid_; }, deadline)) return -1;
  pid_ = -1;
  return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

}  // namespace sockdiag::testing
