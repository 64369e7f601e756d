// BasicAuth: checks HTTP basic-auth credentials against bcrypt hashes.
//
// A bcrypt check costs tens of milliseconds (cost 10) by design, so outcomes
// are cached: Cached() answers at once for credentials seen before, Verify()
// runs bcrypt (libxcrypt) and records the outcome. The cache is keyed by a
// salted SHA-256 of user and password, never the password itself; accepted
// credentials are kept apart from refused ones so a flood of wrong passwords
// cannot evict them. Unknown users are checked against a dummy hash of the
// same cost so timing does not reveal which users exist, and hashes are
// compared in constant time.
//
// Thread-safety: all methods may be called concurrently.
#pragma once

#include <map>
#include <mutex>
#include <optional>
#include <set>
#include <string>

namespace sockdiag {

class BasicAuth {
 public:
  // `users`: user -> bcrypt hash (validated by ParseWebConfig).
  explicit BasicAuth(std::map<std::string, std::string> users);

  // Outcome for these credentials if known, else nullopt (call Verify).
  std::optional<bool> Cached(const std::string& user, const std::string& password) const;

  // Runs bcrypt (slow) and caches the outcome.
  bool Verify(const std::string& user, const std::string& password);

  size_t users() const { return users_.size(); }

 private:
  std::string Key(const std::string& user, const std::string& password) const;

  const std::map<std::string, std::string> users_;
  std::string dummy_hash_;
  std::string salt_;
  mutable std::mutex mu_;
  std::set<std::string> accepted_;  // GUARDED_BY(mu_)
  std::set<std::string> refused_;   // GUARDED_BY(mu_), bounded.
};

}  // namespace sockdiag
