// TlsTerminator: TLS (and mTLS) in front of CivetWeb.
//
// Debian 12's CivetWeb is built for the OpenSSL 1.1 API and cannot do TLS
// with OpenSSL 3, so when tls_server_config is set CivetWeb listens on
// 127.0.0.1:<ephemeral> only and this terminator owns --web.listen-address:
// it completes each TLS handshake (protocol versions and client
// certificate checks come from the SSL_CTX, see tls.h), waits for the first
// request bytes, then opens a plain connection to CivetWeb's internal port
// and relays bytes both ways until either side closes.
//
// No bypass: each upstream connection is bound to 127.0.0.1:<source port>
// before it connects, and HoldsPort() answers whether a source port is one
// the terminator holds right now. The begin_request hook refuses any other
// connection on the internal listener (403).
//
// Bounds: a connection must finish its handshake and send its first request
// bytes within `handshake_timeout`; a relay idle (no byte either way) for
// `idle_timeout`, or older than `max_lifetime`, is closed. At most
// `max_connections` connections (one thread each) live at once; at the cap
// the connection that has waited longest without sending a request (in its
// handshake, or silent after it) is cut to make room, so a flood of idle
// connections cannot lock real scrapers out; when every connection is
// relaying, the new one is closed at once.
//
// Thread-safety: HoldsPort() and port() from any thread. The destructor
// stops accepting, cuts every connection and waits for all threads.
#pragma once

#include <netinet/in.h>

#include <chrono>
#include <condition_variable>
#include <list>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <thread>

#include "sockdiag/status.h"
#include "web/tls.h"

namespace sockdiag {

class TlsTerminator {
 public:
  struct Options {
    SslCtxPtr ctx;
    std::string host;       // "" = every IPv4 address; IPv4 or IPv6 literal otherwise.
    int port = 0;           // 0 = ephemeral.
    int upstream_port = 0;  // CivetWeb's internal listener on 127.0.0.1.
    int max_connections = 256;
    std::chrono::milliseconds handshake_timeout{10000};
    std::chrono::milliseconds idle_timeout{15000};
    std::chrono::milliseconds max_lifetime{60000};
  };

  // Binds and starts accepting. InvalidArgument naming the address when it
  // cannot be bound.
  static Result<std::unique_ptr<TlsTerminator>> Start(Options options);
  ~TlsTerminator();
  TlsTerminator(const TlsTerminator&) = delete;
  TlsTerminator& operator=(const TlsTerminator&) = delete;

  int port() const { return bound_port_; }
  // True while `source_port` (on 127.0.0.1) is one of our upstream connections.
  bool HoldsPort(int source_port) const;

 private:
  struct Conn {
    int fd = -1;
    bool waiting = true;  // Handshake or no request byte yet: may be evicted.
    bool cut = false;     // shutdown() by the acceptor or the destructor.
    std::chrono::steady_clock::time_point since;
  };

  explicit TlsTerminator(Options options) : options_(std::move(options)) {}
  void AcceptLoop();
  void Serve(std::list<Conn>::iterator conn);
  // Cuts the oldest waiting connection; false when none waits. REQUIRES mu_.
  bool EvictOldestWaiting();

  const Options options_;
  int listen_fd_ = -1;
  int bound_port_ = 0;
  std::thread acceptor_;

  mutable std::mutex mu_;
  std::condition_variable all_done_;
  bool stopping_ = false;     // GUARDED_BY(mu_)
  std::list<Conn> conns_;     // GUARDED_BY(mu_): one per live thread.
  int live_ = 0;              // GUARDED_BY(mu_): conns_ not yet cut.
  std::set<int> held_ports_;  // GUARDED_BY(mu_)
};

}  // namespace sockdiag
