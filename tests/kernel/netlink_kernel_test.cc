// NetlinkSocket against the real kernel: only the kernel's replies count.
//
// Any process with CAP_NET_ADMIN in a namespace where the exporter keeps a
// netlink socket (pods mode keeps one in every pod's) can send datagrams to
// that socket's port id. A forged reply with sequence number and port id 0
// passes the walker's checks (which skip zeros, as libmnl does), so the
// socket itself must accept datagrams from the kernel (nl_pid 0) only.

#include <arpa/inet.h>
#include <linux/inet_diag.h>
#include <linux/netlink.h>
#include <linux/sock_diag.h>
#include <sys/socket.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <cstring>
#include <vector>

#include "kernel/kernel_support.h"
#include "netlink/inet_diag.h"
#include "source/netlink_socket.h"

using namespace sockdiag;
using namespace sockdiag::testing;

namespace {

struct Collecting : SocketStreamSink {
  std::vector<InetSocket> seen;
  void OnSocket(const InetSocket& s) override { seen.push_back(s); }
  void Reset() override { seen.clear(); }
};

// A datagram as the kernel would answer a TCP listener dump: one listener
// on 127.0.0.9:1 (which does not exist), then NLMSG_DONE; seq and pid 0.
std::vector<uint8_t> ForgedListenerReply() {
  std::vector<uint8_t> d(NLMSG_SPACE(sizeof(inet_diag_msg)) + NLMSG_SPACE(sizeof(int)), 0);
  auto* nlh = reinterpret_cast<nlmsghdr*>(d.data());
  nlh->nlmsg_len = NLMSG_LENGTH(sizeof(inet_diag_msg));
  nlh->nlmsg_type = SOCK_DIAG_BY_FAMILY;
  nlh->nlmsg_flags = NLM_F_MULTI;
  auto* msg = reinterpret_cast<inet_diag_msg*>(d.data() + NLMSG_HDRLEN);
  msg->idiag_family = AF_INET;
  msg->idiag_state = kTcpListen;
  msg->id.idiag_sport = htons(1);
  inet_pton(AF_INET, "127.0.0.9", msg->id.idiag_src);
  auto* done = reinterpret_cast<nlmsghdr*>(d.data() + NLMSG_SPACE(sizeof(inet_diag_msg)));
  done->nlmsg_len = NLMSG_LENGTH(sizeof(int));
  done->nlmsg_type = NLMSG_DONE;
  done->nlmsg_flags = NLM_F_MULTI;
  return d;
}

}  // namespace

TEST_CASE("netlink replies from a process rather than the kernel are dropped",
          "[kernel][netlink]") {
  EnterFreshNetns();
  Fd listener = Listen({"127.0.0.1", 8080});
  auto opened = NetlinkSocket::Open(NETLINK_SOCK_DIAG, 2000);
  REQUIRE(opened.ok());
  NetlinkSocket& sock = *opened.value();

  // Another netlink socket (root has CAP_NET_ADMIN) queues a forged reply on
  // the exporter's socket before its request is even sent.
  Fd forger(socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_SOCK_DIAG));
  REQUIRE(forger.get() >= 0);
  sockaddr_nl to{};
  to.nl_family = AF_NETLINK;
  to.nl_pid = sock.portid();
  const std::vector<uint8_t> forged = ForgedListenerReply();
  REQUIRE(sendto(forger.get(), forged.data(), forged.size(), 0, reinterpret_cast<sockaddr*>(&to),
                 sizeof(to)) == static_cast<ssize_t>(forged.size()));

  SockDiagStream stream(&sock);
  Collecting sink;
  SocketStreamStats stats;
  REQUIRE(stream.Run(false, sink, &stats).ok());
  // Exactly the real listener: the forged one never reached the sink (and
  // did not end the listener dump before the kernel's answer).
  REQUIRE(sink.seen.size() == 1);
  CHECK(sink.seen[0].local_port == 8080);
  CHECK(sink.seen[0].state == kTcpListen);
  CHECK_FALSE(sock.broken());
}
