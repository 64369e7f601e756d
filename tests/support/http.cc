#include "support/http.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/time.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>

namespace sockdiag::testing {

HttpResponse HttpRequest(const sockaddr_storage& to, socklen_t to_len, const std::string& path,
                         const HttpOptions& options) {
  HttpResponse r;
  const int fd = socket(to.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) {
    r.error = std::string("socket: ") + std::strerror(errno);
    return r;
  }
  timeval tv{10, 0};
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
  setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
  std::string resp;
  if (connect(fd, reinterpret_cast<const sockaddr*>(&to), to_len) != 0) {
    r.error = std::string("connect: ") + std::strerror(errno);
  } else {
    const std::string req = options.method + " " + path + " HTTP/1.1\r\nHost: 127.0.0.1\r\n" +
                            options.extra_headers + "Connection: close\r\n\r\n";
    if (write(fd, req.data(), req.size()) != static_cast<ssize_t>(req.size())) {
      r.error = std::string("write: ") + std::strerror(errno);
    } else {
      char buf[65536];
      ssize_t n;
      while ((n = read(fd, buf, sizeof(buf))) > 0) resp.append(buf, static_cast<size_t>(n));
      if (n < 0) r.error = std::string("read: ") + std::strerror(errno);
    }
  }
  if (options.abort) {
    linger lg{1, 0};
    setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
  }
  close(fd);
  if (!r.error.empty()) return r;
  const size_t end = resp.find("\r\n\r\n");
  if (resp.rfind("HTTP/1.", 0) != 0 || resp.size() < 12 || end == std::string::npos) {
    r.error = "not an HTTP response: \"" + resp.substr(0, 40) + "\"";
    return r;
  }
  r.status = std::atoi(resp.c_str() + 9);
  r.headers = resp.substr(0, end + 2);
  r.body = resp.substr(end + 4);
  return r;
}

HttpResponse HttpGet(uint16_t port, const std::string& path, const std::string& method) {
  sockaddr_storage ss{};
  auto* a = reinterpret_cast<sockaddr_in*>(&ss);
  a->sin_family = AF_INET;
  a->sin_port = htons(port);
  a->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  HttpOptions options;
  options.method = method;
  return HttpRequest(ss, sizeof(sockaddr_in), path, options);
}

}  // namespace sockdiag::testing
