#include "sockdiag/log.h"

#include <catch2/catch.hpp>

using namespace sockdiag;

TEST_CASE("logfmt quotes values that need it", "[log]") {
  std::string line = FormatLogLine(LogFormat::kLogfmt, LogLevel::kWarn, "collector failed",
                                   {{"collector", "conntrack"}, {"err", "open: \"x\""}}, "T");
  CHECK(line ==
        "ts=T level=warn msg=\"collector failed\" collector=conntrack err=\"open: \\\"x\\\"\"\n");
}

TEST_CASE("json lines escape control characters", "[log]") {
  std::string line =
      FormatLogLine(LogFormat::kJson, LogLevel::kInfo, "a\nb", {{"k", "v\t\x01"}}, "T");
  CHECK(line == "{\"ts\":\"T\",\"level\":\"info\",\"msg\":\"a\\nb\",\"k\":\"v\\t\\u0001\"}\n");
}
