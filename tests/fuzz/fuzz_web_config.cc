// Fuzzes the web config parser (exporter-toolkit YAML): any bytes, parsed
// against a base directory so relative paths are joined too.
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <memory>
#include <string_view>

#include "web/web_config.h"

namespace {
volatile size_t g_sink;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  // Exact-size heap copy: a read past the input is an ASan error.
  std::unique_ptr<char[]> copy(new char[size == 0 ? 1 : size]);
  if (size != 0) std::memcpy(copy.get(), data, size);
  auto r = sockdiag::ParseWebConfig(std::string_view(copy.get(), size), "/etc/sockdiag");
  if (r.ok()) {
    const sockdiag::WebConfig& c = r.value();
    g_sink = c.basic_auth_users.size() + c.tls.cert_file.size() + c.tls.key_file.size() +
             c.tls.client_allowed_sans.size() + c.headers.size() +
             static_cast<size_t>(c.rate_limit_burst) + (c.tls.enabled() ? 1 : 0);
  } else {
    g_sink = r.status().context().size();
  }
  return 0;
}
