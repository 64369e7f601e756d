#include "web/web_config.h"

#include <unistd.h>

#include <catch2/catch.hpp>
#include <cstdio>
#include <fstream>
#include <string>

using namespace sockdiag;

namespace {

constexpr const char* kHashA = "$2y$10$mDwo.lAisC94iLAyP81MCesa29IzH37oigHC/42V2pdJlUprsJPze";
constexpr const char* kHashB = "$2b$12$hNf2lSsxfm0.i4a.1kVpSOVyBCfIB51VRjgBUyv6kdnyTlgWj81Ay";

// The message of a parse that must fail; FAILs when it succeeds.
std::string ErrorOf(const std::string& yaml) {
  auto r = ParseWebConfig(yaml);
  INFO("yaml:\n" << yaml);
  REQUIRE_FALSE(r.ok());
  CHECK(r.status().context().find('\n') == std::string::npos);
  return r.status().context();
}

bool Contains(const std::string& s, const std::string& part) {
  return s.find(part) != std::string::npos;
}

}  // namespace

TEST_CASE("web config: every documented field is parsed", "[web_config]") {
  const std::string yaml = std::string(R"(
tls_server_config:
  cert_file: server.crt
  key_file: /etc/sockdiag/server.key
  client_auth_type: RequireAndVerifyClientCert
  client_ca_file: ca.crt
  client_allowed_sans: [prometheus.example, 10.0.0.1]
  min_version: TLS13
  max_version: TLS13
  cipher_suites:
    - TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256
    - TLS_AES_256_GCM_SHA384
  prefer_server_cipher_suites: false
  curve_preferences: [X25519, CurveP256]
http_server_config:
  http2: false
  headers:
    X-Frame-Options: deny
    Strict-Transport-Security: max-age=31536000
basic_auth_users:
  alice: )") + kHashA + R"(
  "bob": ')" + kHashB + R"('
rate_limit:
  interval: 1s
  burst: 20
)";
  auto r = ParseWebConfig(yaml, "/etc/sockdiag");
  INFO(r.status().ToString());
  REQUIRE(r.ok());
  const WebConfig& c = r.value();
  CHECK(c.tls.enabled());
  CHECK(c.tls.cert_file == "/etc/sockdiag/server.crt");
  CHECK(c.tls.key_file == "/etc/sockdiag/server.key");
  CHECK(c.tls.client_ca_file == "/etc/sockdiag/ca.crt");
  CHECK(c.tls.client_auth == ClientAuth::kRequireAndVerify);
  CHECK(c.tls.client_allowed_sans == std::vector<std::string>{"prometheus.example", "10.0.0.1"});
  CHECK(c.tls.min_version == kTls13);
  CHECK(c.tls.max_version == kTls13);
  CHECK(c.tls.cipher_suites.size() == 2);
  CHECK_FALSE(c.tls.prefer_server_cipher_suites);
  CHECK(c.tls.curve_preferences == std::vector<std::string>{"X25519", "CurveP256"});
  CHECK_FALSE(c.http2);
  CHECK(c.headers.size() == 2);
  REQUIRE(c.basic_auth_users.size() == 2);
  CHECK(c.basic_auth_users.at("alice") == kHashA);
  CHECK(c.basic_auth_users.at("bob") == kHashB);
  CHECK(c.rate_limit_interval == std::chrono::seconds(1));
  CHECK(c.rate_limit_burst == 20);
}

TEST_CASE("web config: empty and null sections mean plain HTTP without auth", "[web_config]") {
  for (const char* yaml :
       {"", "\n# nothing\n", "tls_server_config:\nbasic_auth_users:\n", "{}", "---\n"}) {
    INFO("yaml: " << yaml);
    auto r = ParseWebConfig(yaml);
    REQUIRE(r.ok());
    CHECK_FALSE(r.value().tls.enabled());
    CHECK(r.value().basic_auth_users.empty());
    CHECK(r.value().tls.min_version == kTls12);  // exporter-toolkit's default.
  }
}

