// The measuring half of the write-load generator, without I/O: connections report what happened
// and when; LoadRecorder turns it into the per-phase and per-window LoadReport (definitions in
// load_report.h). Times are passed in, in microseconds of one monotonic clock, so the tests
// drive it with made-up timelines.
//
// Memory is bounded: one LatencyHistogram per phase (at most phases_max), one for the window
// being filled, a small fixed record per finished window (at most windows_max; later replies
// count in the last window) and at most kErrorKindsMax error kinds (others count as "other").
//
// Thread safety: LoadRecorder is thread-safe (one lock; connections call it once per reply).
// StallTracker is not: each connection owns one.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/base/thread_annotations.h"

#include "weft/base/mutex.h"
#include "weft/base/status.h"

#include "tools/weft/latency_histogram.h"
#include "tools/weft/load_report.h"

namespace weft::tools {

// Follows one connection's waiting spells and reports each stall when it ends (load_report.h
// defines a stall). Call OnSend for every request sent and OnReply for every reply, in the
// order they happen; a broken connection needs no call (the spell simply goes on).
class StallTracker {
 public:
  struct Stall {
    int64_t begin_us;
    int64_t end_us;
  };

  void OnSend(int64_t now_us) {
    if (!waiting_since_us_.has_value())
      waiting_since_us_ = now_us;
  }

  // Returns the stall this reply ends. `still_outstanding`: requests still unanswered after it.
  Stall OnReply(int64_t now_us, bool still_outstanding) {
    const Stall stall{waiting_since_us_.value_or(now_us), now_us};
    waiting_since_us_ = still_outstanding ? std::optional<int64_t>(now_us) : std::nullopt;
    return stall;
  }

  // The spell still open at `now_us`, if any (for the end of the load).
  std::optional<Stall> Open(int64_t now_us) const {
    if (!waiting_since_us_.has_value())
      return std::nullopt;
    return Stall{*waiting_since_us_, now_us};
  }

 private:
  std::optional<int64_t> waiting_since_us_;
};

class LoadRecorder {
 public:
  static constexpr size_t kErrorKindsMax = 32;

  struct Options {
    int64_t window_us = 100'000;
    size_t windows_max = 100'000;
    size_t phases_max = 32;
    // Name of the phase that starts with the load.
    std::string first_phase = "load";
  };

  // `start_us`: the load's start on the clock that every later time uses.
  LoadRecorder(Options options, int64_t start_us);

  // Starts phase `name` at `now_us` (the previous phase ends there). ResourceExhausted beyond
  // phases_max; InvalidArgument if now_us is before the current phase's start.
  Status MarkPhase(std::string_view name, int64_t now_us);

  // A reply arrived at `reply_us` for a request scheduled at `scheduled_us`. For an error reply
  // pass ok=false and its kind (first word of the error text).
  void RecordReply(int64_t scheduled_us, int64_t reply_us, bool ok, std::string_view error_kind);
  // `requests` sent requests will never be answered: their connection broke at `now_us`
  // (connection_broke), or the load ended first.
  void RecordLost(int64_t now_us, int64_t requests, std::string_view kind, bool connection_broke);
  // A connection attempt failed (counted by kind, not as a request error).
  void RecordConnectFailure(std::string_view kind);
  void RecordStall(const StallTracker::Stall& stall);

  // The report as of `end_us` (normally the end of the load). Counters that only the load
  // generator knows (requests_sent, backlog_at_end, end_reason) are left 0/empty.
  LoadReport Report(int64_t end_us) const;

 private:
  struct Phase {
    Phase(std::string name, int64_t start_us) : name(std::move(name)), start_us(start_us) {}

    std::string name;
    int64_t start_us;
    int64_t ops_completed = 0;
    int64_t errors = 0;
    LatencyHistogram latency;
    int64_t stall_us_max = 0;
    int64_t stall_start_us = -1;
  };

  // Index of the phase containing `at_us` (relative), or the first one.
  size_t PhaseAt(int64_t at_us) const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mutex_);
  // The window record for `at_us`, finishing the open window if `at_us` is past it.
  WindowReport& WindowAt(int64_t at_us) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mutex_);
  void CloseOpenWindow() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mutex_);
  void CountErrorKind(std::string_view kind, int64_t count) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mutex_);
  int64_t Relative(int64_t us) const { return us - start_us_; }

  const Options options_;
  const int64_t start_us_;

  mutable Mutex mutex_;
  std::vector<Phase> phases_ ABSL_GUARDED_BY(mutex_);
  // Finished windows plus, last, the open one (whose percentiles come from open_latency_).
  std::vector<WindowReport> windows_ ABSL_GUARDED_BY(mutex_);
  LatencyHistogram open_latency_ ABSL_GUARDED_BY(mutex_);
  int64_t replies_ok_ ABSL_GUARDED_BY(mutex_) = 0;
  int64_t replies_error_ ABSL_GUARDED_BY(mutex_) = 0;
  int64_t requests_lost_ ABSL_GUARDED_BY(mutex_) = 0;
  int64_t connect_failures_ ABSL_GUARDED_BY(mutex_) = 0;
  int64_t connections_broken_ ABSL_GUARDED_BY(mutex_) = 0;
  std::vector<std::pair<std::string, int64_t>> error_kinds_ ABSL_GUARDED_BY(mutex_);
};

}  // namespace weft::tools
