// --web.config.file for real: TLS (the terminator in front of CivetWeb) with
// a throwaway CA (openssl), curl as the client, basic auth, mTLS, the
// internal port refusing bypasses, IPv6, and bad files refused at start.

#include <sys/socket.h>

#include <algorithm>
#include <catch2/catch.hpp>
#include <chrono>
#include <fstream>
#include <string>

#include "kernel/kernel_support.h"
#include "kernel/web_support.h"

using namespace sockdiag::testing;

namespace {

const std::string kBase = "https://127.0.0.1:10061";

size_t Lines(const std::string& s) {
  size_t n = 0;
  for (char c : s) n += c == '\n';
  return n;
}

std::string TlsConfig(const TempDir& pki, const std::string& extra = "") {
  return "tls_server_config:\n  cert_file: " + (pki / "server.crt") +
         "\n  key_file: " + (pki / "server.key") + "\n" + extra;
}

bool WaitTls(const TempDir& pki, int expect = 200) {
  return WaitUntil([&] {
    return Curl({"--cacert", pki / "ca.crt", kBase + "/-/ready"}).http_code == expect;
  });
}

}  // namespace

TEST_CASE("tls: scrape over HTTPS with --cacert, plain HTTP refused on the TLS port",
          "[kernel][web][tls]") {
  EnterFreshNetns();
  TempDir pki;
  MakeTestPki(pki);
  WriteFile(pki / "web.yml", TlsConfig(pki));
  ExporterProcess exporter({"--poll.interval=200ms", "--web.config.file=" + (pki / "web.yml")});
  REQUIRE(WaitTls(pki));

  CurlResult ok = Curl({"--cacert", pki / "ca.crt", kBase + "/metrics"});
  CHECK(ok.exit_code == 0);
  CHECK(ok.http_code == 200);
  CHECK(ok.body.find("sockdiag_build_info{") != std::string::npos);
  CHECK(ok.body.find("sockdiag_collector_success{collector=\"sockets\"} 1") != std::string::npos);
  // Plain HTTP on the TLS port: the handshake fails, the connection is
  // closed, nothing is served.
  CurlResult plain = Curl({"http://127.0.0.1:10061/metrics"});
  CHECK(plain.exit_code != 0);
  CHECK(plain.http_code == 0);
  CHECK(HttpGet(10061, "/metrics").status == 0);
  CHECK(HttpGet(10061, "/metrics").body.find("sockdiag_") == std::string::npos);
  // An unknown CA is refused by the client; so is TLS 1.1 by the server.
  CHECK(Curl({kBase + "/metrics"}).exit_code == 60);
  CHECK(Curl({"--cacert", pki / "ca.crt", "--tls-max", "1.1", kBase + "/metrics"}).exit_code == 35);
  CHECK(exporter.Stderr().find("tls=true") != std::string::npos);
}

TEST_CASE("tls: min_version TLS13 refuses TLS 1.2 clients", "[kernel][web][tls]") {
  EnterFreshNetns();
  TempDir pki;
  MakeTestPki(pki);
  WriteFile(pki / "web.yml", TlsConfig(pki, "  min_version: TLS13\n"));
  ExporterProcess exporter({"--web.config.file=" + (pki / "web.yml")});
  REQUIRE(WaitTls(pki));
  CHECK(Curl({"--cacert", pki / "ca.crt", "--tls-max", "1.2", kBase + "/-/healthy"}).exit_code ==
        35);
  CHECK(Curl({"--cacert", pki / "ca.crt", "--tlsv1.3", kBase + "/-/healthy"}).http_code == 200);
}

TEST_CASE("tls: basic auth over TLS: 401 without or with a wrong password, 200 with the right one",
          "[kernel][web][tls][auth]") {
  EnterFreshNetns();
  TempDir pki;
  MakeTestPki(pki);
  WriteFile(pki / "web.yml",
            TlsConfig(pki, "basic_auth_users:\n  prometheus: " + BcryptHash("s3cr3t", 10) + "\n"));
  ExporterProcess exporter({"--poll.interval=200ms", "--web.config.file=" + (pki / "web.yml")});
  REQUIRE(WaitTls(pki, 401));
  const std::string ca = pki / "ca.crt";

  CurlResult none = Curl({"--cacert", ca, kBase + "/metrics"});
  CHECK(none.http_code == 401);
  CHECK(none.body.find("sockdiag_") == std::string::npos);
  CHECK(Curl({"--cacert", ca, "-u", "prometheus:wrong", kBase + "/metrics"}).http_code == 401);
  CHECK(Curl({"--cacert", ca, "-u", "nobody:s3cr3t", kBase + "/metrics"}).http_code == 401);
  CHECK(Curl({"--cacert", ca, "-u", "prometheus:s3cr3t", kBase + "/-/ready"}).http_code == 200);
  CurlResult right = Curl({"--cacert", ca, "-u", "prometheus:s3cr3t", kBase + "/metrics"});
  CHECK(right.http_code == 200);
  CHECK(right.body.find("sockdiag_build_info{") != std::string::npos);
  // Every path is protected, including unknown ones (no probing without credentials).
  CHECK(Curl({"--cacert", ca, kBase + "/nope"}).http_code == 401);
  CHECK(Curl({"--cacert", ca, "-u", "prometheus:s3cr3t", kBase + "/nope"}).http_code == 404);
}

