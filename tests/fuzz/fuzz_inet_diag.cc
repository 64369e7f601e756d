// Fuzzes the sock_diag reply path: one datagram through the netlink walker,
// each data message through ParseInetDiag, as the real dump does.
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <vector>

#include "netlink/address.h"
#include "netlink/inet_diag.h"
#include "netlink/netlink.h"

namespace {

struct Sink : sockdiag::MessageSink {
  uint64_t states = 0;
  uint64_t messages = 0;
  sockdiag::Status OnMessage(const struct nlmsghdr* nlh) override {
    sockdiag::InetSocket s;
    sockdiag::Status st = sockdiag::ParseInetDiag(nlh, 6, &s);
    if (st.ok()) {
      states += s.state + s.local_port + sockdiag::IsLoopbackAddress(s.family, s.remote_addr);
    }
    ++messages;
    return st;
  }
};

volatile uint64_t g_sink;

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  // Exact-size heap copy so overreads hit the redzone.
  std::vector<uint8_t> buf(data, data + size);
  Sink sink;
  sockdiag::DumpStats stats;
  auto r = sockdiag::ProcessDatagram(buf, 0, 0, sink, &stats);
  g_sink = sink.states + sink.messages + (r.ok() ? 1 : 0);
  return 0;
}