TEST_CASE("web config: unknown and duplicate keys are errors with a line number", "[web_config]") {
  std::string e = ErrorOf("basic_auth_users: {}\ntls_config:\n  cert_file: x\n");
  CHECK(Contains(e, "line 2"));
  CHECK(Contains(e, "unknown key \"tls_config\""));
  CHECK(Contains(e, "tls_server_config"));  // The known keys are listed.

  e = ErrorOf("tls_server_config:\n  cert_file: a\n  key_file: b\n  certfile: c\n");
  CHECK(Contains(e, "line 4"));
  CHECK(Contains(e, "unknown key \"certfile\" in tls_server_config"));

  e = ErrorOf(std::string("basic_auth_users:\n  a: ") + kHashA + "\n  a: " + kHashA + "\n");
  CHECK(Contains(e, "duplicate key \"a\""));
  CHECK(Contains(e, "line 3"));

  e = ErrorOf("http_server_config:\n  http3: true\n");
  CHECK(Contains(e, "unknown key \"http3\""));
  e = ErrorOf("rate_limit:\n  interval: 1s\n  burst: 1\n  jitter: 1\n");
  CHECK(Contains(e, "unknown key \"jitter\""));
}

TEST_CASE("web config: wrong types and syntax errors", "[web_config]") {
  CHECK(Contains(ErrorOf("- a\n- b\n"), "want a mapping"));
  CHECK(Contains(ErrorOf("tls_server_config: [a]\n"), "tls_server_config: want a mapping"));
  CHECK(Contains(ErrorOf("tls_server_config:\n  cert_file: [a]\n  key_file: b\n"),
                 "cert_file: want a string"));
  CHECK(Contains(ErrorOf("http_server_config:\n  http2: maybe\n"), "want true or false"));
  CHECK(Contains(ErrorOf("http_server_config:\n  http2: \"true\"\n"), "want true or false"));
  CHECK(Contains(ErrorOf("rate_limit:\n  interval: 1s\n  burst: -1\n"), "non-negative integer"));
  CHECK(Contains(ErrorOf("tls_server_config:\n  cipher_suites: TLS_AES_128_GCM_SHA256\n"),
                 "want a list"));
  std::string e = ErrorOf("basic_auth_users:\n  alice: \"unterminated\n");
  CHECK(Contains(e, "invalid YAML"));
  e = ErrorOf("tls_server_config:\n  cert_file: a\n key_file: b\n");
  CHECK(Contains(e, "line 3"));
  CHECK(Contains(ErrorOf("? [a, b]\n: c\n"), "keys must be strings"));
}

TEST_CASE("web config: aliases, deep nesting and multiple documents are refused", "[web_config]") {
  CHECK(Contains(ErrorOf("a: &x [1]\nb: *x\n"), "aliases are not supported"));
  std::string deep(1000, '[');
  CHECK(Contains(ErrorOf("x: " + deep), "nested too deeply"));
  CHECK(Contains(ErrorOf("basic_auth_users: {}\n---\nbasic_auth_users: {}\n"),
                 "more than one YAML document"));
  CHECK(Contains(ErrorOf(std::string(1 << 20 | 1, '#')), "larger than 1 MiB"));
}

TEST_CASE("web config: basic_auth_users need bcrypt hashes", "[web_config]") {
  CHECK(Contains(ErrorOf("basic_auth_users:\n  alice: secret\n"),
                 "password of \"alice\" is not a bcrypt hash"));
  CHECK(Contains(ErrorOf("basic_auth_users:\n  alice: $6$salt$abcdef\n"), "not a bcrypt hash"));
  CHECK(Contains(ErrorOf("basic_auth_users:\n  alice:\n"), "not a bcrypt hash"));
  CHECK(Contains(ErrorOf(std::string("basic_auth_users:\n  \"a:b\": ") + kHashA + "\n"),
                 "contains ':'"));
  CHECK(Contains(ErrorOf(std::string("basic_auth_users:\n  \"\": ") + kHashA + "\n"),
                 "empty user name"));
}