TEST_CASE("tls: basic auth over plain HTTP", "[kernel][web][auth]") {
  EnterFreshNetns();
  TempDir dir;
  WriteFile(dir / "web.yml", "basic_auth_users:\n  prometheus: " + BcryptHash("pw", 10) + "\n");
  ExporterProcess exporter({"--web.config.file=" + (dir / "web.yml")});
  REQUIRE(WaitUntil([&] { return HttpGet(exporter.port(), "/-/ready").status == 401; }));
  std::string response;
  RawRequest(10061, "GET /metrics HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n", &response);
  CHECK(response.find("WWW-Authenticate: Basic realm=") != std::string::npos);
  CHECK(Curl({"-u", "prometheus:bad", "http://127.0.0.1:10061/metrics"}).http_code == 401);
  CHECK(Curl({"-u", "prometheus:pw", "http://127.0.0.1:10061/metrics"}).http_code == 200);
  CHECK(Curl({"-u", "prometheus:pw", "http://127.0.0.1:10061/"}).http_code == 200);
  CHECK(Curl({"-u", "prometheus:pw", "http://127.0.0.1:10061/nope"}).http_code == 404);
  // Liveness probes need no credentials; everything else does.
  CHECK(Curl({"http://127.0.0.1:10061/-/healthy"}).http_code == 200);
  CHECK(Curl({"http://127.0.0.1:10061/"}).http_code == 401);
  CHECK(Curl({"http://127.0.0.1:10061/nope"}).http_code == 401);
  CHECK(Curl({"-X", "POST", "http://127.0.0.1:10061/metrics"}).http_code == 401);
  // Not base64, no colon, another scheme: 401, never a crash.
  for (const char* header : {"Authorization: Basic !!!!", "Authorization: Basic cHJvbWV0aGV1cw==",
                             "Authorization: Bearer cHJvbWV0aGV1czpwdw==",
                             "Authorization: basic cHJvbWV0aGV1czpwdw=="}) {
    INFO(header);
    const int want = std::string(header).find("basic cHJv") != std::string::npos ? 200 : 401;
    CHECK(Curl({"-H", header, "http://127.0.0.1:10061/metrics"}).http_code == want);
  }
}

TEST_CASE("tls: mTLS requires a client certificate from the configured CA",
          "[kernel][web][tls][mtls]") {
  EnterFreshNetns();
  TempDir pki;
  MakeTestPki(pki);
  WriteFile(pki / "web.yml",
            TlsConfig(pki, "  client_auth_type: RequireAndVerifyClientCert\n  client_ca_file: " +
                               (pki / "ca.crt") + "\n"));
  ExporterProcess exporter({"--poll.interval=200ms", "--web.config.file=" + (pki / "web.yml")});
  const std::string ca = pki / "ca.crt";
  auto with = [&](const std::string& name, const std::string& path = "/metrics") {
    return Curl({"--cacert", ca, "--cert", pki / (name + ".crt"), "--key", pki / (name + ".key"),
                 kBase + path});
  };
  REQUIRE(WaitUntil([&] { return with("client", "/-/ready").http_code == 200; }));
  CHECK(with("client").body.find("sockdiag_build_info{") != std::string::npos);
  CurlResult none = Curl({"--cacert", ca, kBase + "/metrics"});
  CHECK(none.exit_code != 0);
  CHECK(none.http_code == 0);
  CurlResult rogue = with("rogue");
  CHECK(rogue.exit_code != 0);
  CHECK(rogue.http_code == 0);
  CHECK(with("other").http_code == 200);  // Same CA, no SAN restriction configured.
}

TEST_CASE("tls: client_allowed_sans admits only certificates naming an allowed SAN",
          "[kernel][web][tls][mtls]") {
  EnterFreshNetns();
  TempDir pki;
  MakeTestPki(pki);
  WriteFile(pki / "web.yml",
            TlsConfig(pki, "  client_auth_type: RequireAndVerifyClientCert\n  client_ca_file: " +
                               (pki / "ca.crt") + "\n  client_allowed_sans: [prometheus]\n"));
  ExporterProcess exporter({"--web.config.file=" + (pki / "web.yml")});
  auto with = [&](const std::string& name) {
    return Curl({"--cacert", pki / "ca.crt", "--cert", pki / (name + ".crt"), "--key",
                 pki / (name + ".key"), kBase + "/-/healthy"});
  };
  REQUIRE(WaitUntil([&] { return with("client").http_code == 200; }));
  CHECK(with("other").http_code == 0);
  CHECK(with("rogue").http_code == 0);
}

