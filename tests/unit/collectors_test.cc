// Every collector, run over fixture procfs and canned netlink bytes: metric
// and label names are valid and unique across collectors.

#include <prometheus/check_names.h>

#include <catch2/catch.hpp>
#include <map>
#include <set>

#include "collectors/collectors.h"
#include "sockdiag/poller.h"
#include "unit/netlink_builders.h"

using namespace sockdiag;
using sockdiag::testing::DatagramBuilder;

namespace {

const uint8_t kLo4[4] = {127, 0, 0, 1};
const uint8_t kPeer4[4] = {127, 0, 0, 2};

// Answers every sock_diag request with the same few sockets, filtered by
// the requested states; other buses are unavailable.
class CannedDumper : public NetlinkDumper {
 public:
  Status Dump(std::span<uint8_t> request, MessageSink& sink, DumpStats* stats) override {
    const auto* req = static_cast<const struct inet_diag_req_v2*>(
        mnl_nlmsg_get_payload(reinterpret_cast<const struct nlmsghdr*>(request.data())));
    DatagramBuilder b;
    if (req->sdiag_family == AF_INET && req->sdiag_protocol == IPPROTO_TCP) {
      if (req->idiag_states & kListenStates) b.AddSocket(AF_INET, kTcpListen, 3306, 0, kLo4, kLo4);
      if (req->idiag_states & (1u << kTcpTimeWait)) {
        b.AddSocket(AF_INET, kTcpTimeWait, 40001, 3306, kPeer4, kLo4, 30000);
        b.AddSocket(AF_INET, kTcpTimeWait, 40002, 3306, kPeer4, kLo4, 59000);
      }
      if (req->idiag_states & (1u << kTcpEstablished)) {
        b.AddSocket(AF_INET, kTcpEstablished, 3306, 40003, kLo4, kPeer4);
      }
    }
    b.AddDone();
    return ProcessDatagram(b.Bytes(), 0, 0, sink, stats).status();
  }
};

class CannedFactory : public NetlinkFactory {
 public:
  Result<std::unique_ptr<NetlinkDumper>> Open(int bus) override {
    if (bus == NETLINK_SOCK_DIAG) return std::unique_ptr<NetlinkDumper>(new CannedDumper());
    return Status::Unsupported("no such bus in this test", EPROTONOSUPPORT);
  }
};

Config AllEnabled() {
  Config c;
  for (const auto& info : AllCollectors()) c.collectors.insert(info.name);
  return c;
}

}  // namespace

TEST_CASE("every emitted metric and label name is valid and unique", "[collectors]") {
  Config config = AllEnabled();
  ProcFs procfs(SOCKDIAG_TEST_DATA "/proc");
  CannedFactory factory;
  NamespacePoller poller(config, procfs, "net", &factory);
  auto result = poller.Poll();
  std::set<std::string> names;
  for (const auto& f : result.families) {
    INFO(f.name);
    CHECK(prometheus::CheckMetricName(f.name));
    CHECK(f.name.rfind("sockdiag_", 0) == 0);
    CHECK(names.insert(f.name).second);
    CHECK_FALSE(f.help.empty());
    const bool counter = f.type == prometheus::MetricType::Counter;
    const bool total = f.name.size() > 6 && f.name.substr(f.name.size() - 6) == "_total";
    CHECK(counter == total);
    for (const auto& m : f.metric) {
      std::set<std::string> label_names;
      for (const auto& l : m.label) {
        CHECK(prometheus::CheckLabelName(l.name));
        CHECK(label_names.insert(l.name).second);
      }
    }
  }
  CHECK(names.count("sockdiag_tcp_sockets") == 1);
  CHECK(names.count("sockdiag_sysctl") == 1);
}

TEST_CASE("sockets collector counts the canned stream exactly", "[collectors]") {
  Config config;
  config.collectors = {"sockets"};
  ProcFs procfs(SOCKDIAG_TEST_DATA "/proc");
  CannedFactory factory;
  NamespacePoller poller(config, procfs, "net", &factory);
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
}

TEST_CASE("a collector failure is isolated", "[collectors]") {
  Config config;
  config.collectors = {"sockets", "sysctl", "netstat"};
  ProcFs empty("/nonexistent-procfs-root");
  CannedFactory factory;
  NamespacePoller poller(config, empty, "net", &factory);
  auto result = poller.Poll();
  std::map<std::string, bool> ok;
  for (const auto& o : result.outcomes) ok[o.name] = o.success;
  CHECK(ok["sockets"]);
  CHECK_FALSE(ok["sysctl"]);
  CHECK_FALSE(ok["netstat"]);
}
