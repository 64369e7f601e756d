#include "netlink/inet_diag.h"

#include <arpa/inet.h>

#include <catch2/catch.hpp>
#include <cerrno>

#include "netlink/address.h"
#include "netlink/replay_dumper.h"
#include "unit/netlink_builders.h"

using namespace sockdiag;
using sockdiag::testing::DatagramBuilder;

namespace {

const uint8_t kLo4[4] = {127, 0, 0, 1};
const uint8_t kOther4[4] = {10, 1, 2, 3};
uint8_t kLo6[16] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1};

const struct nlmsghdr* First(const std::vector<uint8_t>& bytes) {
  return reinterpret_cast<const struct nlmsghdr*>(bytes.data());
}

// What SockDiagStream asked for, decoded from a request ReplayDumper kept.
struct Request {
  uint8_t family, protocol;
  uint32_t states;
  uint8_t ext;
};
Request Decode(const std::vector<uint8_t>& request) {
  const auto* req = static_cast<const struct inet_diag_req_v2*>(
      mnl_nlmsg_get_payload(reinterpret_cast<const struct nlmsghdr*>(request.data())));
  return {req->sdiag_family, req->sdiag_protocol, req->idiag_states, req->idiag_ext};
}

std::vector<uint8_t> Done() {
  DatagramBuilder b;
  b.AddDone();
  return b.Bytes();
}

// The kernel refusing a request with NLMSG_ERROR -err.
std::vector<uint8_t> Refusal(int err) {
  DatagramBuilder b;
  b.AddError(-err);
  return b.Bytes();
}

// `n` empty dumps.
Datagrams Empty(int n) { return Datagrams(static_cast<size_t>(n), Done()); }

struct Collecting : SocketStreamSink {
  std::vector<InetSocket> seen;
  int resets = 0;
  void OnSocket(const InetSocket& s) override { seen.push_back(s); }
  void Reset() override {
    seen.clear();
    ++resets;
  }
};

}  // namespace

TEST_CASE("ParseInetDiag reads an IPv4 socket", "[inet_diag]") {
  DatagramBuilder b;
  b.AddSocket(AF_INET, kTcpTimeWait, 40000, 3306, kLo4, kOther4, 59000, 0, 0);
  auto bytes = b.Bytes();
  InetSocket s;
  REQUIRE(ParseInetDiag(First(bytes), IPPROTO_TCP, &s).ok());
  CHECK(s.family == AF_INET);
  CHECK(s.state == kTcpTimeWait);
  CHECK(s.local_port == 40000);
  CHECK(s.remote_port == 3306);
  CHECK(s.expires_ms == 59000);
  CHECK(s.remote_addr[0] == 10);
  CHECK_FALSE(IsLoopbackAddress(s.family, s.remote_addr));
  CHECK(std::string(TcpStateName(s.state)) == "time_wait");
}

TEST_CASE("ParseInetDiag reads an IPv6 listener and its queues", "[inet_diag]") {
  DatagramBuilder b;
  b.AddSocket(AF_INET6, kTcpListen, 8080, 0, kLo6, kLo6, 0, 129, 128);
  auto bytes = b.Bytes();
  InetSocket s;
  REQUIRE(ParseInetDiag(First(bytes), IPPROTO_TCP, &s).ok());
  CHECK(s.family == AF_INET6);
  CHECK(s.rqueue == 129);
  CHECK(s.wqueue == 128);
  CHECK(IsLoopbackAddress(s.family, s.remote_addr));
}

TEST_CASE("IPv4-mapped loopback counts as loopback", "[inet_diag]") {
  InetSocket s;
  s.family = AF_INET6;
  s.remote_addr = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 127, 0, 0, 2};
  CHECK(IsLoopbackAddress(s.family, s.remote_addr));
  s.remote_addr[12] = 10;
  CHECK_FALSE(IsLoopbackAddress(s.family, s.remote_addr));
}

