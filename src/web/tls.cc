#include "web/tls.h"

#include <arpa/inet.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

namespace sockdiag {
namespace {

// What the verify callback needs, attached to the SSL_CTX and freed with it
// (connections may outlive the server's own reference after a reload).
struct ClientPolicy {
  bool accept_any = false;  // RequestClientCert / RequireAnyClientCert: no chain check.
  std::vector<std::string> allowed_sans;
};

void FreePolicy(void*, void* ptr, CRYPTO_EX_DATA*, int, long, void*) {
  delete static_cast<ClientPolicy*>(ptr);
}

int PolicyIndex() {
  static const int index = SSL_CTX_get_ex_new_index(0, nullptr, nullptr, nullptr, FreePolicy);
  return index;
}

// Never prompt on a terminal for a passphrase: encrypted keys are an error.
int NoPassphrase(char*, int, int, void*) { return 0; }

// OpenSSL's first queued reason, and clears the queue.
std::string SslError() {
  std::string reason;
  while (unsigned long e = ERR_get_error()) {
    if (reason.empty()) {
      const char* r = ERR_reason_error_string(e);
      reason = r != nullptr ? r : "error " + std::to_string(e);
    }
  }
  return reason.empty() ? "unknown error" : reason;
}

Status Bad(const std::string& setting, const std::string& what) {
  return Status::InvalidArgument("tls_server_config." + setting + ": " + what);
}

// "cert_file /x/y.pem" or "cert (inline)".
std::string Where(const std::string& key, const std::string& file) {
  return file.empty() ? key + " (inline)" : key + "_file " + file;
}

Status CheckReadable(const std::string& setting, const std::string& path) {
  FILE* f = std::fopen(path.c_str(), "rbe");
  if (f == nullptr) {
    return Status::InvalidArgument("tls_server_config." + setting + " " + path +
                                   ": cannot open: " + std::strerror(errno));
  }
  std::fclose(f);
  return Status::Ok();
}

struct BioFree {
  void operator()(BIO* b) const { BIO_free(b); }
};
using BioPtr = std::unique_ptr<BIO, BioFree>;

BioPtr MemBio(const std::string& pem) {
  return BioPtr(BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size())));
}

// Reads every certificate of a PEM text; empty on none.
std::vector<X509*> ReadCerts(const std::string& pem) {
  std::vector<X509*> certs;
  BioPtr bio = MemBio(pem);
  if (!bio) return certs;
  while (X509* x = PEM_read_bio_X509(bio.get(), nullptr, NoPassphrase, nullptr)) {
    certs.push_back(x);
  }
  ERR_clear_error();  // The loop ends on "no start line".
  return certs;
}

Status LoadCertificate(SSL_CTX* ctx, const TlsServerConfig& tls) {
  const std::string where = Where("cert", tls.cert_file);
  if (!tls.cert_file.empty()) {
    if (Status s = CheckReadable("cert_file", tls.cert_file); !s.ok()) return s;
    if (SSL_CTX_use_certificate_chain_file(ctx, tls.cert_file.c_str()) != 1) {
      return Status::InvalidArgument("tls_server_config." + where +
                                     ": cannot load certificate: " + SslError());
    }
    return Status::Ok();
  }
  std::vector<X509*> certs = ReadCerts(tls.cert);
  if (certs.empty()) {
    return Status::InvalidArgument("tls_server_config." + where + ": no PEM certificate");
  }
  int ok = SSL_CTX_use_certificate(ctx, certs[0]);
  X509_free(certs[0]);
  for (size_t i = 1; i < certs.size(); ++i) {
    if (ok == 1) {
      ok = static_cast<int>(SSL_CTX_add0_chain_cert(ctx, certs[i]));  // Takes ownership.
      if (ok != 1) X509_free(certs[i]);
    } else {
      X509_free(certs[i]);
    }
  }
  if (ok != 1) {
    return Status::InvalidArgument("tls_server_config." + where +
                                   ": cannot use certificate: " + SslError());
  }
  return Status::Ok();
}

