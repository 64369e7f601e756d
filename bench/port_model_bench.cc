// port_model_bench: the ports collector's own cost per socket, without the
// kernel. Feeds PortModel the sockets of a synthetic pass (like
// sockdiag_bench's population: one connection in ten an ESTABLISHED pair,
// the rest client TIME_WAIT of every age, over --destinations
// destinations, 64 listeners), then reports, as the minimum over --repeat
// passes of thread CPU time (Begin: from the second pass on, when it has a
// pass to keep), the cost of Add() per socket and of Begin() and Report()
// per pass.
//
//   port_model_bench [--sockets=100000] [--destinations=64] [--repeat=50]

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <time.h>

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

#include "model/port_model.h"
#include "thread_cpu.h"

namespace {

using namespace sockdiag;

InetSocket Socket(uint8_t state, uint32_t local, uint16_t lport, uint32_t remote, uint16_t rport) {
  InetSocket s;
  s.family = AF_INET;
  s.protocol = IPPROTO_TCP;
  s.state = state;
  s.local_port = lport;
  s.remote_port = rport;
  const uint32_t l = htonl(local), r = htonl(remote);
  std::memcpy(s.local_addr.data(), &l, 4);
  std::memcpy(s.remote_addr.data(), &r, 4);
  return s;
}

}  // namespace

int main(int argc, char** argv) {
  size_t sockets = 100000, destinations = 64;
  int repeat = 50;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    if (a.rfind("--sockets=", 0) == 0) {
      sockets = std::stoul(a.substr(10));
    } else if (a.rfind("--destinations=", 0) == 0) {
      destinations = std::max<size_t>(1, std::stoul(a.substr(15)));
    } else if (a.rfind("--repeat=", 0) == 0) {
      repeat = std::max(1, std::stoi(a.substr(9)));
    } else {
      std::fprintf(stderr,
                   "usage: port_model_bench [--sockets=N] [--destinations=N] [--repeat=N]\n");
      return 2;
    }
  }
  // The pass, in the stream's order: listeners first.
  std::vector<InetSocket> pass;
  for (size_t d = 0; d < std::min<size_t>(destinations, 64); ++d) {
    pass.push_back(Socket(kTcpListen, 0x7f000002u + static_cast<uint32_t>(d), 9000, 0, 0));
  }
  std::vector<uint16_t> next_port(destinations, 10000);
  const size_t listeners = pass.size();
  for (size_t i = 0; pass.size() - listeners < sockets; ++i) {
    const size_t d = i % destinations;
    const uint32_t remote = 0x7f000002u + static_cast<uint32_t>(d);
    const uint16_t port = next_port[d]++;
    if (i % 10 == 0) {
      pass.push_back(Socket(kTcpEstablished, 0x7f000001u, port, remote, 9000));
      pass.push_back(Socket(kTcpEstablished, remote, 9000, 0x7f000001u, port));
    } else {
      InetSocket tw = Socket(kTcpTimeWait, 0x7f000001u, port, remote, 9000);
      tw.expires_ms = static_cast<uint32_t>((i * 7919) % 60000);
      pass.push_back(tw);
    }
  }
  PortSettings settings;
  settings.range_low = 10000;
  settings.range_high = 65000;
  settings.tw_reuse = 0;
  PortModel model(PortLimits{});
  std::vector<double> begin, add, report;
  size_t listed = 0;
  for (int r = 0; r < repeat; ++r) {
    double t0 = ThreadCpu();
    model.Begin(settings, static_cast<double>(r));
    begin.push_back(ThreadCpu() - t0);
    t0 = ThreadCpu();
    for (const auto& s : pass) model.Add(s);
    add.push_back(ThreadCpu() - t0);
    t0 = ThreadCpu();
    const PortReport rep = model.Report();
    report.push_back(ThreadCpu() - t0);
    listed += rep.top_destinations.size();
  }
  const double b = repeat > 1 ? *std::min_element(begin.begin() + 1, begin.end()) : begin[0];
  const double a = *std::min_element(add.begin(), add.end());
  const double p = *std::min_element(report.begin(), report.end());
  std::printf(
      "%zu sockets, %zu destinations, min of %d passes: Add %.1f ns/socket (%.2f ms), "
      "Begin %.3f ms, Report %.3f ms (%zu listed)\n",
      pass.size(), destinations, repeat, a / static_cast<double>(pass.size()) * 1e9, a * 1e3,
      b * 1e3, p * 1e3, listed / static_cast<size_t>(repeat));
  return 0;
}