TEST_CASE("ParseInetDiag rejects malformed messages", "[inet_diag]") {
  InetSocket s;
  SECTION("wrong message type") {
    DatagramBuilder b;
    uint8_t payload[80] = {};
    b.Add(16 /* RTM_NEWLINK */, 0, payload, sizeof(payload));
    b.Commit();
    auto bytes = b.Bytes();
    CHECK_FALSE(ParseInetDiag(First(bytes), IPPROTO_TCP, &s).ok());
  }
  SECTION("payload shorter than inet_diag_msg") {
    DatagramBuilder b;
    uint8_t payload[20] = {AF_INET};
    b.Add(SOCK_DIAG_BY_FAMILY, 0, payload, sizeof(payload));
    b.Commit();
    auto bytes = b.Bytes();
    CHECK(ParseInetDiag(First(bytes), IPPROTO_TCP, &s).code() == Status::Code::kCorruption);
  }
  SECTION("unknown address family") {
    DatagramBuilder b;
    b.AddSocket(AF_INET, 1, 1, 2, kLo4, kLo4);
    auto bytes = b.Bytes();
    auto* m = static_cast<struct inet_diag_msg*>(
        mnl_nlmsg_get_payload(reinterpret_cast<struct nlmsghdr*>(bytes.data())));
    m->idiag_family = AF_UNIX;
    CHECK_FALSE(ParseInetDiag(First(bytes), IPPROTO_TCP, &s).ok());
  }
  SECTION("an attribute whose length runs past the message") {
    DatagramBuilder b;
    b.AddSocket(AF_INET, 1, 1, 2, kLo4, kLo4);
    auto bytes = b.Bytes();
    auto* nlh = reinterpret_cast<struct nlmsghdr*>(bytes.data());
    auto* attr = static_cast<struct nlattr*>(
        mnl_nlmsg_get_payload_offset(nlh, sizeof(struct inet_diag_msg)));
    attr->nla_len = 200;
    CHECK(ParseInetDiag(First(bytes), IPPROTO_TCP, &s).code() == Status::Code::kCorruption);
  }
  SECTION("unknown attribute types are fine") {
    DatagramBuilder b;
    struct inet_diag_msg m {};
    m.idiag_family = AF_INET;
    m.idiag_state = 1;
    auto* nlh = b.Add(SOCK_DIAG_BY_FAMILY, NLM_F_MULTI, &m, sizeof(m));
    uint32_t v = 7;
    mnl_attr_put(nlh, 250, sizeof(v), &v);
    b.Commit();
    auto bytes = b.Bytes();
    CHECK(ParseInetDiag(First(bytes), IPPROTO_TCP, &s).ok());
  }
}

TEST_CASE("BuildInetDiagRequest asks for a dump with no extensions", "[inet_diag]") {
  std::vector<uint8_t> buf;
  BuildInetDiagRequest(&buf, AF_INET6, IPPROTO_TCP, kAllDumpStates);
  const auto* nlh = First(buf);
  CHECK(nlh->nlmsg_type == SOCK_DIAG_BY_FAMILY);
  CHECK((nlh->nlmsg_flags & NLM_F_DUMP) == NLM_F_DUMP);
  CHECK(nlh->nlmsg_len == buf.size());
  const auto* req = static_cast<const struct inet_diag_req_v2*>(mnl_nlmsg_get_payload(nlh));
  CHECK(req->sdiag_family == AF_INET6);
  CHECK(req->idiag_states == 0x1fff);
  CHECK(req->idiag_ext == 0);
}

