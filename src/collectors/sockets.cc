// Collector "sockets": TCP sockets by family and state, UDP sockets by family
// (no UDP series on a kernel without UDP diagnostics, which refuses the dump).
//
// Counts while the dump streams (12 x 2 counters); no socket is kept.
// IPv4-mapped addresses on AF_INET6 sockets count as ipv6: the family is
// that of the socket, which is what the application opened.

#include <netinet/in.h>
#include <sys/socket.h>

#include <array>

#include "collectors/collectors.h"

namespace sockdiag {
namespace {

class SocketsCollector final : public Collector, public SocketStreamSink {
 public:
  Status Begin(const PollContext&) override {
    Reset();
    return Status::Ok();
  }
  SocketStreamSink* socket_sink() override { return this; }
  bool wants_udp() const override { return true; }

  void Reset() override {
    tcp_ = {};
    udp_ = {};
    udp_known_ = true;
  }
  void OnUnavailable(uint8_t protocol) override {
    if (protocol == IPPROTO_UDP) udp_known_ = false;
  }

  void OnSocket(const InetSocket& s) override {
    const size_t fam = s.family == AF_INET6 ? 1 : 0;
    if (s.protocol == IPPROTO_UDP) {
      udp_[fam]++;
    } else if (s.state < kTcpStateCount) {
      tcp_[fam][s.state]++;
    }
  }

  Status Collect(const PollContext&, MetricFamilies* out) override {
    static constexpr const char* kFamilies[] = {"ipv4", "ipv6"};
    auto tcp = FamilyBuilder::Gauge(
        "sockdiag_tcp_sockets",
        "TCP sockets by address family and state, from sock_diag at the last poll.");
    for (size_t f = 0; f < 2; ++f) {
      for (uint8_t st = 1; st < kTcpStateCount; ++st) {
        tcp.Add({{"family", kFamilies[f]}, {"state", TcpStateName(st)}},
                static_cast<double>(tcp_[f][st]));
      }
    }
    std::move(tcp).AppendTo(out);
    // Without UDP diagnostics in the kernel the count is unknown: no series.
    if (!udp_known_) return Status::Ok();
    auto udp = FamilyBuilder::Gauge(
        "sockdiag_udp_sockets", "UDP sockets by address family, from sock_diag at the last poll.");
    for (size_t f = 0; f < 2; ++f) udp.Add({{"family", kFamilies[f]}}, static_cast<double>(udp_[f]));
    std::move(udp).AppendTo(out);
    return Status::Ok();
  }

 private:
  std::array<std::array<uint64_t, kTcpStateCount>, 2> tcp_{};
  std::array<uint64_t, 2> udp_{};
  bool udp_known_ = true;  // False when the kernel refused the UDP dump.
};

}  // namespace

std::unique_ptr<Collector> NewSocketsCollector(const Config&) {
  return std::make_unique<SocketsCollector>();
}

}  // namespace sockdiag
