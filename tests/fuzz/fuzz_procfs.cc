// Fuzzes the procfs text parsers: /proc/net/{netstat,snmp}, sysctl integer
// lists, ip_local_reserved_ports, and cgroup paths (pod UID).
#include <cstddef>
#include <cstdint>
#include <string>

#include "model/port_settings.h"
#include "proc/proc_parsers.h"

namespace {
volatile size_t g_sink;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string text(reinterpret_cast<const char*>(data), size);  // Exact-size copy.
  size_t n = 0;
  if (auto v = sockdiag::ParseNetstat(text); v.ok()) n += v.value().size();
  if (auto v = sockdiag::ParseInts(text); v.ok()) n += v.value().size();
  if (auto v = sockdiag::ParsePortRanges(text); v.ok()) {
    n += v.value().size();
    n += sockdiag::CountReservedInRange(v.value(), 32768, 60999);
  }
  if (auto uid = sockdiag::ParsePodUid(text)) n += uid->size();
  g_sink = n;
  return 0;
}
