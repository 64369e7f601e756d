// diagnose's JSON report; keys are documented in docs/diagnose.md.

#include <charconv>
#include <cmath>
#include <cstdio>
#include <optional>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>
#include <vector>

#include "diagnose/diagnose.h"

namespace sockdiag {
namespace {

class JsonWriter {
 public:
  std::string Take() { return std::move(out_) + "\n"; }

  JsonWriter& Begin(char bracket) {
    Separator();
    out_ += bracket;
    first_.push_back(true);
    return *this;
  }
  JsonWriter& End(char bracket) {
    const bool empty = first_.back();
    first_.pop_back();
    if (!empty) Newline();
    out_ += bracket;
    return *this;
  }
  JsonWriter& Key(std::string_view k) {
    Separator();
    Quote(k);
    out_ += ": ";
    after_key_ = true;
    return *this;
  }
  JsonWriter& String(std::string_view s) {
    Separator();
    Quote(s);
    return *this;
  }
  JsonWriter& Number(double v) {
    Separator();
    if (!std::isfinite(v)) {
      out_ += "null";
      return *this;
    }
    if (v == std::floor(v) && std::fabs(v) < 1e15) {
      out_ += std::to_string(static_cast<long long>(v));
      return *this;
    }
    char buf[32];
    auto [end, ec] = std::to_chars(buf, buf + sizeof buf, v);
    out_.append(buf, ec == std::errc() ? end : buf);
    return *this;
  }
  JsonWriter& Bool(bool b) {
    Separator();
    out_ += b ? "true" : "false";
    return *this;
  }
  JsonWriter& Null() {
    Separator();
    out_ += "null";
    return *this;
  }
  template <typename T>
  JsonWriter& Optional(const std::optional<T>& v) {
    if (!v) return Null();
    if constexpr (std::is_same_v<T, std::string>) {
      return String(*v);
    } else {
      return Number(static_cast<double>(*v));
    }
  }

 private:
  void Newline() { out_ += "\n" + std::string(2 * first_.size(), ' '); }
  void Separator() {
    if (after_key_) {
      after_key_ = false;
      return;
    }
    if (first_.empty()) return;
    if (!first_.back()) out_ += ',';
    first_.back() = false;
    Newline();
  }
  void Quote(std::string_view s) {
    out_ += '"';
    for (char ch : s) {
      const auto c = static_cast<unsigned char>(ch);
      switch (c) {
        case '"':
          out_ += "\\\"";
          break;
        case '\\':
          out_ += "\\\\";
          break;
        case '\n':
          out_ += "\\n";
          break;
        case '\t':
          out_ += "\\t";
          break;
        default:
          if (c < 0x20) {
            char buf[8];
            std::snprintf(buf, sizeof buf, "\\u%04x", c);
            out_ += buf;
          } else {
            out_ += ch;
          }
      }
    }
    out_ += '"';
  }

