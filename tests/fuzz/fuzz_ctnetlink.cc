// Fuzzes the ctnetlink reply path: one datagram through the walker, each
// message through every ctnetlink parser (entries, per-CPU and global stats).
#include <cstddef>
#include <cstdint>
#include <vector>

#include "netlink/ctnetlink.h"
#include "netlink/netlink.h"

namespace {

struct Sink : sockdiag::MessageSink {
  uint64_t n = 0;
  sockdiag::Status OnMessage(const struct nlmsghdr* nlh) override {
    if (auto e = sockdiag::ParseCtEntry(nlh); e.ok()) n += e.value().status + e.value().reply.has_value();
    if (auto c = sockdiag::ParseCtCpuStats(nlh); c.ok()) n += 2;
    if (auto g = sockdiag::ParseCtGlobalStats(nlh); g.ok()) n += 3;
    return sockdiag::Status::Ok();
  }
};

volatile uint64_t g_sink;

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::vector<uint8_t> buf(data, data + size);  // Exact-size heap copy.
  Sink sink;
  sockdiag::DumpStats stats;
  auto r = sockdiag::ProcessDatagram(buf, 0, 0, sink, &stats);
  g_sink = sink.n + (r.ok() ? 1 : 0);
  return 0;
}