TEST_CASE("web config: IsBcryptHash accepts $2a/$2b/$2y with cost 04-31 only", "[web_config]") {
  CHECK(IsBcryptHash(kHashA));
  CHECK(IsBcryptHash(kHashB));
  std::string h = kHashA;
  h[2] = 'a';
  CHECK(IsBcryptHash(h));
  h[2] = 'x';
  CHECK_FALSE(IsBcryptHash(h));  // $2x$: the buggy legacy variant.
  h = kHashA;
  CHECK_FALSE(IsBcryptHash(h.substr(0, 59)));
  CHECK_FALSE(IsBcryptHash(h + "a"));
  h[4] = '0';
  h[5] = '3';
  CHECK_FALSE(IsBcryptHash(h));  // Cost 3.
  h[4] = '3';
  h[5] = '2';
  CHECK_FALSE(IsBcryptHash(h));  // Cost 32.
  h = kHashA;
  h[20] = '!';
  CHECK_FALSE(IsBcryptHash(h));
  CHECK_FALSE(IsBcryptHash(""));
}

TEST_CASE("web config: TLS settings are checked for consistency", "[web_config]") {
  CHECK(Contains(ErrorOf("tls_server_config:\n  key_file: k\n"), "missing cert_file"));
  CHECK(Contains(ErrorOf("tls_server_config:\n  cert_file: c\n"), "missing key_file"));
  CHECK(Contains(ErrorOf("tls_server_config:\n  cert_file: c\n  cert: x\n  key_file: k\n"),
                 "cert or cert_file, not both"));
  CHECK(Contains(ErrorOf("tls_server_config:\n  cert_file: c\n  key_file: k\n  client_ca_file: "
                         "ca\n"),
                 "client_ca_file is set without client_auth_type"));
  CHECK(Contains(ErrorOf("tls_server_config:\n  cert_file: c\n  key_file: k\n  "
                         "client_auth_type: RequireAndVerifyClientCert\n"),
                 "needs client_ca_file"));
  CHECK(Contains(ErrorOf("tls_server_config:\n  cert_file: c\n  key_file: k\n  "
                         "client_auth_type: Sometimes\n"),
                 "client_auth_type: invalid \"Sometimes\""));
  CHECK(Contains(ErrorOf("tls_server_config:\n  cert_file: c\n  key_file: k\n  "
                         "client_ca_file: ca\n  client_auth_type: VerifyClientCertIfGiven\n  "
                         "client_allowed_sans: [x]\n"),
                 "client_allowed_sans requires"));
  CHECK(Contains(ErrorOf("tls_server_config:\n  cert_file: c\n  key_file: k\n  min_version: "
                         "TLS14\n"),
                 "unknown TLS version \"TLS14\""));
  CHECK(Contains(ErrorOf("tls_server_config:\n  cert_file: c\n  key_file: k\n  min_version: "
                         "TLS13\n  max_version: TLS12\n"),
                 "min_version is above max_version"));
  CHECK(Contains(ErrorOf("tls_server_config:\n  cert_file: c\n  key_file: k\n  cipher_suites: "
                         "[TLS_RSA_WITH_RC4_128_SHA]\n"),
                 "unknown cipher"));
  CHECK(Contains(ErrorOf("tls_server_config:\n  cert_file: c\n  key_file: k\n  "
                         "curve_preferences: [CurveP224]\n"),
                 "unknown curve"));

  // RequireAnyClientCert needs no CA; the legacy spelling is accepted.
  auto r = ParseWebConfig(
      "tls_server_config:\n  cert_file: c\n  key_file: k\n  client_auth_type: "
      "RequireClientCert\n  client_allowed_sans: [a]\n");
  REQUIRE(r.ok());
  CHECK(r.value().tls.client_auth == ClientAuth::kRequireAny);
  // Inline PEM counts as TLS settings; relative paths stay relative without a base.
  r = ParseWebConfig("tls_server_config:\n  cert: x\n  key: y\n");
  REQUIRE(r.ok());
  CHECK(r.value().tls.enabled());
  r = ParseWebConfig("tls_server_config:\n  cert_file: c\n  key_file: k\n");
  REQUIRE(r.ok());
  CHECK(r.value().tls.cert_file == "c");
}

