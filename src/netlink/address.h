// Addresses as sock_diag and ctnetlink carry them (16 bytes, network order,
// IPv4 in the first 4): their text form and the loopback test.
//
// Thread-safety: reentrant functions.
#pragma once

#include <array>
#include <cstdint>
#include <string>

namespace sockdiag {

// Text form of an address, as inet_ntop writes it: "127.0.0.1", "::1",
// "::ffff:127.0.0.1" (an IPv4-mapped address stays in IPv6 form).
std::string FormatAddress(uint8_t family, const std::array<uint8_t, 16>& addr);

// Whether an address is loopback: 127.0.0.0/8, ::1 or ::ffff:127.0.0.0/104.
bool IsLoopbackAddress(uint8_t family, const std::array<uint8_t, 16>& addr);

}  // namespace sockdiag
