#include "web/web_config.h"

#include <yaml.h>

#include <cerrno>
#include <cmath>
#include <cstdio>
#include <memory>
#include <set>

namespace sockdiag {
namespace {

// --- A small YAML tree built from libyaml's event stream ------------------
//
// The event parser keeps its own stack on the heap, so hostile nesting cannot
// overflow ours; the tree is capped in depth and size, and aliases (the only
// way YAML grows exponentially) are refused.

constexpr int kMaxDepth = 32;
constexpr size_t kMaxNodes = 100000;
constexpr size_t kMaxFileBytes = 1 << 20;

struct Entry;

struct Node {
  enum Kind { kScalar, kSequence, kMapping } kind = kScalar;
  std::string value;           // kScalar
  bool plain = false;          // Unquoted scalar: may be null or bool.
  size_t line = 0;             // 1-based.
  std::vector<Node> items;     // kSequence
  std::vector<Entry> entries;  // kMapping
};

// A mapping's key and value (a named struct: std::pair<Node, Node> cannot
// be instantiated while Node is incomplete with every standard library).
struct Entry {
  Node key;
  Node value;
};

Status Fail(size_t line, const std::string& msg) {
  return Status::InvalidArgument("line " + std::to_string(line) + ": " + msg);
}

// Owns a yaml_parser_t and yaml_event_t for exception-free cleanup.
class EventReader {
 public:
  explicit EventReader(std::string_view text) {
    ok_ = yaml_parser_initialize(&parser_) != 0;
    if (ok_) {
      yaml_parser_set_input_string(&parser_, reinterpret_cast<const unsigned char*>(text.data()),
                                   text.size());
    }
  }
  ~EventReader() {
    if (has_event_) yaml_event_delete(&event_);
    yaml_parser_delete(&parser_);
  }
  EventReader(const EventReader&) = delete;
  EventReader& operator=(const EventReader&) = delete;

  // Next event, or an error naming the line.
  Status Next() {
    if (has_event_) {
      yaml_event_delete(&event_);
      has_event_ = false;
    }
    if (!ok_) return Status::InvalidArgument("cannot initialise the YAML parser");
    if (yaml_parser_parse(&parser_, &event_) == 0) {
      std::string problem = parser_.problem != nullptr ? parser_.problem : "syntax error";
      if (parser_.context != nullptr) problem = std::string(parser_.context) + ": " + problem;
      return Fail(parser_.problem_mark.line + 1, "invalid YAML: " + problem);
    }
    has_event_ = true;
    return Status::Ok();
  }
  const yaml_event_t& event() const { return event_; }

