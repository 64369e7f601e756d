#include "netlink/address.h"

#include <arpa/inet.h>
#include <sys/socket.h>

#include <cstring>

namespace sockdiag {

std::string FormatAddress(uint8_t family, const std::array<uint8_t, 16>& addr) {
  char buf[INET6_ADDRSTRLEN] = {};
  const int af = family == AF_INET6 ? AF_INET6 : AF_INET;
  if (inet_ntop(af, addr.data(), buf, sizeof(buf)) == nullptr) return "";
  return buf;
}

bool IsLoopbackAddress(uint8_t family, const std::array<uint8_t, 16>& addr) {
  if (family != AF_INET6) return addr[0] == 127;
  static constexpr uint8_t kV6Loopback[16] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1};
  static constexpr uint8_t kV4MappedPrefix[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
  if (std::memcmp(addr.data(), kV6Loopback, 16) == 0) return true;
  return std::memcmp(addr.data(), kV4MappedPrefix, 12) == 0 && addr[12] == 127;
}

}  // namespace sockdiag
