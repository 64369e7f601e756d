#include "web/tls_terminator.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <openssl/err.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "sockdiag/log.h"

namespace sockdiag {
namespace {

using Clock = std::chrono::steady_clock;

int MillisLeft(Clock::time_point deadline) {
  const auto left =
      std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now()).count();
  return static_cast<int>(std::clamp<long long>(left, 0, 1 << 30));
}

bool SetNonBlocking(int fd) {
  const int flags = fcntl(fd, F_GETFL);
  return flags >= 0 && fcntl(fd, F_SETFL, flags | O_NONBLOCK) == 0;
}

// Waits for `events` on fd until the deadline; false on timeout or error.
bool WaitFor(int fd, short events, Clock::time_point deadline) {
  pollfd p{fd, events, 0};
  for (;;) {
    const int n = poll(&p, 1, MillisLeft(deadline));
    if (n > 0) return true;
    if (n == 0 || errno != EINTR) return false;
  }
}

struct SslFree {
  void operator()(SSL* ssl) const { SSL_free(ssl); }
};

// TLS handshake, then the first application bytes into buf (*len), within
// the deadline. False on failure or timeout.
bool Handshake(SSL* ssl, int fd, Clock::time_point deadline, char* buf, size_t cap, size_t* len) {
  for (;;) {
    const int r = SSL_accept(ssl);
    if (r == 1) break;
    const int e = SSL_get_error(ssl, r);
    if (e == SSL_ERROR_WANT_READ && WaitFor(fd, POLLIN, deadline)) continue;
    if (e == SSL_ERROR_WANT_WRITE && WaitFor(fd, POLLOUT, deadline)) continue;
    return false;
  }
  for (;;) {
    const int n = SSL_read(ssl, buf, static_cast<int>(cap));
    if (n > 0) {
      *len = static_cast<size_t>(n);
      return true;
    }
    const int e = SSL_get_error(ssl, n);
    if (e == SSL_ERROR_WANT_READ && WaitFor(fd, POLLIN, deadline)) continue;
    if (e == SSL_ERROR_WANT_WRITE && WaitFor(fd, POLLOUT, deadline)) continue;
    return false;
  }
}

// Relays until the response is complete (CivetWeb closes: it serves one
// request per connection), the client goes, or a time bound passes.
// `up` holds the first request bytes already read.
void Relay(SSL* ssl, int client, int upstream, std::string up, std::chrono::milliseconds idle,
           Clock::time_point end_of_life) {
  char down[16384];
  size_t down_len = 0, down_off = 0, up_off = 0;
  char in[16384];
  bool client_eof = false, upstream_eof = false;
  auto idle_deadline = Clock::now() + idle;
  for (;;) {
    bool progress = false;
    short client_events = 0, upstream_events = 0;
    if (!client_eof && up_off == up.size()) {  // Client -> CivetWeb.
      const int n = SSL_read(ssl, in, sizeof(in));
      if (n > 0) {
        up.assign(in, static_cast<size_t>(n));
        up_off = 0;
        progress = true;
      } else {
        const int e = SSL_get_error(ssl, n);
        if (e == SSL_ERROR_WANT_READ) {
          client_events |= POLLIN;
        } else if (e == SSL_ERROR_WANT_WRITE) {
          client_events |= POLLOUT;
        } else if (e == SSL_ERROR_ZERO_RETURN) {
          client_eof = true;
          shutdown(upstream, SHUT_WR);
          progress = true;
        } else {
          return;  // Reset or TLS error: the client is gone.
        }
      }
    }
    if (up_off < up.size()) {
      const ssize_t n = send(upstream, up.data() + up_off, up.size() - up_off, MSG_NOSIGNAL);
      if (n > 0) {
        up_off += static_cast<size_t>(n);
        progress = true;
      } else if (n < 0 && (errno == EAGAIN || errno == EINTR)) {
        upstream_events |= POLLOUT;
      } else {
        return;
      }
    }
    if (!upstream_eof && down_off == down_len) {  // CivetWeb -> client.
      const ssize_t n = recv(upstream, down, sizeof(down), 0);
      if (n > 0) {
        down_len = static_cast<size_t>(n);
        down_off = 0;
        progress = true;
      } else if (n == 0) {
        upstream_eof = true;
        progress = true;
      } else if (errno == EAGAIN || errno == EINTR) {
        upstream_events |= POLLIN;
      } else {
        return;
      }
    }
    if (down_off < down_len) {
      const int n = SSL_write(ssl, down + down_off, static_cast<int>(down_len - down_off));
      if (n > 0) {
        down_off += static_cast<size_t>(n);
        progress = true;
      } else {
        const int e = SSL_get_error(ssl, n);
        if (e == SSL_ERROR_WANT_READ) {
          client_events |= POLLIN;
        } else if (e == SSL_ERROR_WANT_WRITE) {
          client_events |= POLLOUT;
        } else {
          return;
        }
      }
    }
    if (upstream_eof && down_off == down_len) {
      SSL_shutdown(ssl);  // close_notify, best effort (non-blocking).
      return;
    }
    if (Clock::now() >= end_of_life) return;
    if (progress) {
      idle_deadline = Clock::now() + idle;
      continue;
    }
    pollfd p[2] = {{client, client_events, 0}, {upstream, upstream_events, 0}};
    const int n = poll(p, 2, MillisLeft(std::min(idle_deadline, end_of_life)));
    if (n == 0) return;  // Idle or too old.
    if (n < 0 && errno != EINTR) return;
  }
}

}  // namespace

