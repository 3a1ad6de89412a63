#include "tools/weft/load_report.h"

#include "tools/weft/text_table.h"
#include <fmt/format.h>

namespace weft::tools {

LatencySummary LatencySummary::Of(const LatencyHistogram& histogram) {
  LatencySummary summary;
  summary.count = histogram.Count();
  summary.p50_us = histogram.Percentile(50);
  summary.p99_us = histogram.Percentile(99);
  summary.p999_us = histogram.Percentile(99.9);
  summary.max_us = histogram.Max();
  summary.mean_us = histogram.Mean();
  return summary;
}

namespace {

std::vector<std::string> PhaseRow(const PhaseReport& phase) {
  // Latencies belong to the phase a request was due in; a phase whose replies all answered
  // requests due earlier (a backlog) has none, which "-" says and "0" would hide.
  const bool timed = phase.latency.count > 0;
  auto latency = [timed](int64_t us) {
    return timed ? std::to_string(us) : std::string("-");
  };
  return {
      phase.name,
      fmt::format("{:.2f}", static_cast<double>(phase.start_us) / 1e6),
      fmt::format("{:.2f}", static_cast<double>(phase.end_us - phase.start_us) / 1e6),
      std::to_string(phase.ops_completed),
      fmt::format("{:.0f}", phase.ops_per_s),
      std::to_string(phase.errors),
      latency(phase.latency.p50_us),
      latency(phase.latency.p99_us),
      latency(phase.latency.p999_us),
      latency(phase.latency.max_us),
      std::to_string(phase.stall_us_max),
  };
}

}  // namespace

std::string FormatLoadReport(const LoadReport& report) {
  using Align = TextTable::Align;
  TextTable table({{"phase", Align::kLeft},
                   {"start_s", Align::kRight},
                   {"seconds", Align::kRight},
                   {"ops", Align::kRight},
                   {"ops/s", Align::kRight},
                   {"errors", Align::kRight},
                   {"p50_us", Align::kRight},
                   {"p99_us", Align::kRight},
                   {"p99.9_us", Align::kRight},
                   {"max_us", Align::kRight},
                   {"stall_us", Align::kRight}});
  for (const PhaseReport& phase : report.phases)
    table.AddRow(PhaseRow(phase));
  table.AddRow(PhaseRow(report.total));
  std::string out = table.Render();
  out += fmt::format(
      "requests: {} sent, {} ok, {} error replies, {} lost (outcome unknown); ended by {}\n",
      report.requests_sent, report.replies_ok, report.replies_error, report.requests_lost,
      report.end_reason);
  if (report.backlog_at_end > 0) {
    out += fmt::format(
        "target rate not reached: {} requests were due but not sent when the load ended\n",
        report.backlog_at_end);
  }
  if (report.connect_failures > 0 || report.connections_broken > 0) {
    out += fmt::format("connections: {} failed connects, {} broken\n", report.connect_failures,
                       report.connections_broken);
  }
  for (const auto& [kind, count] : report.error_kinds)
    out += fmt::format("error {}: {}\n", kind, count);
  return out;
}

std::string FormatWindowsCsv(const LoadReport& report) {
  std::string out = "start_ms,ops,errors,p50_us,p99_us,max_us\n";
  for (const WindowReport& window : report.windows) {
    out += fmt::format("{:.1f},{},{},{},{},{}\n", static_cast<double>(window.start_us) / 1000.0,
                       window.ops_completed, window.errors, window.latency_us_p50,
                       window.latency_us_p99, window.latency_us_max);
  }
  return out;
}

}  // namespace weft::tools
