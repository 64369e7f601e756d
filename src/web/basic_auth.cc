#include "web/basic_auth.h"

#include <crypt.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rand.h>

#include <cstring>
#include <memory>

namespace sockdiag {
namespace {

// Refused credentials remembered at most; the set is cleared when full.
constexpr size_t kMaxRefused = 1024;
// Accepted credentials: few in practice (one per scraper and user); the cap
// only guards against a misbehaving client cycling valid passwords.
constexpr size_t kMaxAccepted = 256;

// A syntactically valid bcrypt salt and checksum no password produces.
constexpr const char* kDummyTail = "abcdefghijklmnopqrstuvABCDEFGHIJKLMNOPQRSTUVWXYZ01234";

}  // namespace

BasicAuth::BasicAuth(std::map<std::string, std::string> users) : users_(std::move(users)) {
  // Same algorithm and cost as a real user's hash, so a lookup for an unknown
  // user takes as long as one for a known user.
  std::string prefix = "$2b$10$";
  if (!users_.empty()) prefix = users_.begin()->second.substr(0, 7);
  dummy_hash_ = prefix + kDummyTail;
  unsigned char salt[16];
  if (RAND_bytes(salt, sizeof(salt)) != 1) {
    std::memset(salt, 0, sizeof(salt));  // Still correct, only less opaque in a core dump.
  }
  salt_.assign(reinterpret_cast<const char*>(salt), sizeof(salt));
}

std::string BasicAuth::Key(const std::string& user, const std::string& password) const {
  std::string input = salt_;
  input += user;
  input.push_back('\0');
  input += password;
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  EVP_Digest(input.data(), input.size(), digest, &len, EVP_sha256(), nullptr);
  OPENSSL_cleanse(input.data(), input.size());
  return std::string(reinterpret_cast<const char*>(digest), len);
}

std::optional<bool> BasicAuth::Cached(const std::string& user, const std::string& password) const {
  const std::string key = Key(user, password);
  std::lock_guard<std::mutex> lock(mu_);
  if (accepted_.count(key) != 0) return true;
  if (refused_.count(key) != 0) return false;
  return std::nullopt;
}

bool BasicAuth::Verify(const std::string& user, const std::string& password) {
  auto it = users_.find(user);
  const bool known = it != users_.end();
  const std::string& hash = known ? it->second : dummy_hash_;
  // crypt_data is 32 KiB: heap, not the worker's stack.
  auto data = std::make_unique<crypt_data>();
  std::memset(data.get(), 0, sizeof(crypt_data));
  const char* out = crypt_rn(password.c_str(), hash.c_str(), data.get(), sizeof(crypt_data));
  // Compare the 31-character checksum: crypt() may print a salt whose unused
  // low bits were normalised, which Go's bcrypt also ignores.
  constexpr size_t kChecksum = 31;
  bool ok = out != nullptr && std::strlen(out) == hash.size() && hash.size() == 60 &&
            std::memcmp(out, hash.data(), 7) == 0 &&
            CRYPTO_memcmp(out + 60 - kChecksum, hash.data() + 60 - kChecksum, kChecksum) == 0;
  // A password with a NUL byte would be truncated by crypt(): never accept it.
  ok = ok && known && password.find('\0') == std::string::npos;
  OPENSSL_cleanse(data.get(), sizeof(crypt_data));

  const std::string key = Key(user, password);
  std::lock_guard<std::mutex> lock(mu_);
  if (ok) {
    if (accepted_.size() >= kMaxAccepted) accepted_.clear();
    accepted_.insert(key);
  } else {
    if (refused_.size() >= kMaxRefused) refused_.clear();
    refused_.insert(key);
  }
  return ok;
}

}  // namespace sockdiag