TEST_CASE("web config: headers from the allowed set only, no control characters", "[web_config]") {
  CHECK(Contains(ErrorOf("http_server_config:\n  headers:\n    X-Powered-By: me\n"),
                 "\"X-Powered-By\" can not be configured"));
  CHECK(Contains(ErrorOf("http_server_config:\n  headers:\n    X-Frame-Options: allow\n"),
                 "invalid value for X-Frame-Options"));
  CHECK(Contains(ErrorOf("http_server_config:\n  headers:\n    X-Content-Type-Options: sniff\n"),
                 "want nosniff"));
  // Response splitting: a CR/LF in a value would start a new header.
  CHECK(Contains(
      ErrorOf("http_server_config:\n  headers:\n    Content-Security-Policy: \"a\\r\\nSet-Cookie: "
              "x\"\n"),
      "control characters"));
  auto r = ParseWebConfig(
      "http_server_config:\n  headers:\n    X-Content-Type-Options: nosniff\n    "
      "X-XSS-Protection: \"\"\n");
  REQUIRE(r.ok());
  REQUIRE(r.value().headers.size() == 1);  // Blank values are unset.
  CHECK(r.value().headers[0].first == "X-Content-Type-Options");
}

TEST_CASE("web config: rate_limit durations", "[web_config]") {
  CHECK(Contains(ErrorOf("rate_limit:\n  interval: 1s\n"), "burst must be at least 1"));
  CHECK(Contains(ErrorOf("rate_limit:\n  interval: 5\n  burst: 1\n"), "invalid duration"));
  auto r = ParseWebConfig("rate_limit:\n  interval: 0\n");
  REQUIRE(r.ok());
  CHECK(r.value().rate_limit_interval.count() == 0);

  CHECK(ParseGoDuration("1m30s").value() == std::chrono::seconds(90));
  CHECK(ParseGoDuration("1.5h").value() == std::chrono::minutes(90));
  CHECK(ParseGoDuration("250ms").value() == std::chrono::milliseconds(250));
  CHECK(ParseGoDuration("10us").value() == std::chrono::microseconds(10));
  CHECK(ParseGoDuration("3ns").value() == std::chrono::nanoseconds(3));
  CHECK_FALSE(ParseGoDuration("").ok());
  CHECK_FALSE(ParseGoDuration("-1s").ok());
  CHECK_FALSE(ParseGoDuration("1d").ok());
  CHECK_FALSE(ParseGoDuration("s").ok());
  CHECK_FALSE(ParseGoDuration("1..2s").ok());
  CHECK_FALSE(ParseGoDuration("99999999999999999999h").ok());
}

TEST_CASE("web config file: missing file, relative paths, errors name the file", "[web_config]") {
  auto missing = LoadWebConfigFile("/nonexistent/web.yml");
  REQUIRE_FALSE(missing.ok());
  CHECK(Contains(missing.status().ToString(), "/nonexistent/web.yml"));
  CHECK(Contains(missing.status().ToString(), "No such file"));

  char dir[] = "/tmp/sockdiag-webcfg-XXXXXX";
  REQUIRE(mkdtemp(dir) != nullptr);
  const std::string path = std::string(dir) + "/web.yml";
  {
    std::ofstream out(path);
    out << "tls_server_config:\n  cert_file: tls/server.crt\n  key_file: /abs/server.key\n";
  }
  auto ok = LoadWebConfigFile(path);
  REQUIRE(ok.ok());
  CHECK(ok.value().tls.cert_file == std::string(dir) + "/tls/server.crt");
  CHECK(ok.value().tls.key_file == "/abs/server.key");
  {
    std::ofstream out(path);
    out << "basic_auth_users:\n  alice: nope\n";
  }
  auto bad = LoadWebConfigFile(path);
  REQUIRE_FALSE(bad.ok());
  CHECK(bad.status().context().rfind(path + ": line 2:", 0) == 0);
  unlink(path.c_str());
  rmdir(dir);
}
