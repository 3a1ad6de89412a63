#include "tools/weft/load_recorder.h"

#include <gtest/gtest.h>

namespace weft::tools {
namespace {

constexpr int64_t kStart = 1'000'000'000;  // an arbitrary clock origin

LoadRecorder::Options Options() {
  LoadRecorder::Options options;
  options.window_us = 100'000;
  options.first_phase = "before";
  return options;
}

TEST(StallTrackerTest, OneRequestAtATimeStallsForItsLatency) {
  StallTracker tracker;
  tracker.OnSend(100);
  StallTracker::Stall stall = tracker.OnReply(350, /*still_outstanding=*/false);
  EXPECT_EQ(stall.begin_us, 100);
  EXPECT_EQ(stall.end_us, 350);
  // Idle time between requests is not a stall.
  tracker.OnSend(1000);
  stall = tracker.OnReply(1010, false);
  EXPECT_EQ(stall.end_us - stall.begin_us, 10);
  EXPECT_FALSE(tracker.Open(2000).has_value());
}

TEST(StallTrackerTest, PipelinedRepliesMeasureGapsBetweenReplies) {
  StallTracker tracker;
  tracker.OnSend(0);
  tracker.OnSend(5);  // a second request does not restart the spell
  StallTracker::Stall first = tracker.OnReply(40, /*still_outstanding=*/true);
  EXPECT_EQ(first.begin_us, 0);
  StallTracker::Stall second = tracker.OnReply(900, false);
  EXPECT_EQ(second.begin_us, 40);
  EXPECT_EQ(second.end_us, 900);
}

TEST(StallTrackerTest, ABrokenConnectionKeepsTheSpellOpenUntilTheNextReply) {
  StallTracker tracker;
  tracker.OnSend(0);
  // The connection breaks at 100 (no call); the reconnect sends again at 5000.
  tracker.OnSend(5000);
  StallTracker::Stall stall = tracker.OnReply(5100, false);
  EXPECT_EQ(stall.begin_us, 0);
  EXPECT_EQ(stall.end_us, 5100);
  tracker.OnSend(6000);
  ASSERT_TRUE(tracker.Open(9000).has_value());
  EXPECT_EQ(tracker.Open(9000)->begin_us, 6000);
}

TEST(LoadRecorderTest, LatencyGoesByScheduledTimeThroughputByReplyTime) {
  LoadRecorder recorder(Options(), kStart);
  // Scheduled in "before", answered in "during" (a stall across the boundary).
  ASSERT_TRUE(recorder.MarkPhase("during", kStart + 1'000'000).ok());
  recorder.RecordReply(kStart + 900'000, kStart + 1'400'000, true, "");
  recorder.RecordReply(kStart + 1'500'000, kStart + 1'500'100, true, "");
  const LoadReport report = recorder.Report(kStart + 2'000'000);
  ASSERT_EQ(report.phases.size(), 2u);
  const PhaseReport& before = report.phases[0];
  const PhaseReport& during = report.phases[1];
  EXPECT_EQ(before.name, "before");
  EXPECT_EQ(before.end_us, 1'000'000);
  EXPECT_EQ(before.latency.count, 1);
  EXPECT_NEAR(before.latency.max_us, 500'000, 5000);
  EXPECT_EQ(before.ops_completed, 0);
  EXPECT_EQ(during.latency.count, 1);
  EXPECT_EQ(during.latency.max_us, 100);
  EXPECT_EQ(during.ops_completed, 2);
  EXPECT_DOUBLE_EQ(during.ops_per_s, 2.0);
  EXPECT_EQ(report.total.ops_completed, 2);
  EXPECT_EQ(report.total.latency.count, 2);
  EXPECT_DOUBLE_EQ(report.total.ops_per_s, 1.0);
  EXPECT_EQ(report.replies_ok, 2);
}

TEST(LoadRecorderTest, ErrorsAreCountedByKindAndNotAsLatency) {
  LoadRecorder recorder(Options(), kStart);
  recorder.RecordReply(kStart, kStart + 10, false, "LOADING");
  recorder.RecordReply(kStart, kStart + 20, false, "LOADING");
  recorder.RecordReply(kStart, kStart + 30, false, "ERR");
  recorder.RecordLost(kStart + 40, 3, "connection: reset", /*connection_broke=*/true);
  recorder.RecordLost(kStart + 50, 0, "connection: closed", /*connection_broke=*/true);
  recorder.RecordConnectFailure("connect: refused");
  recorder.RecordLost(kStart + 60, 2, "no reply before the load ended", false);
  const LoadReport report = recorder.Report(kStart + 100'000);
  EXPECT_EQ(report.replies_error, 3);
  EXPECT_EQ(report.requests_lost, 5);
  EXPECT_EQ(report.connections_broken, 2);
  EXPECT_EQ(report.connect_failures, 1);
  EXPECT_EQ(report.total.latency.count, 0);
  EXPECT_EQ(report.phases[0].errors, 8);
  ASSERT_FALSE(report.error_kinds.empty());
  EXPECT_EQ(report.error_kinds[0].first, "connection: reset");
  EXPECT_EQ(report.error_kinds[0].second, 3);
  int64_t loading = 0;
  for (const auto& [kind, count] : report.error_kinds) {
    if (kind == "LOADING")
      loading = count;
  }
  EXPECT_EQ(loading, 2);
}

TEST(LoadRecorderTest, ErrorKindsAreBounded) {
  LoadRecorder recorder(Options(), kStart);
  for (int i = 0; i < 100; ++i)
    recorder.RecordConnectFailure("kind " + std::to_string(i));
  const LoadReport report = recorder.Report(kStart + 1);
  EXPECT_EQ(report.error_kinds.size(), LoadRecorder::kErrorKindsMax);
  int64_t total = 0;
  for (const auto& [kind, count] : report.error_kinds)
    total += count;
  EXPECT_EQ(total, 100);
}

TEST(LoadRecorderTest, WindowsCountRepliesWhereTheyArrived) {
  LoadRecorder recorder(Options(), kStart);
  recorder.RecordReply(kStart, kStart + 50'000, true, "");
  recorder.RecordReply(kStart + 50'000, kStart + 60'000, true, "");
  recorder.RecordReply(kStart + 250'000, kStart + 260'000, true, "");
  // Recorded late by a slow thread: counted in its own window, which was already closed.
  recorder.RecordReply(kStart + 90'000, kStart + 99'000, true, "");
  recorder.RecordReply(kStart + 260'000, kStart + 270'000, false, "ERR");
  const LoadReport report = recorder.Report(kStart + 450'000);
  ASSERT_EQ(report.windows.size(), 5u);  // up to the end, empty ones included
  EXPECT_EQ(report.windows[0].ops_completed, 3);
  EXPECT_EQ(report.windows[0].latency_us_max, 50'000);
  EXPECT_EQ(report.windows[0].latency_us_p99, 50'000);
  EXPECT_EQ(report.windows[1].ops_completed, 0);
  EXPECT_EQ(report.windows[2].start_us, 200'000);
  EXPECT_EQ(report.windows[2].ops_completed, 1);
  EXPECT_EQ(report.windows[2].errors, 1);
  EXPECT_EQ(report.windows[2].latency_us_p50, 10'000);
  EXPECT_EQ(report.windows[4].ops_completed, 0);
}

TEST(LoadRecorderTest, WindowsAreBounded) {
  LoadRecorder::Options options = Options();
  options.windows_max = 3;
  LoadRecorder recorder(options, kStart);
  recorder.RecordReply(kStart, kStart + 10'000'000, true, "");
  const LoadReport report = recorder.Report(kStart + 20'000'000);
  ASSERT_EQ(report.windows.size(), 3u);
  EXPECT_EQ(report.windows[2].ops_completed, 1);
}

TEST(LoadRecorderTest, StallsBelongToThePhaseTheyBeganIn) {
  LoadRecorder recorder(Options(), kStart);
  ASSERT_TRUE(recorder.MarkPhase("during", kStart + 1'000'000).ok());
  ASSERT_TRUE(recorder.MarkPhase("after", kStart + 2'000'000).ok());
  recorder.RecordStall({kStart + 100, kStart + 400});
  recorder.RecordStall({kStart + 1'500'000, kStart + 2'700'000});
  recorder.RecordStall({kStart + 1'600'000, kStart + 1'600'010});
  const LoadReport report = recorder.Report(kStart + 3'000'000);
  EXPECT_EQ(report.phases[0].stall_us_max, 300);
  EXPECT_EQ(report.phases[1].stall_us_max, 1'200'000);
  EXPECT_EQ(report.phases[1].stall_start_us, 1'500'000);
  EXPECT_EQ(report.phases[2].stall_us_max, 0);
  EXPECT_EQ(report.phases[2].stall_start_us, -1);
  EXPECT_EQ(report.total.stall_us_max, 1'200'000);
}

TEST(LoadRecorderTest, PhasesAreOrderedAndBounded) {
  LoadRecorder::Options options = Options();
  options.phases_max = 2;
  LoadRecorder recorder(options, kStart);
  EXPECT_TRUE(recorder.MarkPhase("during", kStart + 10).ok());
  EXPECT_TRUE(absl::IsInvalidArgument(recorder.MarkPhase("early", kStart + 5)));
  EXPECT_TRUE(absl::IsResourceExhausted(recorder.MarkPhase("after", kStart + 20)));
}

TEST(LoadReportTest, FormatsATableAndCsv) {
  LoadRecorder recorder(Options(), kStart);
  recorder.RecordReply(kStart, kStart + 250, true, "");
  LoadReport report = recorder.Report(kStart + 1'000'000);
  report.requests_sent = 1;
  report.end_reason = "duration";
  const std::string table = FormatLoadReport(report);
  EXPECT_NE(table.find("phase"), std::string::npos);
  EXPECT_NE(table.find("before"), std::string::npos);
  EXPECT_NE(table.find("total"), std::string::npos);
  EXPECT_NE(table.find("1 sent, 1 ok"), std::string::npos) << table;
  // A phase with no request due in it shows "-" for its latencies, not a flattering 0.
  LoadRecorder backlog(Options(), kStart);
  ASSERT_TRUE(backlog.MarkPhase("after", kStart + 100).ok());
  backlog.RecordReply(kStart, kStart + 200, true, "");
  const std::string late = FormatLoadReport(backlog.Report(kStart + 300));
  const size_t after_row = late.find("after");
  ASSERT_NE(after_row, std::string::npos) << late;
  EXPECT_NE(late.find(" -", after_row), std::string::npos) << late;
  EXPECT_EQ(late.find(" -"), late.find(" -", after_row)) << late;
  const std::string csv = FormatWindowsCsv(report);
  EXPECT_TRUE(csv.starts_with("start_ms,ops,errors,p50_us,p99_us,max_us\n0.0,1,0,250,250,250\n"))
      << csv;
}

}  // namespace
}  // namespace weft::tools
