#include "sockdiag/web.h"

#include <CivetServer.h>
#include <civetweb.h>
#include <prometheus/collectable.h>
#include <prometheus/exposer.h>

#include <atomic>
#include <cstring>
#include <stdexcept>
#include <string_view>

#include "sockdiag/flags.h"
#include "sockdiag/log.h"
#include "sockdiag/version.h"

namespace sockdiag {

struct WebServer::State {
  const Config* config = nullptr;
  Poller* poller = nullptr;
  std::atomic<int> in_flight{0};
  std::string landing_page;
};

namespace {

// CivetServer owns the context's user data, so the hooks find their state
// here. One WebServer per process.
std::atomic<WebServer::State*> g_state{nullptr};

// Marker stored as connection user data when a request holds a slot.
char kHoldsSlot;

class SnapshotCollectable final : public prometheus::Collectable {
 public:
  explicit SnapshotCollectable(Poller* poller) : poller_(poller) {}
  std::vector<prometheus::MetricFamily> Collect() const override { return *poller_->Snapshot(); }

 private:
  Poller* poller_;
};

int Reply(struct mg_connection* conn, int code, const char* reason, std::string_view type,
          std::string_view body, const char* extra_headers = "") {
  mg_printf(conn,
            "HTTP/1.1 %d %s\r\nContent-Type: %.*s\r\nContent-Length: %zu\r\n"
            "Connection: close\r\n%s\r\n",
            code, reason, static_cast<int>(type.size()), type.data(), body.size(), extra_headers);
  const struct mg_request_info* info = mg_get_request_info(conn);
  if (info == nullptr || info->request_method == nullptr ||
      std::strcmp(info->request_method, "HEAD") != 0) {
    mg_write(conn, body.data(), body.size());
  }
  return code;
}

int BeginRequest(struct mg_connection* conn) {
  WebServer::State* st = g_state.load();
  const struct mg_request_info* info = mg_get_request_info(conn);
  if (st == nullptr || info == nullptr) return 0;
  const std::string_view method = info->request_method ? info->request_method : "";
  const std::string_view path = info->local_uri ? info->local_uri : "";
  if (method != "GET" && method != "HEAD") {
    return Reply(conn, 405, "Method Not Allowed", "text/plain", "method not allowed\n",
                 "Allow: GET, HEAD\r\n");
  }
  if (path == st->config->telemetry_path) {
    if (st->in_flight.fetch_add(1) >= st->config->web_max_requests) {
      st->in_flight.fetch_sub(1);
      return Reply(conn, 503, "Service Unavailable", "text/plain",
                   "too many concurrent requests\n", "Retry-After: 1\r\n");
    }
    mg_set_user_connection_data(conn, &kHoldsSlot);
    return 0;  // prometheus-cpp serves it.
  }
  if (path == "/") return Reply(conn, 200, "OK", "text/html; charset=utf-8", st->landing_page);
  if (path == "/-/healthy") return Reply(conn, 200, "OK", "text/plain", "Healthy\n");
  if (path == "/-/ready") {
    if (st->poller->ready()) return Reply(conn, 200, "OK", "text/plain", "Ready\n");
    return Reply(conn, 503, "Service Unavailable", "text/plain", "Not ready: first poll running\n");
  }
  return Reply(conn, 404, "Not Found", "text/plain", "not found\n");
}

void EndRequest(const struct mg_connection* conn, int) {
  WebServer::State* st = g_state.load();
  if (st == nullptr) return;
  auto* c = const_cast<struct mg_connection*>(conn);
  if (mg_get_user_connection_data(c) == &kHoldsSlot) {
    mg_set_user_connection_data(c, nullptr);
    st->in_flight.fetch_sub(1);
  }
}

int LogMessage(const struct mg_connection*, const char* message) {
  Log(LogLevel::kDebug, "http", {{"msg", message}});
  return 1;
}

std::string LandingPage(const Config& c) {
  return std::string("<!DOCTYPE html>\n<html><head><title>sockdiag_exporter</title></head>\n"
                     "<body><h1>sockdiag_exporter</h1>\n"
                     "<p>TCP socket states, ephemeral-port pressure per destination, conntrack "
                     "and the sysctls behind them.</p>\n<ul>\n<li><a href=\"") +
         c.telemetry_path + "\">Metrics</a></li>\n" +
         "<li><a href=\"/-/healthy\">Health</a></li>\n<li><a href=\"/-/ready\">Readiness</a></li>\n"
         "</ul>\n<p>Version " + kVersion + " (" + kRevision + ")</p>\n</body></html>\n";
}

}  // namespace

Result<std::unique_ptr<WebServer>> WebServer::Start(const Config& config, Poller* poller) {
  auto addr = ParseListenAddress(config.listen_address);
  if (!addr.ok()) return addr.status();
  std::unique_ptr<WebServer> server(new WebServer());
  server->state_ = std::make_unique<State>();
  server->state_->config = &config;
  server->state_->poller = poller;
  server->state_->landing_page = LandingPage(config);
  g_state = server->state_.get();

  static CivetCallbacks callbacks;  // Value-initialised by its constructor.
  callbacks.begin_request = BeginRequest;
  callbacks.end_request = EndRequest;
  callbacks.log_message = LogMessage;

  const std::string port = std::to_string(addr.value().port);
  std::vector<std::string> candidates;
  if (addr.value().host.empty()) {
    candidates = {"+" + port, port};  // Dual-stack, else IPv4 only (IPv6 disabled).
  } else if (addr.value().host.find(':') != std::string::npos) {
    candidates = {"[" + addr.value().host + "]:" + port};
  } else {
    candidates = {addr.value().host + ":" + port};
  }
  std::string last_error;
  for (const auto& ports : candidates) {
    std::vector<std::string> options = {
        "listening_ports", ports,
        "num_threads", std::to_string(std::max(4, std::min(config.web_max_requests + 2, 64))),
        "request_timeout_ms", "10000",
        "enable_keep_alive", "no",
    };
    try {
      server->exposer_ = std::make_unique<prometheus::Exposer>(options, &callbacks);
      break;
    } catch (const std::exception& e) {
      last_error = e.what();
    }
  }
  if (!server->exposer_) {
    g_state = nullptr;
    return Status::InvalidArgument("--web.listen-address: cannot listen on \"" +
                                   config.listen_address + "\" (address in use or not local)");
  }
  server->collectable_ = std::make_shared<SnapshotCollectable>(poller);
  server->exposer_->RegisterCollectable(server->collectable_, config.telemetry_path);
  return server;
}

WebServer::~WebServer() {
  exposer_.reset();  // Joins CivetWeb's threads before the state goes.
  g_state = nullptr;
}

int WebServer::port() const {
  auto ports = exposer_->GetListeningPorts();
  return ports.empty() ? 0 : ports.front();
}

}  // namespace sockdiag
