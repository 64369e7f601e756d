// WebServer: the HTTP side, on prometheus-cpp's Exposer (CivetWeb).
//
// The Exposer serves --web.telemetry-path from the poller's snapshot (plus
// `static_families`, e.g. sockdiag_capability). A CivetWeb begin_request
// hook in front of it answers "/" (landing page), "/-/healthy",
// "/-/ready" (200 once the first poll completed, else 503), rejects other
// paths (404) and methods (405), and caps concurrent requests at
// --web.max-requests (503 beyond).
//
// --web.config.file (exporter-toolkit format, web_config.h) adds:
//   basic_auth_users  checked in the hook for every path but /-/healthy
//                     (401 + WWW-Authenticate), outcomes cached (basic_auth.h);
//   tls_server_config TLS/mTLS by a terminator in front of CivetWeb
//                     (tls_terminator.h); CivetWeb then listens on
//                     127.0.0.1:<ephemeral> and refuses (403) connections
//                     that do not come from the terminator;
//   rate_limit        a token bucket over all requests (429 beyond).
// http_server_config.headers is refused: prometheus-cpp writes the metrics
// response and cannot add headers to it.
//
// Debian 12's CivetWeb has no IPv6: an IPv6 --web.listen-address is an
// error unless TLS is on (the terminator listens on IPv6 itself).
// Limits against abusive clients are in docs/security.md.
//
// Thread-safety: CivetWeb worker threads call in concurrently; the state
// they share is atomic, locked or immutable. One WebServer per process.
#pragma once

#include <prometheus/collectable.h>

#include <memory>
#include <string>

#include "poll/poller.h"
#include "sockdiag/config.h"
#include "sockdiag/metric_builder.h"
#include "sockdiag/status.h"

namespace prometheus {
class Exposer;
}

namespace sockdiag {

class TlsTerminator;

class WebServer {
 public:
  // Loads --web.config.file (if set), listens and starts serving.
  // InvalidArgument, with a one-line message naming the flag, when the
  // address cannot be bound or the web config (or a file it names) is bad.
  static Result<std::unique_ptr<WebServer>> Start(const Config& config, Poller* poller,
                                                  MetricFamilies static_families = {});
  ~WebServer();
  WebServer(const WebServer&) = delete;
  WebServer& operator=(const WebServer&) = delete;

  // The public port actually bound (useful with port 0).
  int port() const;
  // True when serving HTTPS (through the terminator).
  bool tls() const;
  // CivetWeb's own port: the public one, or the internal one behind TLS.
  int civetweb_port() const;

  struct State;  // Shared with the CivetWeb hooks; defined in web.cc.

 private:
  WebServer() = default;
  std::unique_ptr<State> state_;
  std::shared_ptr<prometheus::Collectable> collectable_;
  std::unique_ptr<prometheus::Exposer> exposer_;
  std::unique_ptr<TlsTerminator> terminator_;
};

}  // namespace sockdiag
