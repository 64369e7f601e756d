// Golden files under tests/golden/ (README.md there): a test's output must
// equal the file byte for byte, unless SOCKDIAG_UPDATE_GOLDEN=1 asks to
// rewrite it.
#pragma once

#include <catch2/catch.hpp>
#include <cstdlib>
#include <fstream>
#include <sstream>
#include <string>

namespace sockdiag::testing {

// Compares with the golden file, or rewrites it when asked to.
inline void CompareWithGolden(const std::string& actual, const std::string& name) {
  const std::string path = std::string(SOCKDIAG_TEST_GOLDEN) + "/" + name;
  const char* update = std::getenv("SOCKDIAG_UPDATE_GOLDEN");
  if (update != nullptr && std::string(update) == "1") {
    std::ofstream(path, std::ios::binary) << actual;
    WARN("rewrote " << path);
    return;
  }
  std::ifstream in(path, std::ios::binary);
  REQUIRE(in.good());
  std::stringstream expected_text;
  expected_text << in.rdbuf();
  const std::string expected = expected_text.str();
  if (actual == expected) return;
  // Name the first line that differs rather than print both files.
  std::istringstream a(actual), e(expected);
  std::string a_line, e_line;
  int line = 0;
  for (;;) {
    ++line;
    const bool more_a = static_cast<bool>(std::getline(a, a_line));
    const bool more_e = static_cast<bool>(std::getline(e, e_line));
    if (!more_a) a_line = "<end of output>";
    if (!more_e) e_line = "<end of file>";
    if (a_line != e_line || (!more_a && !more_e)) break;
  }
  FAIL_CHECK(path << " differs at line " << line << "\n  expected: " << e_line
                  << "\n  actual:   " << a_line
                  << "\n(after a deliberate change, SOCKDIAG_UPDATE_GOLDEN=1 rewrites it: "
                     "tests/golden/README.md)");
}

}  // namespace sockdiag::testing
