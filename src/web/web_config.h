// WebConfig: the --web.config.file of the Prometheus exporter-toolkit
// (docs/security.md has the format and an example):
//
//   tls_server_config:   cert_file/key_file (or inline cert/key), client_ca_file
//                        (or inline client_ca), client_auth_type,
//                        client_allowed_sans, min_version, max_version,
//                        cipher_suites, prefer_server_cipher_suites,
//                        curve_preferences
//   http_server_config:  http2 (accepted; HTTP/1.1 is always served), headers
//   basic_auth_users:    user -> bcrypt hash ($2a$, $2b$, $2y$)
//   rate_limit:          interval (Go duration) and burst
//
// ParseWebConfig is pure: it checks the YAML and every value (unknown or
// duplicate keys, wrong types, bad hashes, inconsistent TLS settings) but reads
// no file; loading certificates is the web server's job. Errors are
// InvalidArgument with a one-line message naming the line and the key.
//
// Thread-safety: plain values.
#pragma once

#include <chrono>
#include <cstdint>
#include <map>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "sockdiag/status.h"

namespace sockdiag {

enum class ClientAuth {
  kNone,              // NoClientCert (default)
  kRequest,           // RequestClientCert: ask, accept anything or nothing
  kRequireAny,        // RequireAnyClientCert: require one, do not verify it
  kVerifyIfGiven,     // VerifyClientCertIfGiven
  kRequireAndVerify,  // RequireAndVerifyClientCert: mTLS
};

// TLS protocol versions as on the wire (0x0301 = TLS 1.0 ... 0x0304 = TLS 1.3).
inline constexpr int kTls10 = 0x0301;
inline constexpr int kTls11 = 0x0302;
inline constexpr int kTls12 = 0x0303;
inline constexpr int kTls13 = 0x0304;

struct TlsServerConfig {
  // Paths are absolute, or made so against the config file's directory.
  std::string cert_file, key_file, client_ca_file;
  // Inline PEM alternatives to the files.
  std::string cert, key, client_ca;
  ClientAuth client_auth = ClientAuth::kNone;
  std::vector<std::string> client_allowed_sans;
  int min_version = kTls12;
  int max_version = kTls13;
  std::vector<std::string> cipher_suites;  // IANA names, as Go spells them.
  bool prefer_server_cipher_suites = true;
  std::vector<std::string> curve_preferences;  // Go names: CurveP256, X25519, ...

  // True when any TLS setting is present (then the server speaks only TLS).
  bool enabled() const {
    return !cert_file.empty() || !key_file.empty() || !client_ca_file.empty() || !cert.empty() ||
           !key.empty() || !client_ca.empty() || client_auth != ClientAuth::kNone;
  }
};

struct WebConfig {
  TlsServerConfig tls;
  bool http2 = true;  // Accepted for compatibility; only HTTP/1.1 is served.
  // Extra response headers, from the exporter-toolkit's allowed set.
  std::vector<std::pair<std::string, std::string>> headers;
  // user -> bcrypt hash. Empty: no authentication.
  std::map<std::string, std::string> basic_auth_users;
  // Token bucket over all requests; interval 0 disables it.
  std::chrono::nanoseconds rate_limit_interval{0};
  int rate_limit_burst = 0;
};

// Parses the YAML text of a web config file. Relative paths are joined to
// `base_dir` when it is not empty.
Result<WebConfig> ParseWebConfig(std::string_view yaml, std::string_view base_dir = "");

// Reads `path` (at most 1 MiB) and parses it against its own directory.
// Errors are prefixed with the path.
Result<WebConfig> LoadWebConfigFile(const std::string& path);

// "$2b$10$" + 53 characters of bcrypt's base64: the hashes Go's bcrypt and
// libxcrypt both verify.
bool IsBcryptHash(std::string_view hash);

// Go's time.ParseDuration subset: "1s", "500ms", "1m30s", "1.5h", "0".
Result<std::chrono::nanoseconds> ParseGoDuration(std::string_view text);

// Names exporter-toolkit accepts (Go's crypto/tls names).
bool IsKnownCipherSuite(std::string_view iana_name);
bool IsTls13CipherSuite(std::string_view iana_name);

}  // namespace sockdiag
