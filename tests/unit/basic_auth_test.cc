#include "web/basic_auth.h"

#include <crypt.h>

#include <catch2/catch.hpp>
#include <algorithm>
#include <chrono>
#include <string>

#include "web/web_config.h"

using namespace sockdiag;

namespace {

// A real bcrypt hash from libxcrypt, as htpasswd -B would write it.
std::string Bcrypt(const std::string& password, unsigned long cost, const char* prefix = "$2b$") {
  char setting[CRYPT_GENSALT_OUTPUT_SIZE];
  REQUIRE(crypt_gensalt_rn(prefix, cost, nullptr, 0, setting, sizeof(setting)) != nullptr);
  crypt_data data{};
  const char* h = crypt_rn(password.c_str(), setting, &data, sizeof(data));
  REQUIRE(h != nullptr);
  return h;
}

}  // namespace

TEST_CASE("basic auth: right password accepted, wrong and unknown refused", "[basic_auth]") {
  const std::string alice = Bcrypt("s3cr3t", 4);
  const std::string bob = Bcrypt("hunter2", 4, "$2y$");
  REQUIRE(IsBcryptHash(alice));
  REQUIRE(IsBcryptHash(bob));
  BasicAuth auth({{"alice", alice}, {"bob", bob}});
  CHECK(auth.users() == 2);

  CHECK_FALSE(auth.Cached("alice", "s3cr3t").has_value());
  CHECK(auth.Verify("alice", "s3cr3t"));
  CHECK(auth.Cached("alice", "s3cr3t") == std::optional<bool>(true));
  CHECK(auth.Verify("bob", "hunter2"));

  CHECK_FALSE(auth.Verify("alice", "hunter2"));
  CHECK(auth.Cached("alice", "hunter2") == std::optional<bool>(false));
  CHECK_FALSE(auth.Verify("alice", "s3cr3t "));
  CHECK_FALSE(auth.Verify("alice", ""));
  CHECK_FALSE(auth.Verify("carol", "s3cr3t"));  // Unknown user: dummy hash, refused.
  CHECK_FALSE(auth.Verify("Alice", "s3cr3t"));
  // crypt() stops at NUL: "s3cr3t\0junk" must not pass for "s3cr3t".
  CHECK_FALSE(auth.Verify("alice", std::string("s3cr3t\0junk", 11)));
}

TEST_CASE("basic auth: refused credentials never evict accepted ones", "[basic_auth]") {
  BasicAuth auth({{"alice", Bcrypt("pw", 4)}});
  REQUIRE(auth.Verify("alice", "pw"));
  for (int i = 0; i < 1100; ++i) {  // More than the refused cache holds.
    auth.Verify("alice", "guess" + std::to_string(i));
  }
  CHECK(auth.Cached("alice", "pw") == std::optional<bool>(true));
}

TEST_CASE("basic auth: an unknown user costs as much as a known one", "[basic_auth]") {
  BasicAuth auth({{"alice", Bcrypt("pw", 8)}});
  // Interleaved, fastest of several: robust to a busy machine.
  auto once = [&](const std::string& user, int i) {
    auto t0 = std::chrono::steady_clock::now();
    auth.Verify(user, "wrong" + std::to_string(i));
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  };
  double known = 1e9, unknown = 1e9;
  for (int i = 0; i < 6; ++i) {
    known = std::min(known, once("alice", i));
    unknown = std::min(unknown, once("mallory", i));
  }
  INFO("fastest check: known user " << known << " s, unknown user " << unknown << " s");
  CHECK(unknown > known * 0.5);
  CHECK(unknown < known * 2.0);
}