TEST_CASE("web config: bad files fail at start with one line and exit 2", "[kernel][web][flags]") {
  EnterFreshNetns();
  TempDir pki;
  MakeTestPki(pki);
  WriteFile(pki / "garbage.pem", "not a certificate\n");
  struct Case {
    std::string yaml;
    std::string mention;
  };
  const std::vector<Case> cases = {
      {"", "MISSING"},  // The file itself is missing.
      {"tls_config:\n  cert_file: x\n", "unknown key \"tls_config\""},
      {"basic_auth_users:\n  alice: secret\n", "not a bcrypt hash"},
      {"basic_auth_users: [\n", "invalid YAML"},
      {TlsConfig(pki).substr(0, TlsConfig(pki).find("  key_file")), "missing key_file"},
      {"tls_server_config:\n  cert_file: /nonexistent.crt\n  key_file: " + (pki / "server.key") +
           "\n",
       "No such file"},
      {"tls_server_config:\n  cert_file: " + (pki / "garbage.pem") +
           "\n  key_file: " + (pki / "server.key") + "\n",
       "cannot load certificate"},
      {"tls_server_config:\n  cert_file: " + (pki / "server.crt") +
           "\n  key_file: " + (pki / "client.key") + "\n",
       "does not match"},
      {TlsConfig(pki, "  client_auth_type: RequireAndVerifyClientCert\n  client_ca_file: " +
                          (pki / "garbage.pem") + "\n"),
       "no PEM certificate"},
      {"http_server_config:\n  headers:\n    X-Frame-Options: deny\n", "not supported"},
  };
  for (const Case& c : cases) {
    const std::string path = c.mention == "MISSING" ? pki / "missing.yml" : pki / "web.yml";
    if (c.mention != "MISSING") WriteFile(path, c.yaml);
    INFO("config:\n" << c.yaml);
    RunResult r =
        RunExporter({"--web.listen-address=127.0.0.1:10061", "--web.config.file=" + path});
    INFO("stderr: " << r.err);
    CHECK(r.exit_code == 2);
    CHECK(Lines(r.err) == 1);
    CHECK(r.err.find("--web.config.file") != std::string::npos);
    CHECK(r.err.find(c.mention == "MISSING" ? "No such file" : c.mention) != std::string::npos);
  }
}

namespace {

// CivetWeb's internal port behind the terminator: the one other listener
// in the test's namespace.
uint16_t InternalPort(const TempDir& dir) {
  REQUIRE(Shell("ss -Htln > " + (dir / "ss")) == 0);
  std::ifstream in(dir / "ss");
  std::string line;
  uint16_t found = 0;
  while (std::getline(in, line)) {
    const size_t at = line.find("127.0.0.1:");
    if (at == std::string::npos) continue;
    const int port = std::atoi(line.c_str() + at + 10);
    if (port != 10061) found = static_cast<uint16_t>(port);
  }
  return found;
}

}  // namespace

TEST_CASE("tls: CivetWeb's internal port refuses connections not from the terminator",
          "[kernel][web][tls]") {
  EnterFreshNetns();
  TempDir pki;
  MakeTestPki(pki);
  WriteFile(pki / "web.yml",
            TlsConfig(pki, "  client_auth_type: RequireAndVerifyClientCert\n  client_ca_file: " +
                               (pki / "ca.crt") + "\n"));
  ExporterProcess exporter({"--poll.interval=200ms", "--web.config.file=" + (pki / "web.yml")});
  const std::string ca = pki / "ca.crt";
  auto mtls = [&](const std::string& path) {
    return Curl(
        {"--cacert", ca, "--cert", pki / "client.crt", "--key", pki / "client.key", kBase + path});
  };
  REQUIRE(WaitUntil([&] { return mtls("/-/ready").http_code == 200; }));
  const uint16_t internal = InternalPort(pki);
  INFO("internal port " << internal);
  REQUIRE(internal != 0);
  // Direct, from 127.0.0.1 and from another loopback address: 403 on every path.
  for (const char* path : {"/metrics", "/-/healthy", "/", "/nope"}) {
    HttpResponse r = HttpGet(internal, path);
    CHECK(r.status == 403);
    CHECK(r.body.find("sockdiag_") == std::string::npos);
  }
  Fd other = Connect({"127.0.0.1", internal}, "127.0.0.2");
  REQUIRE(SendAll(other.get(), "GET /metrics HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n"));
  CHECK(StatusCode(ReadUntilClose(other.get(), std::chrono::seconds(5))) == 403);
  // Through the terminator with the client certificate: served.
  CHECK(mtls("/metrics").body.find("sockdiag_build_info{") != std::string::npos);
}

