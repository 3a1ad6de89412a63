// What a write-load run measured (write_load.h), and how the CLI prints it.
//
// Definitions, precisely, because the demo's verdicts (DESIGN.md §11) are computed from them:
//
// latency     For each successful reply, reply time minus the request's *scheduled* time. In
//             open loop (a target rate) requests are due at fixed intervals and the latency
//             clock starts when a request was due, not when it was finally sent, so a stalled
//             server cannot hide the requests it delayed (coordinated omission corrected). In
//             closed loop the scheduled time is the send time. Error replies are not latency
//             samples (a fast "-LOADING" would flatter the percentiles); they are counted.
//             A latency belongs to the phase in which its request was scheduled.
// throughput  Successful replies that arrived within the phase, divided by the phase's length.
// stall       For one connection: the longest interval during which it was waiting — it had a
//             request outstanding, or had lost requests to a broken connection and had no reply
//             since — and received no reply (of any kind) from the server. It starts when the
//             first request of a waiting spell is sent, or at the previous reply if more
//             requests were outstanding then, and ends at the next reply. Reconnecting does not
//             end it. A stall belongs to the phase in which it began; a connection still waiting
//             when the load ends counts its stall up to that moment. Unlike latency, it does
//             not grow with an open-loop backlog: it measures the server not answering.
// window      Fixed intervals (window_us) from the start of the load; each counts the replies
//             that arrived in it.
//
// Thread safety: plain values.
#pragma once

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "tools/weft/latency_histogram.h"

namespace weft::tools {

struct LatencySummary {
  int64_t count = 0;
  int64_t p50_us = 0;
  int64_t p99_us = 0;
  int64_t p999_us = 0;
  int64_t max_us = 0;
  double mean_us = 0;

  static LatencySummary Of(const LatencyHistogram& histogram);
};

struct PhaseReport {
  std::string name;
  // Times are microseconds since the load started; end_us is the next phase's start or the
  // end of the load.
  int64_t start_us = 0;
  int64_t end_us = 0;
  // Successful replies that arrived in the phase, and their rate over the phase's length.
  int64_t ops_completed = 0;
  double ops_per_s = 0;
  // Error replies, plus requests lost to a broken connection, that happened in the phase.
  int64_t errors = 0;
  // Successful requests scheduled in the phase.
  LatencySummary latency;
  // The longest stall that began in the phase, and when it began (-1 if none).
  int64_t stall_us_max = 0;
  int64_t stall_start_us = -1;
};

struct WindowReport {
  int64_t start_us = 0;  // since the load started
  int64_t ops_completed = 0;
  int64_t errors = 0;
  // Of the successful replies that arrived in the window (0 when there were none).
  int64_t latency_us_p50 = 0;
  int64_t latency_us_p99 = 0;
  int64_t latency_us_max = 0;
};

struct LoadReport {
  std::vector<PhaseReport> phases;
  PhaseReport total;  // the whole run as one phase named "total"
  int64_t window_us = 0;
  std::vector<WindowReport> windows;

  int64_t requests_sent = 0;
  int64_t replies_ok = 0;
  int64_t replies_error = 0;
  // Requests that were sent but never answered: lost to a broken connection or still
  // outstanding when the load ended. Their outcome on the server is unknown.
  int64_t requests_lost = 0;
  // Open loop only: requests that fell due but were never sent, because the connection was
  // behind (target rate not reached) when the load ended.
  int64_t backlog_at_end = 0;
  int64_t connect_failures = 0;
  int64_t connections_broken = 0;
  // Error kinds (first word of an error reply, "LOADING"; or "connect: ..." / "connection: ...")
  // with their counts, most frequent first.
  std::vector<std::pair<std::string, int64_t>> error_kinds;
  // Why the load ended: "duration", "ops_max" or "stopped".
  std::string end_reason;
};

// The per-phase table (and the total), then one line per notable count. For the CLI and the
// demo; ends with '\n'.
std::string FormatLoadReport(const LoadReport& report);

// One CSV line per window (header first): start_ms,ops,errors,p50_us,p99_us,max_us.
std::string FormatWindowsCsv(const LoadReport& report);

}  // namespace weft::tools
