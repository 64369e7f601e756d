// The procfs text parsers and the reserved-port count on strings.

#include <catch2/catch.hpp>

#include "model/port_settings.h"
#include "proc/proc_parsers.h"

using namespace sockdiag;

TEST_CASE("ParseInts reads whitespace separated integers", "[procfs]") {
  auto v = ParseInts("32768\t60999\n");
  REQUIRE(v.ok());
  CHECK(v.value() == std::vector<long long>{32768, 60999});
  CHECK(ParseInts("-1\n").value() == std::vector<long long>{-1});
  CHECK_FALSE(ParseInts("").ok());
  CHECK_FALSE(ParseInts("\n").ok());
  CHECK_FALSE(ParseInts("12abc").ok());
  CHECK_FALSE(ParseInts("cubic reno").ok());
}

TEST_CASE("ParsePortRanges reads ip_local_reserved_ports", "[procfs]") {
  auto r = ParsePortRanges("8080,9000-9010\n");
  REQUIRE(r.ok());
  REQUIRE(r.value().size() == 2);
  CHECK(r.value()[1].first == 9000);
  CHECK(r.value()[1].last == 9010);
  CHECK(ParsePortRanges("\n").value().empty());
  CHECK_FALSE(ParsePortRanges("9010-9000").ok());
  CHECK_FALSE(ParsePortRanges("70000").ok());
  CHECK_FALSE(ParsePortRanges("1,,2").ok());
  CHECK_FALSE(ParsePortRanges("a-b").ok());
}

TEST_CASE("CountReservedInRange counts distinct ports inside the range", "[procfs]") {
  std::vector<PortRange> r = {{40010, 40019}, {40015, 40020}, {39000, 40000}, {50000, 50000}};
  CHECK(CountReservedInRange(r, 40000, 40999) == 12);  // 40000 + 40010..40020
  CHECK(CountReservedInRange({}, 1, 2) == 0);
  CHECK(CountReservedInRange(r, 5, 4) == 0);
}

TEST_CASE("ParseNetstat reads paired header and value lines", "[procfs]") {
  auto v = ParseNetstat(
      "TcpExt: SyncookiesSent TW TWRecycled\nTcpExt: 0 17 3\n"
      "IpExt: InOctets\nIpExt: 123456789012\n");
  REQUIRE(v.ok());
  CHECK(v.value().at("TcpExt.TW") == 17);
  CHECK(v.value().at("TcpExt.TWRecycled") == 3);
  CHECK(v.value().at("IpExt.InOctets") == 123456789012);
  auto snmp = ParseNetstat("Tcp: RtoAlgorithm MaxConn ActiveOpens\nTcp: 1 -1 42\n");
  REQUIRE(snmp.ok());
  CHECK(snmp.value().at("Tcp.MaxConn") == -1);
  CHECK_FALSE(ParseNetstat("TcpExt: A B\n").ok());
  CHECK_FALSE(ParseNetstat("TcpExt: A B\nTcpExt: 1\n").ok());
  CHECK_FALSE(ParseNetstat("TcpExt: A\nIpExt: 1\n").ok());
  CHECK_FALSE(ParseNetstat("TcpExt: A\nTcpExt: x\n").ok());
  CHECK_FALSE(ParseNetstat("garbage\nmore\n").ok());
}
