#include "proc/proc_parsers.h"

#include <cctype>
#include <charconv>
#include <vector>

namespace sockdiag {
namespace {

bool IsSpace(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r'; }

bool IsHex(char c) { return std::isxdigit(static_cast<unsigned char>(c)) != 0; }

// Matches 8-4-4-4-12 hex digits with '-' or '_' separators at s[i].
bool MatchUid(std::string_view s, size_t i, std::string* out) {
  static constexpr size_t kGroups[] = {8, 4, 4, 4, 12};
  std::string uid;
  size_t p = i;
  for (size_t g = 0; g < 5; ++g) {
    for (size_t k = 0; k < kGroups[g]; ++k, ++p) {
      if (p >= s.size() || !IsHex(s[p])) return false;
      uid += static_cast<char>(std::tolower(static_cast<unsigned char>(s[p])));
    }
    if (g < 4) {
      if (p >= s.size() || (s[p] != '-' && s[p] != '_')) return false;
      uid += '-';
      ++p;
    }
  }
  // Must end the path component (or the ".slice" suffix follows).
  if (p < s.size() && s[p] != '/' && s[p] != '.' && s[p] != '\n') return false;
  *out = uid;
  return true;
}

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

Result<std::vector<long long>> ParseInts(std::string_view text) {
  std::vector<long long> out;
  size_t i = 0;
  while (i < text.size()) {
    if (IsSpace(text[i])) {
      ++i;
      continue;
    }
    long long v = 0;
    auto [ptr, ec] = std::from_chars(text.data() + i, text.data() + text.size(), v);
    if (ec != std::errc() || (ptr != text.data() + text.size() && !IsSpace(*ptr))) {
      return Status::Corruption("not an integer list: \"" + std::string(text.substr(0, 64)) + "\"");
    }
    out.push_back(v);
    i = static_cast<size_t>(ptr - text.data());
  }
  if (out.empty()) return Status::Corruption("empty value where integers were expected");
  return out;
}

Result<std::vector<PortRange>> ParsePortRanges(std::string_view text) {
  std::vector<PortRange> out;
  while (!text.empty() && IsSpace(text.back())) text.remove_suffix(1);
  while (!text.empty() && IsSpace(text.front())) text.remove_prefix(1);
  if (text.empty()) return out;
  size_t start = 0;
  while (start <= text.size()) {
    size_t comma = text.find(',', start);
    if (comma == std::string_view::npos) comma = text.size();
    std::string_view item = text.substr(start, comma - start);
    uint32_t first = 0, last = 0;
    const char* b = item.data();
    const char* e = item.data() + item.size();
    auto r1 = std::from_chars(b, e, first);
    if (r1.ec != std::errc()) return Status::Corruption("bad port list item: " + std::string(item));
    last = first;
    if (r1.ptr != e) {
      if (*r1.ptr != '-') return Status::Corruption("bad port list item: " + std::string(item));
      auto r2 = std::from_chars(r1.ptr + 1, e, last);
      if (r2.ec != std::errc() || r2.ptr != e) {
        return Status::Corruption("bad port list item: " + std::string(item));
      }
    }
    if (first > 65535 || last > 65535 || first > last) {
      return Status::Corruption("bad port range: " + std::string(item));
    }
    out.push_back({first, last});
    start = comma + 1;
  }
  return out;
}

std::optional<std::string> ParsePodUid(std::string_view text) {
  // Only paths under a kubepods hierarchy name pods.
  size_t from = 0;
  while ((from = text.find("kubepods", from)) != std::string_view::npos) {
    size_t line_end = text.find('\n', from);
    std::string_view line = text.substr(from, line_end == std::string_view::npos
                                                  ? std::string_view::npos
                                                  : line_end - from);
    for (size_t i = line.find("pod"); i != std::string_view::npos; i = line.find("pod", i + 1)) {
      std::string uid;
      if (MatchUid(line, i + 3, &uid)) return uid;
    }
    from += 8;
  }
  return std::nullopt;
}

}  // namespace sockdiag
