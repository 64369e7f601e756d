// diagnose's human report, at most 80 columns wide.

#include <algorithm>
#include <cmath>
#include <string>
#include <utility>
#include <vector>

#include "diagnose/diagnose.h"
#include "diagnose/text_format.h"

namespace sockdiag {

using namespace text;

std::string RenderDiagnosisText(const DiagnoseReport& r) {
  std::string out;
  auto line = [&out](const std::string& s) { out += s + "\n"; };
  auto heading = [&out](const std::string& s) { out += "\n" + s + "\n"; };

  std::string title = "sockdiag_exporter diagnose: " + r.target;
  if (r.netns_inode) title += " (net:[" + Num(*r.netns_inode) + "])";
  line(Wrap(title, 0, 2));
  line(r.interval_seconds > 0
           ? "Two polls " + Fixed(r.interval_seconds, 1) + " s apart; rates are over that time."
           : "One poll; no rates.");

  // Sockets.
  heading("SOCKETS");
  const auto& s = r.sockets;
  if (!s.available) {
    line("  not available (the sockets collector is off or failed)");
  } else {
    std::vector<std::pair<std::string, uint64_t>> states;
    for (const auto& st : s.tcp) {
      if (st.second > 0) states.push_back(st);
    }
    std::stable_sort(states.begin(), states.end(),
                     [](const auto& a, const auto& b) { return a.second > b.second; });
    std::string text =
        "TCP " + Num(s.tcp_total) + " (ipv4 " + Num(s.tcp_ipv4) + ", ipv6 " + Num(s.tcp_ipv6) + ")";
    for (size_t i = 0; i < states.size(); ++i) {
      text += (i == 0 ? ": " : ", ") + states[i].first + " " + Num(states[i].second);
    }
    line("  " + Wrap(text, 2, 4));
    if (s.udp) line("  UDP " + Num(*s.udp));
    std::string tw = "TIME_WAIT " + Num(s.time_wait);
    if (s.max_tw_buckets) tw += " of max " + Num(*s.max_tw_buckets);
    tw += ": ~" + RateText(s.close_rate) + " closes/s (TIME_WAIT / 60 s)";
    line("  " + Wrap(tw, 2, 4));
    if (s.active_opens_rate || s.passive_opens_rate) {
      std::string rates = "Last " + Fixed(r.interval_seconds, 1) +
                          " s: " + RateText(s.active_opens_rate.value_or(0)) + " connects/s, " +
                          RateText(s.passive_opens_rate.value_or(0)) + " accepts/s";
      if (s.time_wait_reused_rate) {
        rates += ", " + RateText(*s.time_wait_reused_rate) + " TIME_WAIT reused/s";
      }
      line("  " + Wrap(rates, 2, 4));
    }
  }

  // Destinations.
  const auto& p = r.ports;
  std::string dest_head = "EPHEMERAL PORTS PER DESTINATION";
  if (p.range_low && p.range_high && p.usable) {
    dest_head +=
        " (" + Num(*p.usable) + " usable: " + Num(*p.range_low) + "-" + Num(*p.range_high) + ")";
  }
  heading(dest_head);
  if (!p.usable) {
    line("  not available (the ports collector is off or failed)");
  } else if (r.destinations.empty()) {
    line("  no outbound connection holds an ephemeral port");
  } else {
    constexpr size_t kDestWidth = 44;
    const Table table({{kDestWidth},
                       {6, Table::Align::kRight},
                       {6, Table::Align::kRight},
                       {11, Table::Align::kRight},
                       {0, Table::Align::kLeft, 2}});
    line(table.Row({"FROM -> TO", "HELD", "USED", "TIME_WAIT", "REUSE"}));
    const size_t shown = std::min<size_t>(r.destinations.size(), 5);
    for (size_t i = 0; i < shown; ++i) {
      const auto& d = r.destinations[i];
      std::string name = d.local_address + " -> " + d.RemoteText();
      if (name.size() > kDestWidth) {  // Long IPv6 addresses: one per line.
        line("  " + d.local_address + " ->");
        name = "  " + d.RemoteText();
        if (name.size() > kDestWidth) {
          line("  " + name);
          name.clear();
        }
      }
      line(table.Row({name, Num(d.ports_held), Percent(d.utilization),
                      d.time_wait_share ? Percent(*d.time_wait_share) : "?",
                      d.time_wait_reusable ? "yes" : "no"}));
    }
    std::string more = "Destinations tracked: " + Num(p.destinations.value_or(0)) +
                       ", worst utilization " + Percent(p.utilization_max.value_or(0)) +
                       ". USED: ports a new connect() cannot take. TIME_WAIT: share of "
                       "HELD.";
    line("  " + Wrap(more, 2, 2));
  }

  // The forecast, soonest first.
  if (p.exhaustion_seconds_min) {
    heading("TIME TO EXHAUSTION AT TODAY'S RATES");
    std::vector<const DiagnoseReport::Destination*> forecast;
    for (const auto& d : r.destinations) {
      if (d.exhaustion_seconds) forecast.push_back(&d);
    }
    std::stable_sort(forecast.begin(), forecast.end(), [](const auto* a, const auto* b) {
      return *a->exhaustion_seconds < *b->exhaustion_seconds;
    });
    if (!forecast.empty()) {
      constexpr size_t kToWidth = 30;
      const auto right = Table::Align::kRight;
      const Table table({{kToWidth}, {12, right}, {10, right}, {10, right}, {8, right}});
      line(table.Row({"TO", "RUN OUT", "CLOSES/S", "GROWTH/S", "STEADY"}));
      for (size_t i = 0; i < std::min<size_t>(forecast.size(), 5); ++i) {
        const auto& d = *forecast[i];
        std::string to = d.RemoteText();
        if (to.size() > kToWidth) {  // Long IPv6 addresses: on their own line.
          line("  " + to);
          to.clear();
        }
        const double growth = d.growth_per_second.value_or(0);
        line(table.Row({to, DurationText(*d.exhaustion_seconds),
                        RateText(d.closes_per_second.value_or(0)),
                        (growth < 0 ? "-" : "") + RateText(std::fabs(growth)),
                        Percent(d.steady_utilization.value_or(0))}));
      }
    }
    std::string note =
        "Soonest over every destination: " + DurationText(*p.exhaustion_seconds_min) +
        "; worst steady state " + Percent(p.steady_utilization_max.value_or(0)) +
        " of the usable ports. CLOSES/S: over the ports collector's rate window; GROWTH/S: "
        "connections held (not TIME_WAIT), between the two polls; STEADY: where utilization "
        "settles at today's close rate.";
    line("  " + Wrap(note, 2, 2));
  }

  // Service ports.
  heading("SERVICE PORTS (outbound: remote port; inbound: local listening port)");
  if (r.service_ports.empty()) {
    line("  none");
  } else {
    const auto right = Table::Align::kRight;
    const Table table({{11}, {7}, {9, right}, {8, right}, {11, right}, {12, right}, {8, right}});
    line(table.Row({"DIRECTION", "PORT", "SOCKETS", "ESTAB", "TIME_WAIT", "CLOSE_WAIT", "OTHER"}));
    const size_t shown = std::min<size_t>(r.service_ports.size(), 8);
    for (size_t i = 0; i < shown; ++i) {
      const auto& sp = r.service_ports[i];
      const uint64_t est = sp.State("established"), tw = sp.State("time_wait"),
                     cw = sp.State("close_wait");
      line(table.Row({sp.direction, sp.port, Num(sp.sockets), Num(est), Num(tw), Num(cw),
                      Num(sp.sockets - est - tw - cw)}));
    }
  }

  heading("CLOSE_WAIT BY PORT (the application has not called close())");
  if (r.close_wait.empty()) {
    line("  none");
  } else {
    const Table table({{20}, {8, Table::Align::kRight}});
    for (size_t i = 0; i < std::min<size_t>(r.close_wait.size(), 5); ++i) {
      const auto& c = r.close_wait[i];
      line(table.Row({c.direction + " :" + c.port, Num(c.sockets)}));
    }
  }

  heading("LISTEN QUEUES NEAR FULL (>= " + Percent(kDiagnoseThresholds.listen_queue_near_full) +
          " of the backlog)");
  if (r.listen_queues.empty()) {
    line("  none");
  } else {
    const Table table({{30}, {12, Table::Align::kRight}, {0, Table::Align::kLeft, 2}});
    for (size_t i = 0; i < std::min<size_t>(r.listen_queues.size(), 5); ++i) {
      const auto& q = r.listen_queues[i];
      const std::string address = HostPort(q.address, q.port);
      const std::string fill = Num(q.length) + "/" + Num(q.limit);
      line(q.full ? table.Row({address, fill, "FULL"}) : table.Row({address, fill}));
    }
  }
  if (r.listen_overflows_total) {
    std::string o =
        "Listen overflows (accept queue full): " + Num(*r.listen_overflows_total) + " in total";
    if (r.listen_overflows_rate) {
      o += ", " + RateText(*r.listen_overflows_rate) + "/s during the sample";
    }
    line("  " + Wrap(o, 2, 4));
  }

  heading("SYSCTLS");
  if (r.sysctls.empty()) line("  not available (the sysctl collector is off or failed)");
  const Table sysctls({{19}, {13, Table::Align::kLeft, 1}});
  const size_t verdict_column = sysctls.width();
  for (const auto& sc : r.sysctls) {
    // The short names are unambiguous (tcp_tw_reuse, somaxconn, ...).
    std::string name = sc.name;
    for (const std::string prefix : {"net.ipv4.", "net.core.", "net.netfilter."}) {
      if (name.starts_with(prefix)) name = name.substr(prefix.size());
    }
    std::string left = sysctls.Row({name, sc.value.value_or("-")});
    if (left.size() > verdict_column) {
      line(left);
      left = std::string(verdict_column, ' ');
    }
    line(left + Wrap(sc.verdict, left.size(), verdict_column));
  }

  heading("CONNTRACK");
  const auto& c = r.conntrack;
  if (!c.available) {
    line("  " + Wrap(c.reason, 2, 2));
  } else {
    std::string fill = "Entries " + Num(c.entries.value_or(0));
    if (c.limit) fill += " of " + Num(*c.limit);
    if (c.fill) fill += " (" + Percent(*c.fill) + " full)";
    if (c.tcp_time_wait_entries) fill += "; TCP TIME_WAIT entries " + Num(*c.tcp_time_wait_entries);
    line("  " + Wrap(fill, 2, 4));
    std::string errors;
    for (const auto& [name, k] :
         {std::pair<const char*, const DiagnoseReport::Counter&>{"insert_failed", c.insert_failed},
          {"drop", c.drop},
          {"early_drop", c.early_drop}}) {
      if (!k.total) continue;
      errors += std::string(errors.empty() ? "" : ", ") + name + " " + Num(*k.total);
      if (k.rate) errors += " (" + RateText(*k.rate) + "/s)";
    }
    if (!errors.empty()) line("  " + Wrap(errors, 2, 4));
    if (c.snat_utilization_max) {
      std::string snat =
          "SNAT: worst tuple uses " + Percent(*c.snat_utilization_max) + " of the NAT port range";
      if (!c.snat_worst.empty()) {
        snat += ", " + c.snat_worst + " (" + Num(c.snat_worst_ports.value_or(0)) + " ports)";
      }
      line("  " + Wrap(snat, 2, 4));
    }
  }

  heading("FINDINGS");
  const Table findings({{9}});
  size_t warnings = 0, criticals = 0;
  if (r.findings.empty()) line("  none");
  for (const auto& f : r.findings) {
    if (f.severity == Severity::kCritical) ++criticals;
    if (f.severity == Severity::kWarning) ++warnings;
    const std::string tag = f.severity == Severity::kCritical  ? "CRITICAL"
                            : f.severity == Severity::kWarning ? "WARNING"
                                                               : "info";
    line(findings.Row({tag}) + Wrap(f.message, findings.width(), findings.width()));
  }
  out += "\n";
  if (criticals + warnings == 0) {
    line("Healthy: no finding crosses a threshold (exit status 0).");
  } else {
    line("Not healthy: " + Num(criticals) + " critical, " + Num(warnings) +
         " warning finding(s) (exit status 1).");
  }
  return out;
}

}  // namespace sockdiag
