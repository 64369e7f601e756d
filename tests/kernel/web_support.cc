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
  r.http_code = std::atoi(ReadFile(dir / "code").c_str());
  r.body = ReadFile(dir / "body");
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

}  // namespace sockdiag::testing
