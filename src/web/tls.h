// Server TLS context from a web config's tls_server_config (OpenSSL 3).
//
// Loads the certificate chain, key and client CAs (files or inline PEM),
// applies the protocol versions, cipher suites, curves and client
// certificate policy, and checks client_allowed_sans on the leaf
// certificate during the handshake. Renegotiation is off; buffers of idle
// connections are released.
//
// Failure: InvalidArgument naming the setting and the file, with OpenSSL's
// reason, e.g. "tls_server_config.key_file /etc/x.key: cannot load private
// key: ... (does it match cert_file?)".
//
// Thread-safety: the returned SSL_CTX is immutable after this returns and
// may be shared by connections on any thread (SSL_new takes a reference).
#pragma once

#include <openssl/ssl.h>

#include <memory>

#include "sockdiag/status.h"
#include "web/web_config.h"

namespace sockdiag {

struct SslCtxFree {
  void operator()(SSL_CTX* ctx) const { SSL_CTX_free(ctx); }
};
using SslCtxPtr = std::shared_ptr<SSL_CTX>;

Result<SslCtxPtr> MakeServerTlsContext(const TlsServerConfig& tls);

}  // namespace sockdiag
