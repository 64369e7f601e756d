// ProcFs over the fixture tree tests/data/proc.

#include "source/procfs.h"

#include <catch2/catch.hpp>

using namespace sockdiag;

TEST_CASE("ProcFs reads fixture trees and maps errors", "[procfs]") {
  ProcFs fs(SOCKDIAG_TEST_DATA "/proc");
  auto range = fs.ReadSysctlInts("net.ipv4.ip_local_port_range");
  REQUIRE(range.ok());
  CHECK(range.value() == std::vector<long long>{32768, 60999});
  CHECK(fs.ReadSysctlInts("net.ipv4.tcp_tw_recycle").status().IsNotFound());
  CHECK(fs.ReadSysctlInts("net.ipv4.tcp_congestion_control").status().code() ==
        Status::Code::kCorruption);
  CHECK(fs.Path("net/netstat") == SOCKDIAG_TEST_DATA "/proc/net/netstat");
}