Status LoadKey(SSL_CTX* ctx, const TlsServerConfig& tls) {
  const std::string where = Where("key", tls.key_file);
  int ok = 0;
  if (!tls.key_file.empty()) {
    if (Status s = CheckReadable("key_file", tls.key_file); !s.ok()) return s;
    ok = SSL_CTX_use_PrivateKey_file(ctx, tls.key_file.c_str(), SSL_FILETYPE_PEM);
  } else {
    BioPtr bio = MemBio(tls.key);
    EVP_PKEY* key =
        bio ? PEM_read_bio_PrivateKey(bio.get(), nullptr, NoPassphrase, nullptr) : nullptr;
    if (key != nullptr) {
      ok = SSL_CTX_use_PrivateKey(ctx, key);
      EVP_PKEY_free(key);
    }
  }
  if (ok != 1) {
    const std::string reason = SslError();
    if (reason == "key values mismatch") {
      return Status::InvalidArgument("tls_server_config." + where +
                                     ": private key does not match the certificate");
    }
    return Status::InvalidArgument("tls_server_config." + where +
                                   ": cannot load private key (PEM, unencrypted): " + reason);
  }
  if (SSL_CTX_check_private_key(ctx) != 1) {
    return Status::InvalidArgument("tls_server_config." + where +
                                   ": private key does not match the certificate: " + SslError());
  }
  return Status::Ok();
}

Status LoadClientCas(SSL_CTX* ctx, const TlsServerConfig& tls) {
  const std::string where = Where("client_ca", tls.client_ca_file);
  std::string pem = tls.client_ca;
  if (!tls.client_ca_file.empty()) {
    if (Status s = CheckReadable("client_ca_file", tls.client_ca_file); !s.ok()) return s;
    FILE* f = std::fopen(tls.client_ca_file.c_str(), "rbe");
    if (f == nullptr) return Bad("client_ca_file", std::strerror(errno));
    char buf[8192];
    size_t n = 0;
    while ((n = std::fread(buf, 1, sizeof(buf), f)) > 0 && pem.size() < (8u << 20)) {
      pem.append(buf, n);
    }
    std::fclose(f);
  }
  std::vector<X509*> certs = ReadCerts(pem);
  if (certs.empty()) {
    return Status::InvalidArgument("tls_server_config." + where + ": no PEM certificate");
  }
  X509_STORE* store = SSL_CTX_get_cert_store(ctx);
  STACK_OF(X509_NAME)* names = sk_X509_NAME_new_null();
  bool ok = store != nullptr && names != nullptr;
  for (X509* x : certs) {
    if (ok) ok = X509_STORE_add_cert(store, x) == 1;
    if (ok) {
      X509_NAME* name = X509_NAME_dup(X509_get_subject_name(x));
      ok = name != nullptr && sk_X509_NAME_push(names, name) > 0;
    }
    X509_free(x);
  }
  if (!ok) {
    if (names != nullptr) sk_X509_NAME_pop_free(names, X509_NAME_free);
    return Status::InvalidArgument("tls_server_config." + where +
                                   ": cannot use CA certificate: " + SslError());
  }
  SSL_CTX_set_client_CA_list(ctx, names);  // Takes ownership.
  return Status::Ok();
}

