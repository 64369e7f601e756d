#include "web/web.h"

#include <CivetServer.h>
#include <civetweb.h>
#include <prometheus/collectable.h>
#include <prometheus/exposer.h>
#include <strings.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstring>
#include <mutex>
#include <optional>
#include <stdexcept>
#include <string_view>

#include "flags.h"
#include "sockdiag/log.h"
#include "sockdiag/version.h"
#include "web/basic_auth.h"
#include "web/tls.h"
#include "web/tls_terminator.h"
#include "web/web_config.h"

namespace sockdiag {

// CivetWeb tuning, measured in docs/security.md ("Limits"). CivetWeb 1.15
// serves one connection per worker thread from accept to close, so an idle
// connection holds a worker until the request timeout: many workers and a
// short timeout keep a scrape queued behind a flood of idle connections
// within Prometheus's 10 s scrape timeout.
constexpr int kRequestTimeoutMs = 2000;
constexpr int kMinWorkerThreads = 256;
// Request heads above this get 413 (CivetWeb's own answer).
constexpr int kMaxRequestHeadBytes = 16384;

// Token bucket over all requests (web config rate_limit).
class RateLimiter {
 public:
  RateLimiter(std::chrono::nanoseconds interval, int burst)
      : interval_(interval), burst_(burst), tokens_(burst) {}
  bool Allow() {
    if (interval_.count() <= 0) return true;
    std::lock_guard<std::mutex> lock(mu_);
    const auto now = std::chrono::steady_clock::now();
    const double refill = std::chrono::duration<double>(now - last_).count() /
                          std::chrono::duration<double>(interval_).count();
    tokens_ = std::min<double>(burst_, tokens_ + refill);
    last_ = now;
    if (tokens_ < 1) return false;
    tokens_ -= 1;
    return true;
  }

 private:
  const std::chrono::nanoseconds interval_;
  const int burst_;
  std::mutex mu_;
  double tokens_;  // GUARDED_BY(mu_)
  std::chrono::steady_clock::time_point last_ = std::chrono::steady_clock::now();
};

struct WebServer::State {
  const Config* config = nullptr;
  Poller* poller = nullptr;
  std::atomic<int> in_flight{0};
  std::string landing_page;
  MetricFamilies static_families;
  std::unique_ptr<BasicAuth> auth;  // Null: no basic_auth_users.
  std::unique_ptr<RateLimiter> rate_limit;
  // TLS: CivetWeb is internal and only the terminator's connections pass.
  bool behind_terminator = false;
  std::atomic<TlsTerminator*> terminator{nullptr};
};

namespace {

// CivetServer owns the context's user data, so the hooks find their state
// here. One WebServer per process.
std::atomic<WebServer::State*> g_state{nullptr};

// Marker stored as connection user data when a request holds a slot.
char kHoldsSlot;

class SnapshotCollectable final : public prometheus::Collectable {
 public:
  SnapshotCollectable(Poller* poller, const MetricFamilies* static_families)
      : poller_(poller), static_families_(static_families) {}
  std::vector<prometheus::MetricFamily> Collect() const override {
    MetricFamilies out = *poller_->Snapshot();
    out.insert(out.end(), static_families_->begin(), static_families_->end());
    return out;
  }

