// Test and bench support (tests/support): plain HTTP/1.1 requests over
// loopback, one connection each.
#pragma once

#include <sys/socket.h>

#include <cstdint>
#include <string>

namespace sockdiag::testing {

struct HttpResponse {
  int status = 0;       // 0 when there was no HTTP response.
  std::string headers;  // The status line and header lines, CRLF-separated.
  std::string body;
  std::string error;  // What went wrong before a response, "" otherwise.
};

struct HttpOptions {
  std::string method = "GET";
  std::string extra_headers;  // Whole lines, each ending in \r\n.
  // Close with an RST (SO_LINGER 0): the client end leaves no TIME_WAIT,
  // which would otherwise show up in the counts under test.
  bool abort = true;
};

// `method path` to the address `to` (IPv4 or IPv6), "Connection: close",
// reading the response until the server closes (10 s socket timeouts).
HttpResponse HttpRequest(const sockaddr_storage& to, socklen_t to_len, const std::string& path,
                         const HttpOptions& options = {});

// GET (or `method`) http://127.0.0.1:port/path.
HttpResponse HttpGet(uint16_t port, const std::string& path, const std::string& method = "GET");

}  // namespace sockdiag::testing
