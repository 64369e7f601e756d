// The socket collectors run by NamespacePoller over sock_diag replies built
// in memory and replayed as a socket receives them. (Every collector over
// recorded kernel replies, and the names of everything emitted, are checked
// by golden_test.cc.)

#include <linux/netlink.h>

#include <catch2/catch.hpp>
#include <cerrno>
#include <map>

#include "collectors/collectors.h"
#include "poll/poller.h"
#include "source/replay.h"
#include "unit/netlink_builders.h"

using namespace sockdiag;
using sockdiag::testing::DatagramBuilder;

namespace {

const uint8_t kLo4[4] = {127, 0, 0, 1};
const uint8_t kPeer4[4] = {127, 0, 0, 2};

// The six dumps of one pass (TCP listeners, other TCP states, UDP; each
// IPv4 then IPv6) over a listener on 3306, two client TIME_WAIT sockets
// toward it and one accepted connection.
Datagrams OnePass() {
  DatagramBuilder listeners4, tcp4, done;
  listeners4.AddSocket(AF_INET, kTcpListen, 3306, 0, kLo4, kLo4);
  listeners4.AddDone();
  tcp4.AddSocket(AF_INET, kTcpTimeWait, 40001, 3306, kPeer4, kLo4, 30000);
  tcp4.AddSocket(AF_INET, kTcpTimeWait, 40002, 3306, kPeer4, kLo4, 59000);
  tcp4.AddSocket(AF_INET, kTcpEstablished, 3306, 40003, kLo4, kPeer4);
  tcp4.AddDone();
  done.AddDone();
  return {listeners4.Bytes(), done.Bytes(), tcp4.Bytes(), done.Bytes(), done.Bytes(),
          done.Bytes()};
}

}  // namespace

TEST_CASE("sockets collector counts the replayed stream exactly", "[collectors]") {
  Config config;
  config.collectors = {"sockets"};
  ProcFs procfs(SOCKDIAG_TEST_DATA "/proc");
  ReplayFactory replay;
  replay.Add(NETLINK_SOCK_DIAG, OnePass());
  NamespacePoller poller(config, procfs, "net", &replay);
  auto result = poller.Poll();
  REQUIRE(result.outcomes.size() == 1);
  CHECK(result.outcomes[0].success);
  std::map<std::string, double> v4;
  for (const auto& f : result.families) {
    if (f.name != "sockdiag_tcp_sockets") continue;
    for (const auto& m : f.metric) {
      if (m.label[0].value == "ipv4") v4[m.label[1].value] = m.gauge.value;
    }
  }
  CHECK(v4.size() == 11);
  CHECK(v4["listen"] == 1);
  CHECK(v4["time_wait"] == 2);
  CHECK(v4["established"] == 1);
  CHECK(v4["close_wait"] == 0);
  CHECK(result.stream.sockets == 4);
  CHECK(replay.requests().size() == 6);  // Listeners, TCP and UDP, each family.
}

TEST_CASE("a kernel without UDP diagnostics leaves TCP whole and UDP without series",
          "[collectors]") {
  Config config;
  config.collectors = {"sockets", "ports"};
  ProcFs procfs(SOCKDIAG_TEST_DATA "/proc");
  ReplayFactory replay;
  Datagrams pass = OnePass();
  pass.resize(4);  // The TCP dumps...
  DatagramBuilder refused;
  refused.AddError(-ENOENT);  // ...then the IPv4 UDP dump is refused (no udp_diag).
  pass.push_back(refused.Bytes());
  replay.Add(NETLINK_SOCK_DIAG, pass);
  NamespacePoller poller(config, procfs, "net", &replay);
  auto result = poller.Poll();
  for (const auto& o : result.outcomes) {
    INFO(o.name);
    CHECK(o.success);
  }
  std::map<std::string, double> v4;
  bool udp = false;
  for (const auto& f : result.families) {
    udp = udp || f.name == "sockdiag_udp_sockets";
    if (f.name != "sockdiag_tcp_sockets") continue;
    for (const auto& m : f.metric) {
      if (m.label[0].value == "ipv4") v4[m.label[1].value] = m.gauge.value;
    }
  }
  CHECK(v4["time_wait"] == 2);
  CHECK_FALSE(udp);
  CHECK(replay.requests().size() == 5);  // The IPv6 UDP dump is not asked for.
}

TEST_CASE("a collector failure is isolated", "[collectors]") {
  Config config;
  config.collectors = {"sockets", "sysctl", "netstat"};
  ProcFs empty("/nonexistent-procfs-root");
  ReplayFactory replay;
  replay.Add(NETLINK_SOCK_DIAG, OnePass());
  NamespacePoller poller(config, empty, "net", &replay);
  auto result = poller.Poll();
  std::map<std::string, bool> ok;
  for (const auto& o : result.outcomes) ok[o.name] = o.success;
  CHECK(ok["sockets"]);
  CHECK_FALSE(ok["sysctl"]);
  CHECK_FALSE(ok["netstat"]);
}