TEST_CASE("tls: 1000 idle TLS connections are cut for real scrapes, slow handshakes time out",
          "[kernel][web][tls][abuse]") {
  EnterFreshNetns();
  TempDir pki;
  MakeTestPki(pki);
  WriteFile(pki / "web.yml", TlsConfig(pki));
  ExporterProcess exporter({"--poll.interval=1s", "--web.config.file=" + (pki / "web.yml")});
  REQUIRE(WaitTls(pki));
  const auto opened = std::chrono::steady_clock::now();
  std::vector<Fd> idle;
  for (int i = 0; i < 1000; ++i) idle.push_back(Connect({"127.0.0.1", 10061}));
  // At the 256-connection cap the longest-waiting idle one is cut per new
  // connection: scrapes get through at once.
  double worst = 0;
  for (int i = 0; i < 10; ++i) {
    const auto t0 = std::chrono::steady_clock::now();
    CurlResult r = Curl({"--cacert", pki / "ca.crt", kBase + "/metrics"});
    worst = std::max(worst,
                     std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
    CHECK(r.http_code == 200);
  }
  INFO("slowest of 10 TLS scrapes with 1000 idle TLS connections open: " << worst << " s");
  CHECK(worst < 2.5);  // Measured 0.25 s unloaded; far inside a 10 s scrape timeout.
  // Every idle connection ends: cut at the cap, or at the 10 s handshake timeout.
  int closed = 0;
  for (const Fd& fd : idle) {
    const auto left = std::chrono::seconds(14) - (std::chrono::steady_clock::now() - opened);
    closed += ReadUntilClose(fd.get(),
                             std::max(std::chrono::milliseconds(1),
                                      std::chrono::duration_cast<std::chrono::milliseconds>(left)))
                      .empty()
                  ? 1
                  : 0;
  }
  CHECK(closed == 1000);
}

TEST_CASE("listen address: IPv6 needs TLS (this CivetWeb has no IPv6), the terminator serves it",
          "[kernel][web][tls][flags]") {
  EnterFreshNetns();
  RunResult r = RunExporter({"--web.listen-address=[::1]:10061"});
  INFO(r.err);
  CHECK(r.exit_code == 2);
  CHECK(Lines(r.err) == 1);
  CHECK(r.err.find("no IPv6 support") != std::string::npos);
  CHECK(r.err.find("--web.listen-address") != std::string::npos);

  TempDir pki;
  MakeTestPki(pki);
  WriteFile(pki / "web.yml", TlsConfig(pki));
  ExporterProcess exporter(
      {"--web.listen-address=[::1]:10061", "--web.config.file=" + (pki / "web.yml")});
  REQUIRE(WaitUntil([&] {
    return Curl({"-g", "--cacert", pki / "ca.crt", "https://[::1]:10061/-/ready"}).http_code == 200;
  }));
  CHECK(Curl({"-g", "--cacert", pki / "ca.crt", "https://[::1]:10061/metrics"})
            .body.find("sockdiag_build_info{") != std::string::npos);
  CHECK(Curl({"--cacert", pki / "ca.crt", kBase + "/-/healthy"}).exit_code == 7);  // Not IPv4.
}

TEST_CASE("web config: rate_limit answers 429 beyond the burst, before any password check",
          "[kernel][web][auth]") {
  EnterFreshNetns();
  TempDir dir;
  WriteFile(dir / "web.yml", "basic_auth_users:\n  prometheus: " + BcryptHash("pw", 10) +
                                 "\nrate_limit:\n  interval: 1m\n  burst: 3\n");
  ExporterProcess exporter({"--web.config.file=" + (dir / "web.yml")});
  REQUIRE(WaitUntil([&] { return HttpGet(exporter.port(), "/-/healthy").status == 200; }));
  // One token was spent above; two left in this minute.
  CHECK(Curl({"-u", "prometheus:pw", "http://127.0.0.1:10061/metrics"}).http_code == 200);
  CHECK(Curl({"-u", "prometheus:bad", "http://127.0.0.1:10061/metrics"}).http_code == 401);
  CurlResult limited = Curl({"-u", "prometheus:pw", "http://127.0.0.1:10061/metrics"});
  CHECK(limited.http_code == 429);
  CHECK(limited.body.find("sockdiag_") == std::string::npos);
}
