// Test and bench support (tests/support): sysctls, waiting, statistics.
#pragma once

#include <chrono>
#include <functional>
#include <string>
#include <vector>

namespace sockdiag::testing {

// Writes a sysctl of the current network namespace by dotted name
// ("net.ipv4.tcp_tw_reuse"); "" or what went wrong.
std::string SetSysctl(const std::string& dotted, const std::string& value);

// Polls `pred` every 20 ms until true or the deadline passes.
bool WaitUntil(const std::function<bool()>& pred,
               std::chrono::milliseconds deadline = std::chrono::seconds(10));

// The median (upper one of an even count). REQUIRES: !values.empty().
double Median(std::vector<double> values);

}  // namespace sockdiag::testing