 private:
  Poller* poller_;
  const MetricFamilies* static_families_;
};

// RFC 4648 base64 (padding optional); nullopt on any other character.
std::optional<std::string> DecodeBase64(std::string_view in) {
  while (!in.empty() && in.back() == '=') in.remove_suffix(1);
  std::string out;
  uint32_t acc = 0;
  int bits = 0;
  for (char c : in) {
    int v = -1;
    if (c >= 'A' && c <= 'Z') v = c - 'A';
    if (c >= 'a' && c <= 'z') v = c - 'a' + 26;
    if (c >= '0' && c <= '9') v = c - '0' + 52;
    if (c == '+') v = 62;
    if (c == '/') v = 63;
    if (v < 0) return std::nullopt;
    acc = (acc << 6) | static_cast<uint32_t>(v);
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out.push_back(static_cast<char>((acc >> bits) & 0xff));
    }
  }
  return out;
}

// True when the request carries credentials basic_auth_users accepts.
bool Authorized(BasicAuth* auth, struct mg_connection* conn) {
  const char* header = mg_get_header(conn, "Authorization");
  if (header == nullptr) return false;
  std::string_view h(header);
  if (h.size() < 6 || strncasecmp(h.data(), "Basic ", 6) != 0) return false;
  h.remove_prefix(6);
  while (!h.empty() && h.front() == ' ') h.remove_prefix(1);
  while (!h.empty() && h.back() == ' ') h.remove_suffix(1);
  if (h.size() > 1024) return false;
  std::optional<std::string> decoded = DecodeBase64(h);
  if (!decoded) return false;
  const size_t colon = decoded->find(':');
  if (colon == std::string::npos) return false;
  const std::string user = decoded->substr(0, colon);
  const std::string password = decoded->substr(colon + 1);
  if (std::optional<bool> known = auth->Cached(user, password)) return *known;
  return auth->Verify(user, password);  // bcrypt: tens of ms, on this worker.
}

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
  if (st->behind_terminator) {
    // Only the TLS terminator's own upstream connections may use the
    // internal listener: anything else would bypass TLS and mTLS.
    TlsTerminator* t = st->terminator.load();
    if (t == nullptr || std::strcmp(info->remote_addr, "127.0.0.1") != 0 ||
        !t->HoldsPort(info->remote_port)) {
      return Reply(conn, 403, "Forbidden", "text/plain",
                   "forbidden: connect through the TLS listener\n");
    }
  }
  const std::string_view method = info->request_method ? info->request_method : "";
  const std::string_view path = info->local_uri ? info->local_uri : "";
  if (st->rate_limit && !st->rate_limit->Allow()) {
    return Reply(conn, 429, "Too Many Requests", "text/plain", "rate limit exceeded\n",
                 "Retry-After: 1\r\n");
  }
  // /-/healthy stays open so liveness probes need no credentials; it tells
  // nothing but "the process answers".
  if (st->auth && path != "/-/healthy" && !Authorized(st->auth.get(), conn)) {
    return Reply(conn, 401, "Unauthorized", "text/plain", "unauthorized\n",
                 "WWW-Authenticate: Basic realm=\"sockdiag_exporter\", charset=\"UTF-8\"\r\n");
  }
  if (method != "GET" && method != "HEAD") {
    return Reply(conn, 405, "Method Not Allowed", "text/plain", "method not allowed\n",
                 "Allow: GET, HEAD\r\n");
  }
  if (path == st->config->telemetry_path) {
    if (st->in_flight.fetch_add(1) >= st->config->web_max_requests) {
      st->in_flight.fetch_sub(1);
      return Reply(conn, 503, "Service Unavailable", "text/plain", "too many concurrent requests\n",
                   "Retry-After: 1\r\n");
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
  return std::string(
             "<!DOCTYPE html>\n<html><head><title>sockdiag_exporter</title></head>\n"
             "<body><h1>sockdiag_exporter</h1>\n"
             "<p>TCP socket states, ephemeral-port pressure per destination, conntrack "
             "and the sysctls behind them.</p>\n<ul>\n<li><a href=\"") +
         c.telemetry_path + "\">Metrics</a></li>\n" +
         "<li><a href=\"/-/healthy\">Health</a></li>\n<li><a href=\"/-/ready\">Readiness</a></li>\n"
         "</ul>\n<p>Version " +
         kVersion + " (" + kRevision + ")</p>\n</body></html>\n";
}

}  // namespace

Result<std::unique_ptr<WebServer>> WebServer::Start(const Config& config, Poller* poller,
                                                    MetricFamilies static_families) {
  auto addr = ParseListenAddress(config.listen_address);
  if (!addr.ok()) return addr.status();
  const ListenAddress& listen = addr.value();
  std::unique_ptr<WebServer> server(new WebServer());
  server->state_ = std::make_unique<State>();
  State* st = server->state_.get();
  st->config = &config;
  st->poller = poller;
  st->landing_page = LandingPage(config);
  st->static_families = std::move(static_families);

  WebConfig web_config;
  if (!config.web_config_file.empty()) {
    auto loaded = LoadWebConfigFile(config.web_config_file);
    if (!loaded.ok())
      return Status::InvalidArgument("--web.config.file: " + loaded.status().ToString());
    web_config = std::move(loaded.value());
    if (!web_config.headers.empty()) {
      return Status::InvalidArgument(
          "--web.config.file: http_server_config.headers is not supported (the metrics "
          "response is written by prometheus-cpp, which cannot add headers)");
    }
  }
  if (!web_config.basic_auth_users.empty()) {
    st->auth = std::make_unique<BasicAuth>(web_config.basic_auth_users);
  }
  if (web_config.rate_limit_interval.count() > 0) {
    st->rate_limit =
        std::make_unique<RateLimiter>(web_config.rate_limit_interval, web_config.rate_limit_burst);
  }
  SslCtxPtr tls_ctx;
  if (web_config.tls.enabled()) {
    auto ctx = MakeServerTlsContext(web_config.tls);
    if (!ctx.ok()) return Status::InvalidArgument("--web.config.file: " + ctx.status().ToString());
    tls_ctx = ctx.value();
    st->behind_terminator = true;
  }
  const bool v6 = listen.host.find(':') != std::string::npos;
  // Feature 8: IPv6. Debian 12's libcivetweb is built without it.
  if (v6 && !tls_ctx && mg_check_feature(8) == 0) {
    return Status::InvalidArgument("--web.listen-address: \"" + config.listen_address +
                                   "\": this CivetWeb build has no IPv6 support; use an IPv4 "
                                   "address (\":PORT\" is every IPv4 address) or enable TLS, "
                                   "whose listener supports IPv6");
  }
  g_state = st;

  static CivetCallbacks callbacks;  // Value-initialised by its constructor.
  callbacks.begin_request = BeginRequest;
  callbacks.end_request = EndRequest;
  callbacks.log_message = LogMessage;

  std::string ports;
  if (tls_ctx) {
    ports = "127.0.0.1:0";  // Internal: reached through the terminator only.
  } else if (listen.host.empty()) {
    ports = std::to_string(listen.port);  // Every IPv4 address.
  } else if (v6) {
    ports = "[" + listen.host + "]:" + std::to_string(listen.port);
  } else {
    ports = listen.host + ":" + std::to_string(listen.port);
  }
  const std::vector<std::string> options = {
      "listening_ports",
      ports,
      "num_threads",
      std::to_string(std::max(kMinWorkerThreads, config.web_max_requests + 16)),
      "request_timeout_ms",
      std::to_string(kRequestTimeoutMs),
      "max_request_size",
      std::to_string(kMaxRequestHeadBytes),
      "enable_keep_alive",
      "no",
  };
  try {
    server->exposer_ = std::make_unique<prometheus::Exposer>(options, &callbacks);
  } catch (const std::exception&) {
    g_state = nullptr;
    return Status::InvalidArgument("--web.listen-address: cannot listen on \"" +
                                   config.listen_address + "\" (address in use or not local)");
  }
  server->collectable_ = std::make_shared<SnapshotCollectable>(poller, &st->static_families);
  server->exposer_->RegisterCollectable(server->collectable_, config.telemetry_path);

  if (tls_ctx) {
    TlsTerminator::Options o;
    o.ctx = tls_ctx;
    o.host = listen.host;
    o.port = listen.port;
    o.upstream_port = server->civetweb_port();
    o.max_connections = std::max(256, config.web_max_requests + 64);
    auto t = TlsTerminator::Start(std::move(o));
    if (!t.ok()) {
      server->exposer_.reset();
      g_state = nullptr;
      return Status::InvalidArgument("--web.listen-address: cannot listen on \"" +
                                     config.listen_address + "\": " + t.status().ToString());
    }
    server->terminator_ = std::move(t.value());
    st->terminator = server->terminator_.get();
  }
  return server;
}

WebServer::~WebServer() {
  exposer_.reset();     // Joins CivetWeb's threads (the hooks' users) first.
  terminator_.reset();  // Then cuts and joins the TLS connections.
  g_state = nullptr;
}

int WebServer::civetweb_port() const {
  auto ports = exposer_->GetListeningPorts();
  return ports.empty() ? 0 : ports.front();
}

int WebServer::port() const { return terminator_ ? terminator_->port() : civetweb_port(); }

bool WebServer::tls() const { return terminator_ != nullptr; }

}  // namespace sockdiag