 private:
  yaml_parser_t parser_{};
  yaml_event_t event_{};
  bool ok_ = false;
  bool has_event_ = false;
};

// Parses the first (only) document into *root; root->kind stays kScalar with
// an empty plain value (null) for an empty file.
Status BuildTree(std::string_view text, Node* root) {
  root->plain = true;
  root->line = 1;
  EventReader reader(text);
  // Containers being filled; `pending_key` per mapping level.
  struct Open {
    Node* node = nullptr;
    bool has_key = false;
    Node key;
  };
  std::vector<Open> stack;
  size_t nodes = 0;
  int documents = 0;

  auto attach = [&](Node&& n) -> Node* {
    if (++nodes > kMaxNodes) return nullptr;
    if (stack.empty()) {
      *root = std::move(n);
      return root;
    }
    Open& top = stack.back();
    if (top.node->kind == Node::kSequence) {
      top.node->items.push_back(std::move(n));
      return &top.node->items.back();
    }
    if (!top.has_key) {
      top.key = std::move(n);
      top.has_key = true;
      return &top.key;
    }
    top.node->entries.push_back(Entry{std::move(top.key), std::move(n)});
    top.has_key = false;
    top.key = Node();
    return &top.node->entries.back().value;
  };

  for (;;) {
    Status s = reader.Next();
    if (!s.ok()) return s;
    const yaml_event_t& e = reader.event();
    const size_t line = e.start_mark.line + 1;
    switch (e.type) {
      case YAML_STREAM_END_EVENT:
        return Status::Ok();
      case YAML_DOCUMENT_START_EVENT:
        if (++documents > 1) return Fail(line, "more than one YAML document");
        break;
      case YAML_ALIAS_EVENT:
        return Fail(line, "YAML aliases are not supported");
      case YAML_SCALAR_EVENT: {
        Node n;
        n.kind = Node::kScalar;
        n.value.assign(reinterpret_cast<const char*>(e.data.scalar.value), e.data.scalar.length);
        n.plain = e.data.scalar.style == YAML_PLAIN_SCALAR_STYLE;
        n.line = line;
        if (attach(std::move(n)) == nullptr) return Fail(line, "document too large");
        break;
      }
      case YAML_SEQUENCE_START_EVENT:
      case YAML_MAPPING_START_EVENT: {
        if (static_cast<int>(stack.size()) >= kMaxDepth) return Fail(line, "nested too deeply");
        if (!stack.empty() && stack.back().node->kind == Node::kMapping && !stack.back().has_key) {
          return Fail(line, "mapping keys must be strings");
        }
        Node n;
        n.kind = e.type == YAML_SEQUENCE_START_EVENT ? Node::kSequence : Node::kMapping;
        n.line = line;
        Node* placed = attach(std::move(n));
        if (placed == nullptr) return Fail(line, "document too large");
        Open open;
        open.node = placed;
        stack.push_back(std::move(open));
        break;
      }
      case YAML_SEQUENCE_END_EVENT:
      case YAML_MAPPING_END_EVENT:
        if (!stack.empty()) stack.pop_back();
        break;
      default:
        break;
    }
  }
}

// --- Typed accessors -------------------------------------------------------

bool IsNull(const Node& n) {
  return n.kind == Node::kScalar && n.plain &&
         (n.value.empty() || n.value == "~" || n.value == "null" || n.value == "Null" ||
          n.value == "NULL");
}

std::string Quote(std::string_view s) { return "\"" + std::string(s) + "\""; }

Status GetString(const Node& n, std::string_view key, std::string* out) {
  if (IsNull(n)) {
    out->clear();
    return Status::Ok();
  }
  if (n.kind != Node::kScalar) return Fail(n.line, std::string(key) + ": want a string");
  *out = n.value;
  return Status::Ok();
}

Status GetBool(const Node& n, std::string_view key, bool* out) {
  if (IsNull(n)) return Status::Ok();
  static const std::set<std::string, std::less<>> kTrue = {"true", "True", "TRUE", "yes", "Yes",
                                                           "YES",  "on",   "On",   "ON"};
  static const std::set<std::string, std::less<>> kFalse = {"false", "False", "FALSE", "no", "No",
                                                            "NO",    "off",   "Off",   "OFF"};
  if (n.kind == Node::kScalar && n.plain) {
    if (kTrue.count(n.value) != 0) {
      *out = true;
      return Status::Ok();
    }
    if (kFalse.count(n.value) != 0) {
      *out = false;
      return Status::Ok();
    }
  }
  return Fail(n.line, std::string(key) + ": want true or false");
}

Status GetInt(const Node& n, std::string_view key, int* out) {
  if (IsNull(n)) return Status::Ok();
  if (n.kind == Node::kScalar && n.plain && !n.value.empty() && n.value.size() <= 9 &&
      n.value.find_first_not_of("0123456789") == std::string::npos) {
    *out = std::stoi(n.value);
    return Status::Ok();
  }
  return Fail(n.line, std::string(key) + ": want a non-negative integer");
}

Status GetStringList(const Node& n, std::string_view key, std::vector<std::string>* out) {
  out->clear();
  if (IsNull(n)) return Status::Ok();
  if (n.kind != Node::kSequence) return Fail(n.line, std::string(key) + ": want a list");
  for (const Node& item : n.items) {
    std::string s;
    if (item.kind != Node::kScalar) {
      return Fail(item.line, std::string(key) + ": want a list of strings");
    }
    if (Status st = GetString(item, key, &s); !st.ok()) return st;
    out->push_back(std::move(s));
  }
  return Status::Ok();
}

// Visits the entries of a mapping (null = no entries), refusing duplicate
// keys and keys outside `known`.
template <typename Fn>
Status ForEachEntry(const Node& n, std::string_view where, const std::vector<std::string>& known,
                    Fn&& fn) {
  if (IsNull(n)) return Status::Ok();
  if (n.kind != Node::kMapping) {
    return Fail(n.line, (where.empty() ? std::string("top level") : std::string(where)) +
                            ": want a mapping");
  }
  std::set<std::string, std::less<>> seen;
  for (const auto& [k, v] : n.entries) {
    if (!seen.insert(k.value).second) {
      return Fail(k.line, "duplicate key " + Quote(k.value) +
                              (where.empty() ? "" : " in " + std::string(where)));
    }
    if (!known.empty()) {
      bool ok = false;
      std::string list;
      for (const auto& name : known) {
        ok = ok || name == k.value;
        list += (list.empty() ? "" : ", ") + name;
      }
      if (!ok) {
        return Fail(k.line, "unknown key " + Quote(k.value) +
                                (where.empty() ? "" : " in " + std::string(where)) +
                                " (known: " + list + ")");
      }
    }
    if (Status s = fn(k, v); !s.ok()) return s;
  }
  return Status::Ok();
}

std::string JoinDir(std::string_view dir, const std::string& path) {
  if (path.empty() || path.front() == '/' || dir.empty()) return path;
  std::string d(dir);
  if (d.back() != '/') d += '/';
  return d + path;
}

// --- Value domains ---------------------------------------------------------

constexpr const char* kTls13Suites[] = {
    "TLS_AES_128_GCM_SHA256",
    "TLS_AES_256_GCM_SHA384",
    "TLS_CHACHA20_POLY1305_SHA256",
};
constexpr const char* kTls12Suites[] = {
    "TLS_RSA_WITH_AES_128_CBC_SHA",
    "TLS_RSA_WITH_AES_256_CBC_SHA",
    "TLS_RSA_WITH_AES_128_GCM_SHA256",
    "TLS_RSA_WITH_AES_256_GCM_SHA384",
    "TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA",
    "TLS_ECDHE_ECDSA_WITH_AES_256_CBC_SHA",
    "TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA",
    "TLS_ECDHE_RSA_WITH_AES_256_CBC_SHA",
    "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256",
    "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256",
    "TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384",
    "TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384",
    "TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256",
    "TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256",
};

bool ParseTlsVersion(std::string_view s, int* out) {
  if (s == "TLS10")
    *out = kTls10;
  else if (s == "TLS11")
    *out = kTls11;
  else if (s == "TLS12")
    *out = kTls12;
  else if (s == "TLS13")
    *out = kTls13;
  else
    return false;
  return true;
}

bool ParseClientAuth(std::string_view s, ClientAuth* out) {
  if (s.empty() || s == "NoClientCert")
    *out = ClientAuth::kNone;
  else if (s == "RequestClientCert")
    *out = ClientAuth::kRequest;
  else if (s == "RequireAnyClientCert" || s == "RequireClientCert")
    *out = ClientAuth::kRequireAny;
  else if (s == "VerifyClientCertIfGiven")
    *out = ClientAuth::kVerifyIfGiven;
  else if (s == "RequireAndVerifyClientCert")
    *out = ClientAuth::kRequireAndVerify;
  else
    return false;
  return true;
}

bool HasControlChar(std::string_view s) {
  for (char c : s) {
    const auto u = static_cast<unsigned char>(c);
    if ((u < 0x20 && c != '\t') || u == 0x7f) return true;
  }
  return false;
}

Status ParseTls(const Node& n, std::string_view base_dir, TlsServerConfig* tls) {
  const std::vector<std::string> known = {"cert",
                                          "key",
                                          "client_ca",
                                          "cert_file",
                                          "key_file",
                                          "client_auth_type",
                                          "client_ca_file",
                                          "client_allowed_sans",
                                          "min_version",
                                          "max_version",
                                          "cipher_suites",
                                          "prefer_server_cipher_suites",
                                          "curve_preferences"};
  const std::string where = "tls_server_config";
  std::string client_auth, min_version, max_version;
  size_t client_auth_line = n.line, min_line = n.line, sans_line = n.line;
  bool sans_set = false;
  Status s = ForEachEntry(n, where, known, [&](const Node& k, const Node& v) -> Status {
    const std::string key = where + "." + k.value;
    if (k.value == "cert") return GetString(v, key, &tls->cert);
    if (k.value == "key") return GetString(v, key, &tls->key);
    if (k.value == "client_ca") return GetString(v, key, &tls->client_ca);
    if (k.value == "cert_file") return GetString(v, key, &tls->cert_file);
    if (k.value == "key_file") return GetString(v, key, &tls->key_file);
    if (k.value == "client_ca_file") return GetString(v, key, &tls->client_ca_file);
    if (k.value == "client_auth_type") {
      client_auth_line = v.line;
      return GetString(v, key, &client_auth);
    }
    if (k.value == "client_allowed_sans") {
      sans_line = v.line;
      sans_set = !IsNull(v);
      return GetStringList(v, key, &tls->client_allowed_sans);
    }
    if (k.value == "min_version") {
      min_line = v.line;
      return GetString(v, key, &min_version);
    }
    if (k.value == "max_version") return GetString(v, key, &max_version);
    if (k.value == "prefer_server_cipher_suites") {
      return GetBool(v, key, &tls->prefer_server_cipher_suites);
    }
    if (k.value == "cipher_suites") {
      if (Status st = GetStringList(v, key, &tls->cipher_suites); !st.ok()) return st;
      for (const auto& c : tls->cipher_suites) {
        if (!IsKnownCipherSuite(c)) return Fail(v.line, key + ": unknown cipher " + Quote(c));
      }
      return Status::Ok();
    }
    if (k.value == "curve_preferences") {
      if (Status st = GetStringList(v, key, &tls->curve_preferences); !st.ok()) return st;
      for (const auto& c : tls->curve_preferences) {
        if (c != "CurveP256" && c != "CurveP384" && c != "CurveP521" && c != "X25519") {
          return Fail(v.line, key + ": unknown curve " + Quote(c) +
                                  " (known: CurveP256, CurveP384, CurveP521, X25519)");
        }
      }
      return Status::Ok();
    }
    return Status::Ok();
  });
  if (!s.ok()) return s;

  if (!ParseClientAuth(client_auth, &tls->client_auth)) {
    return Fail(client_auth_line,
                "tls_server_config.client_auth_type: invalid " + Quote(client_auth) +
                    " (want NoClientCert, RequestClientCert, RequireAnyClientCert, "
                    "VerifyClientCertIfGiven or RequireAndVerifyClientCert)");
  }
  if (!min_version.empty() && !ParseTlsVersion(min_version, &tls->min_version)) {
    return Fail(min_line, "tls_server_config.min_version: unknown TLS version " +
                              Quote(min_version) + " (want TLS10, TLS11, TLS12 or TLS13)");
  }
  if (!max_version.empty() && !ParseTlsVersion(max_version, &tls->max_version)) {
    return Fail(min_line, "tls_server_config.max_version: unknown TLS version " +
                              Quote(max_version) + " (want TLS10, TLS11, TLS12 or TLS13)");
  }
  if (!tls->enabled()) return Status::Ok();

  const size_t line = n.line;
  if (!tls->cert.empty() && !tls->cert_file.empty()) {
    return Fail(line, "tls_server_config: set cert or cert_file, not both");
  }
  if (!tls->key.empty() && !tls->key_file.empty()) {
    return Fail(line, "tls_server_config: set key or key_file, not both");
  }
  if (!tls->client_ca.empty() && !tls->client_ca_file.empty()) {
    return Fail(line, "tls_server_config: set client_ca or client_ca_file, not both");
  }
  if (tls->cert.empty() && tls->cert_file.empty()) {
    return Fail(line, "tls_server_config: missing cert_file (or cert)");
  }
  if (tls->key.empty() && tls->key_file.empty()) {
    return Fail(line, "tls_server_config: missing key_file (or key)");
  }
  const bool has_ca = !tls->client_ca.empty() || !tls->client_ca_file.empty();
  if (has_ca && tls->client_auth == ClientAuth::kNone) {
    return Fail(line,
                "tls_server_config: client_ca_file is set without client_auth_type (want "
                "RequireAndVerifyClientCert for mTLS)");
  }
  if (!has_ca && (tls->client_auth == ClientAuth::kVerifyIfGiven ||
                  tls->client_auth == ClientAuth::kRequireAndVerify)) {
    return Fail(client_auth_line,
                "tls_server_config.client_auth_type: " + client_auth +
                    " needs client_ca_file to verify client certificates against");
  }
  if (sans_set && tls->client_auth != ClientAuth::kRequireAny &&
      tls->client_auth != ClientAuth::kRequireAndVerify) {
    return Fail(sans_line,
                "tls_server_config.client_allowed_sans requires client_auth_type "
                "RequireAnyClientCert or RequireAndVerifyClientCert");
  }
  if (tls->min_version > tls->max_version) {
    return Fail(min_line, "tls_server_config: min_version is above max_version");
  }
  tls->cert_file = JoinDir(base_dir, tls->cert_file);
  tls->key_file = JoinDir(base_dir, tls->key_file);
  tls->client_ca_file = JoinDir(base_dir, tls->client_ca_file);
  return Status::Ok();
}

Status ParseHttp(const Node& n, WebConfig* config) {
  const std::string where = "http_server_config";
  return ForEachEntry(n, where, {"http2", "headers"}, [&](const Node& k, const Node& v) -> Status {
    if (k.value == "http2") return GetBool(v, where + ".http2", &config->http2);
    // headers: the exporter-toolkit's fixed set, values checked where enumerated.
    const std::string hw = where + ".headers";
    return ForEachEntry(v, hw, {}, [&](const Node& hk, const Node& hv) -> Status {
      std::string value;
      if (Status s = GetString(hv, hw + "." + hk.value, &value); !s.ok()) return s;
      const std::string& name = hk.value;
      if (name == "X-Content-Type-Options") {
        if (!value.empty() && value != "nosniff") {
          return Fail(hv.line, "invalid value for X-Content-Type-Options: " + Quote(value) +
                                   " (want nosniff)");
        }
      } else if (name == "X-Frame-Options") {
        if (!value.empty() && value != "deny" && value != "sameorigin") {
          return Fail(hv.line, "invalid value for X-Frame-Options: " + Quote(value) +
                                   " (want deny or sameorigin)");
        }
      } else if (name != "Strict-Transport-Security" && name != "X-XSS-Protection" &&
                 name != "Content-Security-Policy") {
        return Fail(hk.line, "HTTP header " + Quote(name) + " can not be configured");
      }
      if (HasControlChar(value)) {
        return Fail(hv.line, "HTTP header " + Quote(name) + ": control characters in value");
      }
      if (!value.empty()) config->headers.emplace_back(name, value);
      return Status::Ok();
    });
  });
}

Status ParseUsers(const Node& n, WebConfig* config) {
  return ForEachEntry(n, "basic_auth_users", {}, [&](const Node& k, const Node& v) -> Status {
    if (k.value.empty()) return Fail(k.line, "basic_auth_users: empty user name");
    if (k.value.find(':') != std::string::npos || HasControlChar(k.value)) {
      return Fail(k.line, "basic_auth_users: user name " + Quote(k.value) +
                              " contains ':' or a control character");
    }
    std::string hash;
    if (Status s = GetString(v, "basic_auth_users." + k.value, &hash); !s.ok()) return s;
    if (!IsBcryptHash(hash)) {
      return Fail(v.line, "basic_auth_users: password of " + Quote(k.value) +
                              " is not a bcrypt hash ($2a$, $2b$ or $2y$, cost 04-31, 60 "
                              "characters)");
    }
    config->basic_auth_users.emplace(k.value, hash);
    return Status::Ok();
  });
}

Status ParseRateLimit(const Node& n, WebConfig* config) {
  const std::string where = "rate_limit";
  size_t line = n.line;
  Status s =
      ForEachEntry(n, where, {"interval", "burst"}, [&](const Node& k, const Node& v) -> Status {
        line = v.line;
        if (k.value == "burst") return GetInt(v, where + ".burst", &config->rate_limit_burst);
        std::string text;
        if (Status st = GetString(v, where + ".interval", &text); !st.ok()) return st;
        if (text.empty()) return Status::Ok();
        auto d = ParseGoDuration(text);
        if (!d.ok()) return Fail(v.line, where + ".interval: " + d.status().context());
        config->rate_limit_interval = d.value();
        return Status::Ok();
      });
  if (!s.ok()) return s;
  if (config->rate_limit_interval.count() > 0 && config->rate_limit_burst < 1) {
    return Fail(line, "rate_limit: burst must be at least 1 when interval is set");
  }
  return Status::Ok();
}

}  // namespace

bool IsKnownCipherSuite(std::string_view name) {
  for (const char* s : kTls12Suites) {
    if (name == s) return true;
  }
  return IsTls13CipherSuite(name);
}

bool IsTls13CipherSuite(std::string_view name) {
  for (const char* s : kTls13Suites) {
    if (name == s) return true;
  }
  return false;
}

bool IsBcryptHash(std::string_view h) {
  // $2b$10$ + 22 salt + 31 hash characters.
  if (h.size() != 60 || h[0] != '$' || h[1] != '2' || h[3] != '$' || h[6] != '$') return false;
  if (h[2] != 'a' && h[2] != 'b' && h[2] != 'y') return false;
  if (h[4] < '0' || h[4] > '3' || h[5] < '0' || h[5] > '9') return false;
  const int cost = (h[4] - '0') * 10 + (h[5] - '0');
  if (cost < 4 || cost > 31) return false;
  for (size_t i = 7; i < h.size(); ++i) {
    const char c = h[i];
    const bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                    c == '.' || c == '/';
    if (!ok) return false;
  }
  return true;
}

Result<WebConfig> ParseWebConfig(std::string_view yaml, std::string_view base_dir) {
  if (yaml.size() > kMaxFileBytes) return Status::InvalidArgument("file larger than 1 MiB");
  Node root;
  if (Status s = BuildTree(yaml, &root); !s.ok()) return s;
  WebConfig config;
  const std::vector<std::string> known = {"tls_server_config", "http_server_config",
                                          "basic_auth_users", "rate_limit"};
  Status s = ForEachEntry(root, "", known, [&](const Node& k, const Node& v) -> Status {
    if (k.value == "tls_server_config") return ParseTls(v, base_dir, &config.tls);
    if (k.value == "http_server_config") return ParseHttp(v, &config);
    if (k.value == "basic_auth_users") return ParseUsers(v, &config);
    return ParseRateLimit(v, &config);
  });
  if (!s.ok()) return s;
  return config;
}

Result<WebConfig> LoadWebConfigFile(const std::string& path) {
  std::unique_ptr<FILE, int (*)(FILE*)> f(std::fopen(path.c_str(), "rbe"), &std::fclose);
  if (!f) return Status::FromErrno(errno, path + ": cannot open");
  std::string text;
  char buf[8192];
  size_t n = 0;
  while ((n = std::fread(buf, 1, sizeof(buf), f.get())) > 0) {
    text.append(buf, n);
    if (text.size() > kMaxFileBytes) {
      return Status::InvalidArgument(path + ": larger than 1 MiB");
    }
  }
  if (std::ferror(f.get())) return Status::IOError(path + ": read error");
  std::string dir;
  if (size_t slash = path.rfind('/'); slash != std::string::npos) {
    dir = path.substr(0, slash == 0 ? 1 : slash);
  }
  auto parsed = ParseWebConfig(text, dir);
  if (!parsed.ok()) return parsed.status().WithPrefix(path);
  return parsed;
}

}  // namespace sockdiag
