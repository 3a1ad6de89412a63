#include "tools/weft/load_recorder.h"

#include <algorithm>

#include "weft/base/check.h"
#include "weft/base/strings.h"

namespace weft::tools {

LoadRecorder::LoadRecorder(Options options, int64_t start_us)
    : options_(std::move(options)), start_us_(start_us) {
  WEFT_CHECK(options_.window_us > 0 && options_.windows_max > 0 && options_.phases_max > 0);
  MutexLock lock(&mutex_);
  phases_.emplace_back(options_.first_phase, 0);
  windows_.push_back(WindowReport{});
}

Status LoadRecorder::MarkPhase(std::string_view name, int64_t now_us) {
  MutexLock lock(&mutex_);
  const int64_t at_us = Relative(now_us);
  if (at_us < phases_.back().start_us) {
    return absl::InvalidArgumentError(
        StrCat("phase '", name, "' would start before phase '", phases_.back().name, "'"));
  }
  if (phases_.size() >= options_.phases_max) {
    return absl::ResourceExhaustedError(
        StrCat("at most ", options_.phases_max, " phases; cannot start '", name, "'"));
  }
  phases_.emplace_back(std::string(name), at_us);
  return absl::OkStatus();
}

size_t LoadRecorder::PhaseAt(int64_t at_us) const {
  // Phases are few and samples almost always fall in the last one or two: search from the end.
  for (size_t i = phases_.size(); i-- > 1;) {
    if (at_us >= phases_[i].start_us)
      return i;
  }
  return 0;
}

void LoadRecorder::CloseOpenWindow() {
  WindowReport& open = windows_.back();
  open.latency_us_p50 = open_latency_.Percentile(50);
  open.latency_us_p99 = open_latency_.Percentile(99);
  open_latency_.Reset();
}

WindowReport& LoadRecorder::WindowAt(int64_t at_us) {
  const size_t index = static_cast<size_t>(std::clamp<int64_t>(
      at_us / options_.window_us, 0, static_cast<int64_t>(options_.windows_max) - 1));
  if (index >= windows_.size()) {
    CloseOpenWindow();
    while (windows_.size() <= index) {
      WindowReport next;
      next.start_us = static_cast<int64_t>(windows_.size()) * options_.window_us;
      windows_.push_back(next);
    }
  }
  return windows_[index];
}

void LoadRecorder::CountErrorKind(std::string_view kind, int64_t count) {
  for (auto& [name, total] : error_kinds_) {
    if (name == kind) {
      total += count;
      return;
    }
  }
  if (error_kinds_.size() + 1 < kErrorKindsMax) {
    error_kinds_.emplace_back(std::string(kind), count);
    return;
  }
  // The last slot collects every kind that did not get its own.
  if (error_kinds_.size() + 1 == kErrorKindsMax)
    error_kinds_.emplace_back("other", 0);
  error_kinds_.back().second += count;
}

void LoadRecorder::RecordReply(int64_t scheduled_us, int64_t reply_us, bool ok,
                               std::string_view error_kind) {
  MutexLock lock(&mutex_);
  const int64_t reply_at_us = Relative(reply_us);
  WindowReport& window = WindowAt(reply_at_us);
  Phase& completed_in = phases_[PhaseAt(reply_at_us)];
  if (!ok) {
    ++replies_error_;
    ++window.errors;
    ++completed_in.errors;
    CountErrorKind(error_kind, 1);
    return;
  }
  ++replies_ok_;
  const int64_t latency_us = std::max<int64_t>(reply_us - scheduled_us, 0);
  ++window.ops_completed;
  window.latency_us_max = std::max(window.latency_us_max, latency_us);
  // A reply recorded late, after a newer window opened, misses only its window's percentiles.
  if (&window == &windows_.back())
    open_latency_.Record(latency_us);
  ++completed_in.ops_completed;
  phases_[PhaseAt(Relative(scheduled_us))].latency.Record(latency_us);
}

void LoadRecorder::RecordLost(int64_t now_us, int64_t requests, std::string_view kind,
                              bool connection_broke) {
  MutexLock lock(&mutex_);
  if (connection_broke)
    ++connections_broken_;
  if (requests <= 0 && !connection_broke)
    return;
  CountErrorKind(kind, std::max<int64_t>(requests, 1));
  if (requests <= 0)
    return;
  const int64_t at_us = Relative(now_us);
  requests_lost_ += requests;
  WindowAt(at_us).errors += requests;
  phases_[PhaseAt(at_us)].errors += requests;
}

void LoadRecorder::RecordConnectFailure(std::string_view kind) {
  MutexLock lock(&mutex_);
  ++connect_failures_;
  CountErrorKind(kind, 1);
}

void LoadRecorder::RecordStall(const StallTracker::Stall& stall) {
  MutexLock lock(&mutex_);
  const int64_t length_us = stall.end_us - stall.begin_us;
  Phase& phase = phases_[PhaseAt(Relative(stall.begin_us))];
  if (length_us > phase.stall_us_max) {
    phase.stall_us_max = length_us;
    phase.stall_start_us = Relative(stall.begin_us);
  }
}

LoadReport LoadRecorder::Report(int64_t end_us) const {
  MutexLock lock(&mutex_);
  const int64_t end_at_us = std::max(Relative(end_us), phases_.back().start_us);
  LoadReport report;
  report.window_us = options_.window_us;
  report.windows = windows_;
  report.windows.back().latency_us_p50 = open_latency_.Percentile(50);
  report.windows.back().latency_us_p99 = open_latency_.Percentile(99);
  // Windows up to the end, so that silence at the end of a run shows as empty windows.
  const size_t last_window = static_cast<size_t>(std::clamp<int64_t>(
      (end_at_us - 1) / options_.window_us, 0, static_cast<int64_t>(options_.windows_max) - 1));
  while (report.windows.size() <= last_window) {
    WindowReport next;
    next.start_us = static_cast<int64_t>(report.windows.size()) * options_.window_us;
    report.windows.push_back(next);
  }

  LatencyHistogram total_latency;
  report.total.name = "total";
  report.total.start_us = 0;
  report.total.end_us = end_at_us;
  for (size_t i = 0; i < phases_.size(); ++i) {
    const Phase& phase = phases_[i];
    PhaseReport row;
    row.name = phase.name;
    row.start_us = phase.start_us;
    row.end_us = i + 1 < phases_.size() ? phases_[i + 1].start_us : end_at_us;
    row.ops_completed = phase.ops_completed;
    const int64_t length_us = row.end_us - row.start_us;
    row.ops_per_s =
        length_us > 0 ? static_cast<double>(phase.ops_completed) * 1e6 / length_us : 0.0;
    row.errors = phase.errors;
    row.latency = LatencySummary::Of(phase.latency);
    row.stall_us_max = phase.stall_us_max;
    row.stall_start_us = phase.stall_start_us;
    total_latency.Merge(phase.latency);
    report.total.ops_completed += row.ops_completed;
    report.total.errors += row.errors;
    if (row.stall_us_max > report.total.stall_us_max) {
      report.total.stall_us_max = row.stall_us_max;
      report.total.stall_start_us = row.stall_start_us;
    }
    report.phases.push_back(std::move(row));
  }
  report.total.latency = LatencySummary::Of(total_latency);
  report.total.ops_per_s =
      end_at_us > 0 ? static_cast<double>(report.total.ops_completed) * 1e6 / end_at_us : 0.0;

  report.replies_ok = replies_ok_;
  report.replies_error = replies_error_;
  report.requests_lost = requests_lost_;
  report.connect_failures = connect_failures_;
  report.connections_broken = connections_broken_;
  report.error_kinds = error_kinds_;
  std::stable_sort(report.error_kinds.begin(), report.error_kinds.end(),
                   [](const auto& a, const auto& b) { return a.second > b.second; });
  return report;
}

}  // namespace weft::tools
