// Text helpers shared by diagnose's analysis (finding messages) and its
// text renderer: numbers, ratios and rates as the report words them,
// host:port, word wrapping, padding, and the report's tables.
//
// Thread-safety: reentrant functions.
#pragma once

#include <cstddef>
#include <cstdint>
#include <initializer_list>
#include <string>
#include <vector>

namespace sockdiag::text {

// "94%", "<1%" for small non-zero ratios.
std::string Percent(double ratio);
// A rate with two significant digits at most where it matters: "7.8", "350".
std::string RateText(double per_second);
// `v` with `decimals` digits after the point.
std::string Fixed(double v, int decimals);
std::string Num(uint64_t v);
// A forecast in seconds: "<1 s", "~40 s", "~7 min", "over an hour" (the
// 3600 s horizon).
std::string DurationText(double seconds);
// "127.0.0.2:3306", or "[::1]:443" for an IPv6 address.
std::string HostPort(const std::string& address, uint16_t port);
// Word-wraps `text` to `width`, the first line after `first` (already
// written by the caller, its length counted), the others indented by
// `indent` spaces.
std::string Wrap(const std::string& text, size_t first_len, size_t indent, size_t width = 80);
// `s` padded with spaces to `width` on the right (Pad) or the left (PadLeft).
std::string Pad(const std::string& s, size_t width);
std::string PadLeft(const std::string& s, size_t width);

// The report's tables: fixed-width columns under a heading, each row
// indented two spaces and each cell padded to its column (names to the left,
// numbers to the right). A column may start with a gap of spaces; a row may
// have fewer cells than columns (nothing is written for the missing ones).
class Table {
 public:
  enum class Align { kLeft, kRight };
  struct Column {
    size_t width;
    Align align = Align::kLeft;
    size_t gap = 0;  // Spaces before the cell.
  };
  explicit Table(std::initializer_list<Column> columns) : columns_(columns) {}

  std::string Row(std::initializer_list<std::string> cells) const;
  // Where text after a full row starts (indent, gaps and widths).
  size_t width() const;

 private:
  std::vector<Column> columns_;
};

}  // namespace sockdiag::text
