#include "proc/proc_parsers.h"

#include <charconv>
#include <vector>

namespace sockdiag {
namespace {

std::vector<std::string_view> SplitWords(std::string_view line) {
  std::vector<std::string_view> out;
  size_t i = 0;
  while (i < line.size()) {
    while (i < line.size() && (line[i] == ' ' || line[i] == '\t')) ++i;
    size_t j = i;
    while (j < line.size() && line[j] != ' ' && line[j] != '\t') ++j;
    if (j > i) out.push_back(line.substr(i, j - i));
    i = j;
  }
  return out;
}

}  // namespace

Result<std::map<std::string, int64_t, std::less<>>> ParseNetstat(std::string_view text) {
  std::map<std::string, int64_t, std::less<>> out;
  std::vector<std::string_view> lines;
  size_t start = 0;
  while (start < text.size()) {
    size_t nl = text.find('\n', start);
    if (nl == std::string_view::npos) nl = text.size();
    if (nl > start) lines.push_back(text.substr(start, nl - start));
    start = nl + 1;
  }
  if (lines.size() % 2 != 0) return Status::Corruption("netstat: header line without values");
  for (size_t i = 0; i < lines.size(); i += 2) {
    auto names = SplitWords(lines[i]);
    auto values = SplitWords(lines[i + 1]);
    if (names.empty() || names[0].empty() || names[0].back() != ':') {
      return Status::Corruption("netstat: line without a \"Proto:\" prefix");
    }
    if (values.empty() || values[0] != names[0]) {
      return Status::Corruption("netstat: value line does not match its header");
    }
    if (names.size() != values.size()) {
      return Status::Corruption("netstat: " + std::string(names[0]) + " field count mismatch");
    }
    std::string_view proto = names[0].substr(0, names[0].size() - 1);
    for (size_t k = 1; k < names.size(); ++k) {
      int64_t v = 0;
      auto [ptr, ec] = std::from_chars(values[k].data(), values[k].data() + values[k].size(), v);
      if (ec != std::errc() || ptr != values[k].data() + values[k].size()) {
        return Status::Corruption("netstat: non-numeric value for " + std::string(names[k]));
      }
      std::string key(proto);
      key += '.';
      key += names[k];
      out[key] = v;
    }
  }
  return out;
}

}  // namespace sockdiag
