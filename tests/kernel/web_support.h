// Support for the web server's kernel tests: raw HTTP over real sockets,
// curl for TLS, throwaway certificates and bcrypt hashes.
//
// Everything runs in the test's private network namespace on 127.0.0.1;
// children are killed and temp dirs removed on destruction.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <string>
#include <string_view>
#include <vector>

#include "kernel/kernel_support.h"

namespace sockdiag::testing {

bool SendAll(int fd, std::string_view data);
// Reads until the peer closes, an error, or the deadline; returns what came.
std::string ReadUntilClose(int fd, std::chrono::milliseconds deadline);
// "HTTP/1.1 404 Not Found..." -> 404; 0 when there is no status line.
int StatusCode(const std::string& response);
// Connects, sends `request` verbatim, reads the response until close.
// Returns the status (0 on connection failure or no response).
int RawRequest(uint16_t port, std::string_view request, std::string* response = nullptr);

// A directory under /tmp, removed with its contents on destruction.
class TempDir {
 public:
  TempDir();
  ~TempDir();
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  const std::string& path() const { return path_; }
  std::string operator/(const std::string& name) const { return path_ + "/" + name; }

 private:
  std::string path_;
};

// sh -c `command`; the exit status.
int Shell(const std::string& command);
void WriteFile(const std::string& path, const std::string& content);

// A CA, a server certificate for IP 127.0.0.1, client certificates with SAN
// DNS:prometheus (client.*) and DNS:other (other.*) from that CA, and a client
// certificate from an unrelated CA (rogue.*), all written to `dir` by openssl.
void MakeTestPki(const TempDir& dir);

struct CurlResult {
  int exit_code = -1;  // curl's: 0 ok, 7 refused, 35 TLS handshake, 56 recv, 60 verify.
  int http_code = 0;
  std::string body;
};
// curl -sS --max-time 10 <args>; body and status captured.
CurlResult Curl(const std::vector<std::string>& args);

// A bcrypt hash from libxcrypt ($2b$, as htpasswd -B writes).
std::string BcryptHash(const std::string& password, unsigned long cost);

}  // namespace sockdiag::testing