Result<std::unique_ptr<TlsTerminator>> TlsTerminator::Start(Options options) {
  std::unique_ptr<TlsTerminator> t(new TlsTerminator(std::move(options)));
  const Options& o = t->options_;
  sockaddr_storage ss{};
  socklen_t len = 0;
  const bool v6 = o.host.find(':') != std::string::npos;
  if (v6) {
    auto* a = reinterpret_cast<sockaddr_in6*>(&ss);
    a->sin6_family = AF_INET6;
    a->sin6_port = htons(static_cast<uint16_t>(o.port));
    if (inet_pton(AF_INET6, o.host.c_str(), &a->sin6_addr) != 1) {
      return Status::InvalidArgument("invalid IPv6 address \"" + o.host + "\"");
    }
    len = sizeof(*a);
  } else {
    auto* a = reinterpret_cast<sockaddr_in*>(&ss);
    a->sin_family = AF_INET;
    a->sin_port = htons(static_cast<uint16_t>(o.port));
    if (o.host.empty()) {
      a->sin_addr.s_addr = htonl(INADDR_ANY);
    } else if (inet_pton(AF_INET, o.host.c_str(), &a->sin_addr) != 1) {
      return Status::InvalidArgument("invalid IPv4 address \"" + o.host + "\"");
    }
    len = sizeof(*a);
  }
  const int fd = socket(v6 ? AF_INET6 : AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return Status::FromErrno(errno, "socket");
  const int one = 1;
  setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
  if (bind(fd, reinterpret_cast<sockaddr*>(&ss), len) != 0 || listen(fd, 1024) != 0) {
    const int err = errno;
    close(fd);
    return Status::FromErrno(err, "bind");
  }
  if (getsockname(fd, reinterpret_cast<sockaddr*>(&ss), &len) == 0) {
    t->bound_port_ = ntohs(v6 ? reinterpret_cast<sockaddr_in6*>(&ss)->sin6_port
                              : reinterpret_cast<sockaddr_in*>(&ss)->sin_port);
  }
  t->listen_fd_ = fd;
  t->acceptor_ = std::thread([p = t.get()] { p->AcceptLoop(); });
  return t;
}

TlsTerminator::~TlsTerminator() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stopping_ = true;
  }
  shutdown(listen_fd_, SHUT_RDWR);  // Wakes accept().
  if (acceptor_.joinable()) acceptor_.join();
  close(listen_fd_);
  std::unique_lock<std::mutex> lock(mu_);
  for (Conn& c : conns_) {
    if (!c.cut) shutdown(c.fd, SHUT_RDWR);
    c.cut = true;
  }
  all_done_.wait(lock, [&] { return conns_.empty(); });
}

bool TlsTerminator::HoldsPort(int source_port) const {
  std::lock_guard<std::mutex> lock(mu_);
  return held_ports_.count(source_port) != 0;
}

bool TlsTerminator::EvictOldestWaiting() {
  Conn* oldest = nullptr;
  for (Conn& c : conns_) {
    if (c.waiting && !c.cut && (oldest == nullptr || c.since < oldest->since)) oldest = &c;
  }
  if (oldest == nullptr) return false;
  shutdown(oldest->fd, SHUT_RDWR);  // Its thread sees EOF and leaves.
  oldest->cut = true;
  --live_;
  return true;
}

