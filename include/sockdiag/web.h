// WebServer: the HTTP side, on prometheus-cpp's Exposer (CivetWeb).
//
// The Exposer serves --web.telemetry-path from the poller's snapshot. A
// CivetWeb begin_request hook in front of it answers "/" (landing page),
// "/-/healthy", "/-/ready" (200 once the first poll completed, else 503),
// rejects other paths (404) and methods (405), and caps concurrent requests
// at --web.max-requests (503 beyond).
//
// Thread-safety: CivetWeb worker threads call in concurrently; the state
// they share is atomic or immutable. One WebServer per process.
#pragma once

#include <memory>
#include <string>

#include "sockdiag/config.h"
#include "sockdiag/poller.h"
#include "sockdiag/status.h"

#include <prometheus/collectable.h>

namespace prometheus {
class Exposer;
}

namespace sockdiag {

class WebServer {
 public:
  // Listens and starts serving. InvalidArgument when the address cannot be
  // bound (in use, not local), with a message naming it.
  static Result<std::unique_ptr<WebServer>> Start(const Config& config, Poller* poller);
  ~WebServer();
  WebServer(const WebServer&) = delete;
  WebServer& operator=(const WebServer&) = delete;

  // The port actually bound (useful with port 0).
  int port() const;

  struct State;  // Shared with the CivetWeb hooks; defined in web.cc.

 private:
  WebServer() = default;
  std::unique_ptr<State> state_;
  std::shared_ptr<prometheus::Collectable> collectable_;
  std::unique_ptr<prometheus::Exposer> exposer_;
};

}  // namespace sockdiag
