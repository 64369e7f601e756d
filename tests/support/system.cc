#include "support/system.h"

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <thread>

namespace sockdiag::testing {

std::string SetSysctl(const std::string& dotted, const std::string& value) {
  std::string path = "/proc/sys/";
  for (char c : dotted) path += (c == '.') ? '/' : c;
  std::ofstream out(path);
  if (!out) return "cannot open " + path + ": " + std::strerror(errno);
  out << value << "\n";
  out.close();
  if (out.fail()) return "cannot write " + value + " to " + path;
  return "";
}

bool WaitUntil(const std::function<bool()>& pred, std::chrono::milliseconds deadline) {
  const auto end = std::chrono::steady_clock::now() + deadline;
  for (;;) {
    if (pred()) return true;
    if (std::chrono::steady_clock::now() >= end) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
}

double Median(std::vector<double> values) {
  std::sort(values.begin(), values.end());
  return values[values.size() / 2];
}

}  // namespace sockdiag::testing
