#include "support/exposition.h"

#include <cctype>
#include <cstdio>
#include <cstdlib>
#include <set>
#include <string_view>

namespace sockdiag::testing {
namespace {

bool IsNameStart(char c) {
  return std::isalpha(static_cast<unsigned char>(c)) || c == '_' || c == ':';
}
bool IsNameChar(char c) { return IsNameStart(c) || std::isdigit(static_cast<unsigned char>(c)); }
bool IsLabelStart(char c) { return std::isalpha(static_cast<unsigned char>(c)) || c == '_'; }
bool IsLabelChar(char c) { return IsLabelStart(c) || std::isdigit(static_cast<unsigned char>(c)); }

// Parses one sample line into name, labels and value; "" or what is wrong.
std::string ParseSample(std::string_view line, std::string* name, LabelSet* labels, double* value,
                        std::string* series) {
  size_t i = 0;
  if (line.empty() || !IsNameStart(line[0])) return "bad metric name";
  while (i < line.size() && IsNameChar(line[i])) ++i;
  *name = std::string(line.substr(0, i));
  if (i < line.size() && line[i] == '{') {
    ++i;
    while (i < line.size() && line[i] != '}') {
      const size_t ls = i;
      if (!IsLabelStart(line[i])) return "bad label name";
      while (i < line.size() && IsLabelChar(line[i])) ++i;
      const std::string lname(line.substr(ls, i - ls));
      if (i + 1 >= line.size() || line[i] != '=' || line[i + 1] != '"') return "bad label";
      i += 2;
      std::string lvalue;
      while (i < line.size() && line[i] != '"') {
        if (line[i] == '\\') {
          if (i + 1 >= line.size()) return "bad escape";
          const char e = line[i + 1];
          if (e != '\\' && e != '"' && e != 'n') return "bad escape";
          lvalue += e == 'n' ? '\n' : e;
          i += 2;
          continue;
        }
        lvalue += line[i++];
      }
      if (i >= line.size()) return "unterminated label value";
      ++i;  // The closing quote.
      if (!labels->emplace(lname, lvalue).second) return "repeated label";
      if (i < line.size() && line[i] == ',') {
        ++i;
      } else if (i >= line.size() || line[i] != '}') {
        return "bad label separator";
      }
    }
    if (i >= line.size()) return "unterminated label set";
    ++i;  // '}'
  }
  *series = std::string(line.substr(0, i));
  if (i >= line.size() || line[i] != ' ') return "no value";
  while (i < line.size() && line[i] == ' ') ++i;
  const size_t ve = line.find(' ', i);
  const std::string text(line.substr(i, ve == std::string_view::npos ? ve : ve - i));
  char* end = nullptr;
  *value = std::strtod(text.c_str(), &end);
  if (text.empty() || *end != '\0') return "bad value";
  if (ve != std::string_view::npos) {  // Optional timestamp: an integer.
    const std::string_view ts = line.substr(ve + 1);
    if (ts.empty() || ts.find_first_not_of("-0123456789") != std::string_view::npos) {
      return "bad timestamp";
    }
  }
  return "";
}

// "" or what is wrong with a # line (HELP and TYPE are checked).
std::string CheckComment(std::string_view line, std::set<std::string>* typed) {
  const bool help = line.rfind("# HELP ", 0) == 0, type = line.rfind("# TYPE ", 0) == 0;
  if (!help && !type) return "";
  size_t i = 7;
  if (i >= line.size() || !IsNameStart(line[i])) return "bad metric name in comment";
  while (i < line.size() && IsNameChar(line[i])) ++i;
  const std::string name(line.substr(7, i - 7));
  if (help) return i < line.size() && line[i] != ' ' ? "bad HELP" : "";
  if (i >= line.size() || line[i] != ' ') return "TYPE without type";
  const std::string_view t = line.substr(i + 1);
  if (t != "counter" && t != "gauge" && t != "summary" && t != "histogram" && t != "untyped") {
    return "unknown type";
  }
  if (!typed->insert(name).second) return "family typed twice";
  return "";
}

}  // namespace

Scrape Scrape::Parse(const std::string& text, std::string* error) {
  Scrape s;
  s.text_ = text;
  std::string ignored;
  std::string& err = error != nullptr ? *error : ignored;
  err.clear();
  if (text.empty() || text.back() != '\n') err = "body empty or not newline-terminated";
  std::set<std::string> typed, series;
  size_t pos = 0, line_no = 0;
  while (pos < text.size()) {
    size_t eol = text.find('\n', pos);
    if (eol == std::string::npos) eol = text.size();
    const std::string_view line(text.data() + pos, eol - pos);
    pos = eol + 1;
    ++line_no;
    if (line.empty()) continue;
    std::string what;
    if (line[0] == '#') {
      what = CheckComment(line, &typed);
    } else {
      std::string name, key;
      LabelSet labels;
      double value = 0;
      what = ParseSample(line, &name, &labels, &value, &key);
      if (what.empty() && !series.insert(key).second) what = "duplicate series";
      if (what.empty()) s.samples_.emplace(name, std::make_pair(std::move(labels), value));
    }
    if (!what.empty() && err.empty()) {
      char prefix[32];
      std::snprintf(prefix, sizeof(prefix), "line %zu: ", line_no);
      err = prefix + what + ": \"" + std::string(line.substr(0, 80)) + "\"";
    }
  }
  return s;
}

std::optional<double> Scrape::Get(const std::string& name, const LabelSet& labels) const {
  auto range = samples_.equal_range(name);
  for (auto it = range.first; it != range.second; ++it) {
    if (it->second.first == labels) return it->second.second;
  }
  return std::nullopt;
}

double Scrape::Value(const std::string& name, const LabelSet& labels) const {
  auto v = Get(name, labels);
  return v ? *v : -1;
}

std::vector<std::pair<LabelSet, double>> Scrape::All(const std::string& name) const {
  std::vector<std::pair<LabelSet, double>> out;
  auto range = samples_.equal_range(name);
  for (auto it = range.first; it != range.second; ++it) out.push_back(it->second);
  return out;
}

double Scrape::Sum(const std::string& name) const {
  double sum = 0;
  for (const auto& [labels, v] : All(name)) sum += v;
  return sum;
}

}  // namespace sockdiag::testing