  std::string out_;
  std::vector<bool> first_;
  bool after_key_ = false;
};


}  // namespace

std::string RenderDiagnosisJson(const DiagnoseReport& r) {
  JsonWriter j;
  j.Begin('{');
  j.Key("format_version").Number(1);
  j.Key("target").String(r.target);
  j.Key("netns_inode").Optional(r.netns_inode);
  j.Key("interval_seconds").Number(r.interval_seconds);
  j.Key("exit_status").Number(DiagnosisExitStatus(r));

  const auto& s = r.sockets;
  j.Key("sockets").Begin('{');
  j.Key("available").Bool(s.available);
  j.Key("tcp").Begin('{');
  for (const auto& [state, n] : s.tcp) j.Key(state).Number(static_cast<double>(n));
  j.End('}');
  j.Key("tcp_total").Number(static_cast<double>(s.tcp_total));
  j.Key("tcp_ipv4").Number(static_cast<double>(s.tcp_ipv4));
  j.Key("tcp_ipv6").Number(static_cast<double>(s.tcp_ipv6));
  j.Key("udp").Optional(s.udp);
  j.Key("close_wait_change").Optional(s.close_wait_change);
  j.Key("close_rate_per_second").Number(s.close_rate);
  j.Key("active_opens_per_second").Optional(s.active_opens_rate);
  j.Key("passive_opens_per_second").Optional(s.passive_opens_rate);
  j.Key("time_wait_reused_per_second").Optional(s.time_wait_reused_rate);
  j.Key("tcp_max_tw_buckets").Optional(s.max_tw_buckets);
  j.End('}');

  const auto& p = r.ports;
  j.Key("ephemeral_ports").Begin('{');
  j.Key("range_low").Optional(p.range_low);
  j.Key("range_high").Optional(p.range_high);
  j.Key("reserved").Optional(p.reserved);
  j.Key("usable").Optional(p.usable);
  j.Key("utilization_max").Optional(p.utilization_max);
  j.Key("destinations").Optional(p.destinations);
  j.Key("destinations_dropped").Optional(p.destinations_dropped);
  j.Key("exhaustion_seconds_min").Optional(p.exhaustion_seconds_min);
  j.Key("steady_utilization_max").Optional(p.steady_utilization_max);
  j.End('}');

  j.Key("destinations").Begin('[');
  for (const auto& d : r.destinations) {
    j.Begin('{');
    j.Key("local_address").String(d.local_address);
    j.Key("remote_address").String(d.remote_address);
    j.Key("remote_port").Number(d.remote_port);
    j.Key("family").String(d.family);
    j.Key("ports_held").Number(static_cast<double>(d.ports_held));
    j.Key("utilization").Number(d.utilization);
    j.Key("time_wait_ports").Optional(d.time_wait_ports);
    j.Key("time_wait_share").Optional(d.time_wait_share);
    j.Key("time_wait_reusable").Bool(d.time_wait_reusable);
    j.Key("close_rate_per_second").Optional(d.close_rate);
    j.Key("closes_per_second").Optional(d.closes_per_second);
    j.Key("connection_growth_per_second").Optional(d.growth_per_second);
    j.Key("exhaustion_seconds").Optional(d.exhaustion_seconds);
    j.Key("steady_utilization").Optional(d.steady_utilization);
    j.End('}');
  }
  j.End(']');

  j.Key("service_ports").Begin('[');
  for (const auto& sp : r.service_ports) {
    j.Begin('{');
    j.Key("direction").String(sp.direction);
    j.Key("port").String(sp.port);
    j.Key("sockets").Number(static_cast<double>(sp.sockets));
    j.Key("states").Begin('{');
    for (const auto& [state, n] : sp.states) j.Key(state).Number(static_cast<double>(n));
    j.End('}');
    j.End('}');
  }
  j.End(']');

  j.Key("close_wait").Begin('[');
  for (const auto& c : r.close_wait) {
    j.Begin('{');
    j.Key("direction").String(c.direction);
    j.Key("port").String(c.port);
    j.Key("sockets").Number(static_cast<double>(c.sockets));
    j.End('}');
  }
  j.End(']');

  j.Key("listen_queues").Begin('[');
  for (const auto& q : r.listen_queues) {
    j.Begin('{');
    j.Key("address").String(q.address);
    j.Key("port").Number(q.port);
    j.Key("queue_length").Number(static_cast<double>(q.length));
    j.Key("queue_limit").Number(static_cast<double>(q.limit));
    j.Key("fill").Number(q.fill);
    j.Key("full").Bool(q.full);
    j.End('}');
  }
  j.End(']');
  j.Key("listen_overflows_total").Optional(r.listen_overflows_total);
  j.Key("listen_overflows_per_second").Optional(r.listen_overflows_rate);

  j.Key("sysctls").Begin('[');
  for (const auto& sc : r.sysctls) {
    j.Begin('{');
    j.Key("name").String(sc.name);
    j.Key("value").Optional(sc.value);
    j.Key("verdict").String(sc.verdict);
    j.End('}');
  }
  j.End(']');
  j.Key("time_wait_reuse").String(r.time_wait_reuse);
  j.Key("tcp_tw_recycle").String(r.tcp_tw_recycle);
  j.Key("time_wait_overflows_total").Optional(r.time_wait_overflows_total);
  j.Key("time_wait_overflows_per_second").Optional(r.time_wait_overflows_rate);

  const auto& c = r.conntrack;
  j.Key("conntrack").Begin('{');
  j.Key("available").Bool(c.available);
  j.Key("reason").String(c.reason);
  j.Key("entries").Optional(c.entries);
  j.Key("limit").Optional(c.limit);
  j.Key("fill").Optional(c.fill);
  for (const auto& [name, k] :
       {std::pair<const char*, const DiagnoseReport::Counter&>{"insert_failed", c.insert_failed},
        {"drop", c.drop},
        {"early_drop", c.early_drop}}) {
    j.Key(std::string(name) + "_total").Optional(k.total);
    j.Key(std::string(name) + "_per_second").Optional(k.rate);
  }
  j.Key("snat_utilization_max").Optional(c.snat_utilization_max);
  j.Key("snat_worst").String(c.snat_worst);
  j.Key("snat_worst_ports").Optional(c.snat_worst_ports);
  j.Key("tcp_time_wait_entries").Optional(c.tcp_time_wait_entries);
  j.End('}');

  j.Key("collectors").Begin('[');
  for (const auto& [name, ok] : r.collectors) {
    j.Begin('{');
    j.Key("name").String(name);
    j.Key("success").Bool(ok);
    j.End('}');
  }
  j.End(']');

  j.Key("findings").Begin('[');
  for (const auto& f : r.findings) {
    j.Begin('{');
    j.Key("id").String(f.id);
    j.Key("severity").String(SeverityName(f.severity));
    j.Key("subject").String(f.subject);
    j.Key("value").Number(f.value);
    j.Key("threshold").Optional(f.threshold);
    j.Key("message").String(f.message);
    j.End('}');
  }
  j.End(']');
  j.End('}');
  return j.Take();
}


}  // namespace sockdiag
