// Test and bench support (tests/support): the Prometheus text exposition
// format, parsed strictly enough that a truncated, interleaved or garbled
// body is an error, and read back by name and labels.
#pragma once

#include <map>
#include <optional>
#include <string>
#include <utility>
#include <vector>

namespace sockdiag::testing {

using LabelSet = std::map<std::string, std::string>;

// One scrape's samples.
class Scrape {
 public:
  // Parses `text`. *error (when given) gets "" or the first violation of
  // the format (with its line): names, labels and escapes, values and
  // timestamps, TYPE lines, duplicate series, a missing final newline. The
  // samples before it are kept.
  static Scrape Parse(const std::string& text, std::string* error = nullptr);

  // Value of the sample with exactly these labels, or nullopt.
  std::optional<double> Get(const std::string& name, const LabelSet& labels = {}) const;
  // Value, or -1 when absent, for terse assertions.
  double Value(const std::string& name, const LabelSet& labels = {}) const;
  // Every sample of a metric name, as (labels, value).
  std::vector<std::pair<LabelSet, double>> All(const std::string& name) const;
  // Sum of a metric over all its samples.
  double Sum(const std::string& name) const;
  size_t size() const { return samples_.size(); }
  const std::string& text() const { return text_; }

 private:
  std::string text_;
  std::multimap<std::string, std::pair<LabelSet, double>> samples_;
};

}  // namespace sockdiag::testing