void TlsTerminator::AcceptLoop() {
  for (;;) {
    const int fd = accept4(listen_fd_, nullptr, nullptr, SOCK_CLOEXEC | SOCK_NONBLOCK);
    if (fd < 0) {
      if (errno == EINTR || errno == ECONNABORTED) continue;
      std::lock_guard<std::mutex> lock(mu_);
      if (stopping_) return;
      // EMFILE/ENFILE/ENOBUFS: back off instead of spinning.
      LogOnce(LogLevel::kWarn, "tls-accept", "TLS terminator cannot accept",
              {{"err", std::strerror(errno)}});
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
      continue;
    }
    std::unique_lock<std::mutex> lock(mu_);
    if (stopping_) {
      close(fd);
      return;
    }
    if (live_ >= options_.max_connections && !EvictOldestWaiting()) {
      lock.unlock();
      close(fd);  // Every connection is relaying a request: refuse this one.
      continue;
    }
    conns_.push_back(Conn{fd, true, false, Clock::now()});
    ++live_;
    auto it = std::prev(conns_.end());
    lock.unlock();
    std::thread([this, it] { Serve(it); }).detach();
  }
}

void TlsTerminator::Serve(std::list<Conn>::iterator conn) {
  const int fd = conn->fd;  // Immutable once listed.
  const auto started = Clock::now();
  std::unique_ptr<SSL, SslFree> ssl(SSL_new(options_.ctx.get()));
  char first[16384];
  size_t first_len = 0;
  int upstream = -1;
  int source_port = 0;
  bool ok = ssl != nullptr && SSL_set_fd(ssl.get(), fd) == 1;
  if (ok) {
    // A client's TCP FIN without close_notify ends its side like close_notify.
    SSL_set_options(ssl.get(), SSL_OP_IGNORE_UNEXPECTED_EOF);
    ok = Handshake(ssl.get(), fd, started + options_.handshake_timeout, first, sizeof(first),
                   &first_len);
    if (!ok) {
      char reason[256] = "timeout or closed";
      if (const unsigned long e = ERR_peek_error(); e != 0)
        ERR_error_string_n(e, reason, sizeof(reason));
      Log(LogLevel::kDebug, "TLS handshake failed", {{"reason", reason}});
    }
    ERR_clear_error();
  }
  if (ok) {
    // The upstream connection, bound first so its source port is known and
    // registered before CivetWeb can see it.
    upstream = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in local{};
    local.sin_family = AF_INET;
    local.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof(local);
    ok = upstream >= 0 && bind(upstream, reinterpret_cast<sockaddr*>(&local), sizeof(local)) == 0 &&
         getsockname(upstream, reinterpret_cast<sockaddr*>(&local), &len) == 0;
    if (ok) {
      source_port = ntohs(local.sin_port);
      std::lock_guard<std::mutex> lock(mu_);
      held_ports_.insert(source_port);
      conn->waiting = false;
      ok = !conn->cut;
    }
    sockaddr_in to{};
    to.sin_family = AF_INET;
    to.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    to.sin_port = htons(static_cast<uint16_t>(options_.upstream_port));
    // Loopback: connect completes at once (or fails at once).
    ok = ok && connect(upstream, reinterpret_cast<sockaddr*>(&to), sizeof(to)) == 0 &&
         SetNonBlocking(upstream);
    if (!ok) {
      LogOnce(LogLevel::kWarn, "tls-upstream", "TLS terminator cannot reach the HTTP server",
              {{"err", std::strerror(errno)}});
    }
  }
  if (ok) {
    Relay(ssl.get(), fd, upstream, std::string(first, first_len), options_.idle_timeout,
          started + options_.max_lifetime);
  }
  ssl.reset();
  std::lock_guard<std::mutex> lock(mu_);
  // Unregister before closing: the set never names a port that is free.
  if (source_port != 0) held_ports_.erase(source_port);
  if (upstream >= 0) close(upstream);
  close(fd);
  if (!conn->cut) --live_;
  conns_.erase(conn);
  if (conns_.empty()) all_done_.notify_all();
}

}  // namespace sockdiag
