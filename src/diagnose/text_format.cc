#include "diagnose/text_format.h"

#include <cmath>
#include <cstdio>

namespace sockdiag::text {

std::string Fixed(double v, int decimals) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.*f", decimals, v);
  return buf;
}

// "94%", "<1%" for small non-zero ratios.
std::string Percent(double ratio) {
  if (ratio > 0 && ratio < 0.005) return "<1%";
  return Fixed(std::round(ratio * 100), 0) + "%";
}

// A rate with two significant digits at most where it matters: "7.8", "350".
std::string RateText(double per_second) {
  if (per_second >= 10 || per_second == 0) return Fixed(std::round(per_second), 0);
  if (per_second < 0.05) return "<0.1";
  return Fixed(per_second, 1);
}

std::string Num(uint64_t v) { return std::to_string(v); }

std::string DurationText(double seconds) {
  if (seconds >= 3600) return "over an hour";
  if (seconds < 1) return "<1 s";
  if (seconds < 120) return "~" + Fixed(std::round(seconds), 0) + " s";
  return "~" + Fixed(std::round(seconds / 60), 0) + " min";
}

std::string HostPort(const std::string& address, uint16_t port) {
  if (address.find(':') != std::string::npos) return "[" + address + "]:" + std::to_string(port);
  return address + ":" + std::to_string(port);
}

// Word-wraps `text` to `width`, the first line after `first` (already
// written by the caller, its length counted), the others indented by
// `indent` spaces.
std::string Wrap(const std::string& text, size_t first_len, size_t indent, size_t width) {
  std::string out;
  size_t col = first_len;
  size_t i = 0;
  bool line_empty = true;
  while (i < text.size()) {
    while (i < text.size() && text[i] == ' ') ++i;
    size_t j = text.find(' ', i);
    if (j == std::string::npos) j = text.size();
    const std::string word = text.substr(i, j - i);
    i = j;
    if (word.empty()) break;
    if (!line_empty && col + 1 + word.size() > width) {
      out += "\n" + std::string(indent, ' ');
      col = indent;
      line_empty = true;
    }
    if (!line_empty) {
      out += ' ';
      ++col;
    }
    out += word;
    col += word.size();
    line_empty = false;
  }
  return out;
}

std::string Pad(const std::string& s, size_t width) {
  return s.size() >= width ? s : s + std::string(width - s.size(), ' ');
}
std::string PadLeft(const std::string& s, size_t width) {
  return s.size() >= width ? s : std::string(width - s.size(), ' ') + s;
}

std::string Table::Row(std::initializer_list<std::string> cells) const {
  std::string out = "  ";
  size_t i = 0;
  for (const std::string& cell : cells) {
    const Column& c = columns_.at(i++);
    out += std::string(c.gap, ' ');
    out += c.align == Align::kLeft ? Pad(cell, c.width) : PadLeft(cell, c.width);
  }
  return out;
}

size_t Table::width() const {
  size_t w = 2;
  for (const Column& c : columns_) w += c.gap + c.width;
  return w;
}
}  // namespace sockdiag::text