// Go's IANA names -> OpenSSL's cipher names for TLS <= 1.2; TLS 1.3 names
// pass through (OpenSSL spells them the same way).
Status ApplyCipherSuites(SSL_CTX* ctx, const TlsServerConfig& tls) {
  if (tls.cipher_suites.empty()) return Status::Ok();
  std::unique_ptr<SSL_CTX, SslCtxFree> scratch(SSL_CTX_new(TLS_server_method()));
  if (!scratch || SSL_CTX_set_cipher_list(scratch.get(), "ALL:COMPLEMENTOFALL:@SECLEVEL=0") != 1) {
    return Bad("cipher_suites", "cannot list OpenSSL ciphers: " + SslError());
  }
  std::string tls12, tls13;
  STACK_OF(SSL_CIPHER)* all = SSL_CTX_get_ciphers(scratch.get());
  for (const std::string& name : tls.cipher_suites) {
    if (IsTls13CipherSuite(name)) {
      tls13 += (tls13.empty() ? "" : ":") + name;
      continue;
    }
    std::string openssl_name;
    for (int i = 0; i < sk_SSL_CIPHER_num(all); ++i) {
      const SSL_CIPHER* c = sk_SSL_CIPHER_value(all, i);
      const char* standard = SSL_CIPHER_standard_name(c);
      if (standard != nullptr && name == standard) openssl_name = SSL_CIPHER_get_name(c);
    }
    if (openssl_name.empty()) return Bad("cipher_suites", name + " is not available in OpenSSL");
    tls12 += (tls12.empty() ? "" : ":") + openssl_name;
  }
  if (!tls12.empty() && SSL_CTX_set_cipher_list(ctx, tls12.c_str()) != 1) {
    return Bad("cipher_suites", "rejected by OpenSSL: " + SslError());
  }
  if (!tls13.empty() && SSL_CTX_set_ciphersuites(ctx, tls13.c_str()) != 1) {
    return Bad("cipher_suites", "rejected by OpenSSL: " + SslError());
  }
  return Status::Ok();
}

Status ApplyCurves(SSL_CTX* ctx, const TlsServerConfig& tls) {
  if (tls.curve_preferences.empty()) return Status::Ok();
  std::string groups;
  for (const std::string& c : tls.curve_preferences) {
    const char* g = c == "CurveP256"   ? "P-256"
                    : c == "CurveP384" ? "P-384"
                    : c == "CurveP521" ? "P-521"
                                       : "X25519";
    groups += (groups.empty() ? "" : ":") + std::string(g);
  }
  if (SSL_CTX_set1_groups_list(ctx, groups.c_str()) != 1) {
    return Bad("curve_preferences", "rejected by OpenSSL: " + SslError());
  }
  return Status::Ok();
}

std::string Asn1Text(const ASN1_STRING* s) {
  return std::string(reinterpret_cast<const char*>(ASN1_STRING_get0_data(s)),
                     static_cast<size_t>(ASN1_STRING_length(s)));
}

// Go's check: any DNS, e-mail, IP or URI SAN equal to an allowed entry.
bool LeafHasAllowedSan(X509* leaf, const std::vector<std::string>& allowed) {
  auto* names =
      static_cast<GENERAL_NAMES*>(X509_get_ext_d2i(leaf, NID_subject_alt_name, nullptr, nullptr));
  if (names == nullptr) return false;
  bool found = false;
  for (int i = 0; i < sk_GENERAL_NAME_num(names) && !found; ++i) {
    const GENERAL_NAME* gn = sk_GENERAL_NAME_value(names, i);
    std::string value;
    switch (gn->type) {
      case GEN_DNS:
        value = Asn1Text(gn->d.dNSName);
        break;
      case GEN_EMAIL:
        value = Asn1Text(gn->d.rfc822Name);
        break;
      case GEN_URI:
        value = Asn1Text(gn->d.uniformResourceIdentifier);
        break;
      case GEN_IPADD: {
        const std::string raw = Asn1Text(gn->d.iPAddress);
        char text[INET6_ADDRSTRLEN] = {};
        if (raw.size() == 4) inet_ntop(AF_INET, raw.data(), text, sizeof(text));
        if (raw.size() == 16) inet_ntop(AF_INET6, raw.data(), text, sizeof(text));
        value = text;
        break;
      }
      default:
        break;
    }
    for (const auto& a : allowed) found = found || (!value.empty() && value == a);
  }
  GENERAL_NAMES_free(names);
  return found;
}