TEST_CASE("SockDiagStream asks listeners first then the rest then UDP", "[inet_diag]") {
  Datagrams requests;
  ReplayDumper dumper(Empty(6), &requests);
  Collecting sink;
  SocketStreamStats stats;
  SockDiagStream stream(&dumper);
  REQUIRE(stream.Run(true, sink, &stats).ok());
  REQUIRE(requests.size() == 6);
  CHECK(Decode(requests[0]).states == kListenStates);
  CHECK(Decode(requests[0]).family == AF_INET);
  CHECK(Decode(requests[1]).states == kListenStates);
  CHECK(Decode(requests[1]).family == AF_INET6);
  CHECK(Decode(requests[2]).states == (kAllDumpStates & ~kListenStates));
  CHECK(Decode(requests[3]).family == AF_INET6);
  CHECK(Decode(requests[4]).protocol == IPPROTO_UDP);
  CHECK(Decode(requests[5]).protocol == IPPROTO_UDP);
  for (const auto& r : requests) CHECK(Decode(r).ext == 0);

  Datagrams tcp_requests;
  ReplayDumper tcp_only(Empty(4), &tcp_requests);
  SockDiagStream stream2(&tcp_only);
  REQUIRE(stream2.Run(false, sink, &stats).ok());
  CHECK(tcp_requests.size() == 4);
}

TEST_CASE("SockDiagStream restarts once after NLM_F_DUMP_INTR", "[inet_diag]") {
  DatagramBuilder interrupted;
  auto* nlh = interrupted.AddSocket(AF_INET, kTcpListen, 80, 0, kLo4, kLo4);
  nlh->nlmsg_flags |= NLM_F_DUMP_INTR;
  interrupted.AddDone();
  Datagrams replies = {interrupted.Bytes()};
  for (const auto& d : Empty(7)) replies.push_back(d);  // The rest, then the retry's 4.
  Datagrams requests;
  ReplayDumper dumper(replies, &requests);
  Collecting sink;
  SocketStreamStats stats;
  SockDiagStream stream(&dumper);
  REQUIRE(stream.Run(false, sink, &stats).ok());
  CHECK(sink.resets == 1);
  CHECK(stats.interrupted_retries == 1);
  CHECK(requests.size() == 8);
  CHECK(sink.seen.empty());  // The retry's replies were empty.
}

TEST_CASE("SockDiagStream tolerates a kernel without IPv6 or UDP diagnostics, not other errors",
          "[inet_diag]") {
  {
    // Listeners and TCP: IPv4 answers, IPv6 is refused.
    ReplayDumper dumper({Done(), Refusal(EAFNOSUPPORT), Done(), Refusal(EAFNOSUPPORT)});
    Collecting sink;
    SocketStreamStats stats;
    SockDiagStream stream(&dumper);
    CHECK(stream.Run(false, sink, &stats).ok());
    CHECK(dumper.remaining() == 0);
    CHECK_FALSE(dumper.broken());  // A refusal ends the kernel's reply.
  }
  {
    // UDP refused (no udp_diag): the TCP pass stands and the sink is told.
    struct Told : Collecting {
      int udp_unavailable = 0;
      void OnUnavailable(uint8_t protocol) override { udp_unavailable += protocol == IPPROTO_UDP; }
    } sink;
    ReplayDumper dumper({Done(), Done(), Done(), Done(), Refusal(ENOENT)});
    SocketStreamStats stats;
    SockDiagStream stream(&dumper);
    CHECK(stream.Run(true, sink, &stats).ok());
    CHECK(sink.udp_unavailable == 1);
  }
  {
    // Any other UDP failure fails the pass.
    ReplayDumper dumper({Done(), Done(), Done(), Done(), Refusal(EPERM)});
    Collecting sink;
    SocketStreamStats stats;
    SockDiagStream stream(&dumper);
    Status s = stream.Run(true, sink, &stats);
    CHECK(s.IsPermission());
    CHECK(s.ToString().find("UDP dump") != std::string::npos);
  }
  {
    ReplayDumper dumper({Refusal(EPERM)});
    Collecting sink;
    SocketStreamStats stats;
    SockDiagStream stream(&dumper);
    Status s = stream.Run(false, sink, &stats);
    CHECK(s.IsPermission());
    CHECK(s.ToString().find("listener dump") != std::string::npos);
  }
}
