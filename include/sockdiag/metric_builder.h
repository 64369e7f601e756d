// Helpers to build prometheus-cpp MetricFamily values by hand.
//
// Collectors build fresh families on every poll (writing_exporters.md:
// "create new metrics each time"), so nothing stale survives a poll. These
// builders keep that terse. They do not validate names; tests run
// prometheus::CheckMetricName/CheckLabelName over everything emitted.
#pragma once

#include <prometheus/metric_family.h>

#include <initializer_list>
#include <string>
#include <utility>
#include <vector>

namespace sockdiag {

using MetricFamilies = std::vector<prometheus::MetricFamily>;
using Labels = std::vector<prometheus::ClientMetric::Label>;

class FamilyBuilder {
 public:
  FamilyBuilder(std::string name, std::string help, prometheus::MetricType type) {
    family_.name = std::move(name);
    family_.help = std::move(help);
    family_.type = type;
  }

  static FamilyBuilder Gauge(std::string name, std::string help) {
    return FamilyBuilder(std::move(name), std::move(help), prometheus::MetricType::Gauge);
  }
  static FamilyBuilder Counter(std::string name, std::string help) {
    return FamilyBuilder(std::move(name), std::move(help), prometheus::MetricType::Counter);
  }

  FamilyBuilder& Add(Labels labels, double value) {
    prometheus::ClientMetric m;
    m.label = std::move(labels);
    switch (family_.type) {
      case prometheus::MetricType::Counter:
        m.counter.value = value;
        break;
      case prometheus::MetricType::Untyped:
        m.untyped.value = value;
        break;
      default:
        m.gauge.value = value;
        break;
    }
    family_.metric.push_back(std::move(m));
    return *this;
  }
  FamilyBuilder& Add(double value) { return Add(Labels{}, value); }

  bool empty() const { return family_.metric.empty(); }

  // Moves the family into `out`, even when it has no metric (the text
  // format then shows its HELP and TYPE lines alone).
  void AppendTo(MetricFamilies* out) { out->push_back(std::move(family_)); }

 private:
  prometheus::MetricFamily family_;
};

}  // namespace sockdiag
