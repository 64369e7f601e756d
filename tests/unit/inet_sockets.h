// InetSocket values as ParseInetDiag would produce them, from text
// addresses, for the port model and ports collector tests.
#pragma once

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <array>
#include <catch2/catch.hpp>
#include <cstdint>
#include <string>

#include "netlink/inet_diag.h"

namespace sockdiag::testing {

inline std::array<uint8_t, 16> Addr(const std::string& text) {
  std::array<uint8_t, 16> a{};
  if (text.find(':') != std::string::npos) {
    REQUIRE(inet_pton(AF_INET6, text.c_str(), a.data()) == 1);
  } else {
    REQUIRE(inet_pton(AF_INET, text.c_str(), a.data()) == 1);
  }
  return a;
}

inline uint8_t FamilyOf(const std::string& text) {
  return text.find(':') != std::string::npos ? AF_INET6 : AF_INET;
}

inline InetSocket Tcp(uint8_t state, const std::string& local, uint16_t lport,
                      const std::string& remote, uint16_t rport) {
  InetSocket s;
  s.family = FamilyOf(local);
  s.protocol = IPPROTO_TCP;
  s.state = state;
  s.local_port = lport;
  s.remote_port = rport;
  s.local_addr = Addr(local);
  s.remote_addr = Addr(remote);
  // 15 s old: past the reuse delay and outside the default rate window.
  if (state == kTcpTimeWait) s.expires_ms = 45000;
  return s;
}

inline InetSocket Listener(const std::string& local, uint16_t port, uint32_t queue = 0,
                           uint32_t limit = 128) {
  InetSocket s = Tcp(kTcpListen, local, port, FamilyOf(local) == AF_INET6 ? "::" : "0.0.0.0", 0);
  s.rqueue = queue;
  s.wqueue = limit;
  return s;
}

}  // namespace sockdiag::testing