int VerifyClient(int preverify_ok, X509_STORE_CTX* store) {
  auto* ssl =
      static_cast<SSL*>(X509_STORE_CTX_get_ex_data(store, SSL_get_ex_data_X509_STORE_CTX_idx()));
  const auto* policy = ssl == nullptr ? nullptr
                                      : static_cast<const ClientPolicy*>(SSL_CTX_get_ex_data(
                                            SSL_get_SSL_CTX(ssl), PolicyIndex()));
  if (policy == nullptr) return preverify_ok;
  if (policy->accept_any) preverify_ok = 1;
  if (preverify_ok != 1) return 0;
  if (X509_STORE_CTX_get_error_depth(store) == 0 && !policy->allowed_sans.empty()) {
    X509* leaf = X509_STORE_CTX_get_current_cert(store);
    if (leaf == nullptr || !LeafHasAllowedSan(leaf, policy->allowed_sans)) {
      X509_STORE_CTX_set_error(store, X509_V_ERR_APPLICATION_VERIFICATION);
      return 0;
    }
  }
  return 1;
}

}  // namespace

Result<SslCtxPtr> MakeServerTlsContext(const TlsServerConfig& tls) {
  ERR_clear_error();
  SslCtxPtr ctx(SSL_CTX_new(TLS_server_method()), SslCtxFree());
  if (!ctx) return Status::InvalidArgument("tls_server_config: SSL_CTX_new: " + SslError());
  SSL_CTX* c = ctx.get();
  SSL_CTX_set_default_passwd_cb(c, NoPassphrase);

  // TLS 1.0/1.1 are refused by OpenSSL 3's default security level; an
  // operator asking for them gets them.
  if (tls.min_version < kTls12) SSL_CTX_set_security_level(c, 0);
  if (SSL_CTX_set_min_proto_version(c, tls.min_version) != 1 ||
      SSL_CTX_set_max_proto_version(c, tls.max_version) != 1) {
    return Bad("min_version", "rejected by OpenSSL: " + SslError());
  }
  uint64_t options = SSL_OP_NO_RENEGOTIATION | SSL_OP_NO_COMPRESSION;
  if (tls.prefer_server_cipher_suites) options |= SSL_OP_CIPHER_SERVER_PREFERENCE;
  SSL_CTX_set_options(c, options);
  SSL_CTX_set_mode(c, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER |
                          SSL_MODE_RELEASE_BUFFERS);
  static const unsigned char kSessionContext[] = "sockdiag_exporter";
  SSL_CTX_set_session_id_context(c, kSessionContext, sizeof(kSessionContext) - 1);

  if (Status s = LoadCertificate(c, tls); !s.ok()) return s;
  if (Status s = LoadKey(c, tls); !s.ok()) return s;
  if (Status s = ApplyCipherSuites(c, tls); !s.ok()) return s;
  if (Status s = ApplyCurves(c, tls); !s.ok()) return s;

  if (tls.client_auth != ClientAuth::kNone) {
    if (!tls.client_ca.empty() || !tls.client_ca_file.empty()) {
      if (Status s = LoadClientCas(c, tls); !s.ok()) return s;
    }
    auto* policy = new ClientPolicy();
    policy->accept_any =
        tls.client_auth == ClientAuth::kRequest || tls.client_auth == ClientAuth::kRequireAny;
    policy->allowed_sans = tls.client_allowed_sans;
    if (SSL_CTX_set_ex_data(c, PolicyIndex(), policy) != 1) {
      delete policy;
      return Status::InvalidArgument("tls_server_config: SSL_CTX_set_ex_data failed");
    }
    int mode = SSL_VERIFY_PEER;
    if (tls.client_auth == ClientAuth::kRequireAny ||
        tls.client_auth == ClientAuth::kRequireAndVerify) {
      mode |= SSL_VERIFY_FAIL_IF_NO_PEER_CERT;
    }
    SSL_CTX_set_verify(c, mode, VerifyClient);
  }
  ERR_clear_error();
  return ctx;
}

}  // namespace sockdiag
