// WriteLoad and VerifyMember against real servers (weftd from this build; redis-server when
// installed). Each test is bounded by the load's own duration and op bounds (a few seconds).

#include "tools/weft/write_load.h"

#include <signal.h>

#include <chrono>
#include <thread>

#include <gtest/gtest.h>

#include "tools/weft/load_verifier.h"
#include "tools/weft/test_server.h"

namespace weft::tools {
namespace {

constexpr int64_t kFinishTimeoutMs = 30'000;

class WriteLoadTest : public ::testing::TestWithParam<TestServer::Kind> {
 protected:
  void SetUp() override {
    const std::string binary =
        GetParam() == TestServer::Kind::kWeft ? TestWeftdPath() : TestRedisServerPath();
    if (binary.empty())
      GTEST_SKIP() << "server binary not available";
    StatusOr<std::unique_ptr<TestServer>> server = TestServer::Start(GetParam(), binary);
    ASSERT_TRUE(server.ok()) << server.status();
    server_ = std::move(*server);
  }

  WriteLoadConfig BaseConfig() const {
    WriteLoadConfig config;
    config.members = {server_->address()};
    config.connections_per_member = 2;
    config.keys = 2000;
    config.value_bytes = 64;
    config.duration_ms = 2000;
    config.ops_max = 20'000;
    config.reply_timeout_ms = 5000;
    return config;
  }

  // Polls the load's progress until `elapsed_us` has passed (bounded by the load's duration).
  static void WaitElapsed(const WriteLoad& load, int64_t elapsed_us) {
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
    while (load.Progress().elapsed_us < elapsed_us && !load.Progress().finished &&
           std::chrono::steady_clock::now() < deadline) {
      std::this_thread::sleep_for(std::chrono::milliseconds(2));
    }
  }

  // GETs every key of AcknowledgedLastValues and expects exactly those values.
  void ExpectGetReturnsAcknowledgedValues(const WriteLoad& load) {
    StatusOr<std::unique_ptr<RespClient>> client = RespClient::Connect(server_->address());
    ASSERT_TRUE(client.ok()) << client.status();
    const std::vector<std::pair<std::string, std::string>> values = load.AcknowledgedLastValues();
    ASSERT_FALSE(values.empty());
    std::vector<std::vector<std::string>> gets;
    for (const auto& [key, value] : values)
      gets.push_back({"GET", key});
    StatusOr<std::vector<RespReply>> replies = (*client)->Pipeline(gets);
    ASSERT_TRUE(replies.ok()) << replies.status();
    for (size_t i = 0; i < values.size(); ++i)
      ASSERT_EQ((*replies)[i].text, values[i].second) << values[i].first;
  }

  std::unique_ptr<TestServer> server_;
  SystemClock clock_;
};

TEST_P(WriteLoadTest, ClosedLoopStopsAtOpsMaxAndEveryAcknowledgedValueIsStored) {
  WriteLoadConfig config = BaseConfig();
  config.pipeline_depth = 8;
  config.ops_max = 6000;
  config.duration_ms = 20'000;  // the op bound ends this run
  WriteLoad load(config, clock_);
  ASSERT_TRUE(load.Start().ok());
  ASSERT_TRUE(load.WaitFinished(kFinishTimeoutMs));
  const LoadReport report = load.Report();
  EXPECT_EQ(report.end_reason, "ops_max");
  EXPECT_EQ(report.requests_sent, 6000);
  EXPECT_EQ(report.replies_ok, 6000);
  EXPECT_EQ(report.replies_error + report.requests_lost, 0);
  EXPECT_EQ(report.total.ops_completed, 6000);
  EXPECT_EQ(report.total.latency.count, 6000);
  EXPECT_GT(report.total.latency.p50_us, 0);
  EXPECT_LE(report.total.latency.p50_us, report.total.latency.p99_us);
  EXPECT_LE(report.total.latency.p99_us, report.total.latency.max_us);
  EXPECT_EQ(load.KeysInDoubt(), 0);
  ExpectGetReturnsAcknowledgedValues(load);
  StatusOr<VerifyReport> verify = VerifyMember(server_->address(), load);
  ASSERT_TRUE(verify.ok()) << verify.status();
  EXPECT_TRUE(verify->ok()) << (verify->mismatch_examples.empty() ? ""
                                                                  : verify->mismatch_examples[0]);
  EXPECT_GT(verify->keys_checked, 1000);
}

TEST_P(WriteLoadTest, VerifyNoticesALostWrite) {
  WriteLoadConfig config = BaseConfig();
  config.ops_max = 500;
  WriteLoad load(config, clock_);
  ASSERT_TRUE(load.Start().ok());
  ASSERT_TRUE(load.WaitFinished(kFinishTimeoutMs));
  const auto values = load.AcknowledgedLastValues();
  ASSERT_FALSE(values.empty());
  StatusOr<std::unique_ptr<RespClient>> client = RespClient::Connect(server_->address());
  ASSERT_TRUE(client.ok());
  ASSERT_TRUE((*client)->Call({"DEL", values[0].first}).ok());
  ASSERT_TRUE((*client)->Call({"SET", values[1].first, "not what the load wrote"}).ok());
  StatusOr<VerifyReport> verify = VerifyMember(server_->address(), load);
  ASSERT_TRUE(verify.ok()) << verify.status();
  EXPECT_EQ(verify->keys_mismatched, 2);
  ASSERT_EQ(verify->mismatch_examples.size(), 2u);
  EXPECT_NE(verify->mismatch_examples[0].find("(absent)"), std::string::npos);
}

TEST_P(WriteLoadTest, DeletesAreTrackedAndVerified) {
  WriteLoadConfig config = BaseConfig();
  config.keys = 200;  // few keys: each is written and deleted many times
  config.delete_fraction = 0.4;
  config.ops_max = 5000;
  config.pipeline_depth = 4;
  WriteLoad load(config, clock_);
  ASSERT_TRUE(load.Start().ok());
  ASSERT_TRUE(load.WaitFinished(kFinishTimeoutMs));
  const LoadReport report = load.Report();
  ASSERT_EQ(report.replies_ok, 5000) << FormatLoadReport(report);
  int64_t written = 0;
  int64_t deleted = 0;
  load.ForEachExpectation([&](const KeyExpectation& e) {
    ++written;
    deleted += e.value.has_value() ? 0 : 1;
  });
  EXPECT_GT(deleted, 10);
  StatusOr<VerifyReport> verify = VerifyMember(server_->address(), load);
  ASSERT_TRUE(verify.ok()) << verify.status();
  EXPECT_TRUE(verify->ok());
  // ops_max is shared: a connection that started late may have written fewer of its keys.
  EXPECT_EQ(verify->keys_checked, written);
  EXPECT_GT(written, 100);
}

// Timing assertions are loose on purpose: the test must pass on a busy 2-core machine running
// other tests. What must hold exactly is bookkeeping: every request that fell due was either
// sent or counted as backlog, and every reply lands in exactly one phase and one window.
TEST_P(WriteLoadTest, OpenLoopSendsOnScheduleAndReportsPhases) {
  WriteLoadConfig config = BaseConfig();
  config.rate_ops_per_s = 2000;
  config.duration_ms = 1500;
  config.first_phase = "before";
  WriteLoad load(config, clock_);
  ASSERT_TRUE(load.Start().ok());
  WaitElapsed(load, 500'000);
  ASSERT_TRUE(load.MarkPhase("during").ok());
  WaitElapsed(load, 1'000'000);
  ASSERT_TRUE(load.MarkPhase("after").ok());
  ASSERT_TRUE(load.WaitFinished(kFinishTimeoutMs));
  const LoadReport report = load.Report();
  EXPECT_EQ(report.end_reason, "duration");
  ASSERT_EQ(report.phases.size(), 3u);
  EXPECT_EQ(report.phases[0].name, "before");
  EXPECT_EQ(report.phases[1].name, "during");
  EXPECT_EQ(report.phases[2].name, "after");
  EXPECT_GE(report.phases[1].start_us, 500'000);
  EXPECT_GE(report.phases[2].start_us, 1'000'000);
  // 3000 requests fall due in 1.5 s: each was sent or is counted as left behind.
  EXPECT_NEAR(static_cast<double>(report.requests_sent + report.backlog_at_end), 3000, 2);
  EXPECT_LE(report.backlog_at_end, 300);
  EXPECT_EQ(report.replies_ok, report.requests_sent);
  int64_t phase_ops = 0;
  for (const PhaseReport& phase : report.phases) {
    EXPECT_GT(phase.latency.count, 0) << phase.name;
    phase_ops += phase.ops_completed;
  }
  EXPECT_EQ(phase_ops, report.replies_ok);
  EXPECT_NEAR(report.total.ops_per_s, 2000, 600);
  // 100 ms windows over the whole run; together they hold every reply.
  EXPECT_GE(report.windows.size(), 15u);
  int64_t window_ops = 0;
  for (const WindowReport& window : report.windows)
    window_ops += window.ops_completed;
  EXPECT_EQ(window_ops, report.replies_ok);
  ExpectGetReturnsAcknowledgedValues(load);
}

TEST_P(WriteLoadTest, APausedServerShowsAsAStallAndInTheLatencyItCaused) {
  WriteLoadConfig config = BaseConfig();
  config.rate_ops_per_s = 2000;
  config.duration_ms = 1500;
  config.first_phase = "before";
  WriteLoad load(config, clock_);
  ASSERT_TRUE(load.Start().ok());
  WaitElapsed(load, 400'000);
  ASSERT_TRUE(load.MarkPhase("during").ok());
  // Requests in flight at the mark belong to "before"; let them be answered before the fault
  // (write_load.h: start the event a little after marking its phase).
  WaitElapsed(load, 450'000);
  // The pause is the fault being measured, not a synchronisation.
  const auto paused = std::chrono::steady_clock::now();
  server_->Signal(SIGSTOP);
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  server_->Signal(SIGCONT);
  const int64_t pause_us = std::chrono::duration_cast<std::chrono::microseconds>(
                               std::chrono::steady_clock::now() - paused)
                               .count();
  ASSERT_TRUE(load.MarkPhase("after").ok());
  ASSERT_TRUE(load.WaitFinished(kFinishTimeoutMs));
  const LoadReport report = load.Report();
  ASSERT_EQ(report.phases.size(), 3u);
  const PhaseReport& during = report.phases[1];
  // Requests due while the server was stopped waited from when they were due.
  EXPECT_GE(during.latency.max_us, pause_us * 8 / 10);
  EXPECT_GE(during.stall_us_max, pause_us * 8 / 10);
  EXPECT_LT(report.phases[0].stall_us_max, pause_us / 2);
  EXPECT_LT(report.phases[0].latency.p99_us, pause_us / 2);
  EXPECT_EQ(report.replies_error + report.requests_lost, 0);
  // Nothing was lost: the backlog was sent after the pause.
  EXPECT_EQ(report.backlog_at_end, 0);
  ExpectGetReturnsAcknowledgedValues(load);
}

TEST_P(WriteLoadTest, KilledConnectionsReconnectAndVerificationStillHolds) {
  WriteLoadConfig config = BaseConfig();
  config.pipeline_depth = 16;
  config.duration_ms = 1200;
  config.ops_max = 1'000'000;
  WriteLoad load(config, clock_);
  ASSERT_TRUE(load.Start().ok());
  WaitElapsed(load, 400'000);
  StatusOr<std::unique_ptr<RespClient>> admin = RespClient::Connect(server_->address());
  ASSERT_TRUE(admin.ok());
  StatusOr<RespReply> killed = (*admin)->Call({"CLIENT", "KILL", "TYPE", "normal"});
  ASSERT_TRUE(killed.ok()) << killed.status();
  EXPECT_EQ(killed->integer, 2);
  ASSERT_TRUE(load.WaitFinished(kFinishTimeoutMs));
  const LoadReport report = load.Report();
  EXPECT_GE(report.connections_broken, 2);
  EXPECT_GT(report.replies_ok, 0);
  // The connections wrote again after reconnecting.
  int64_t ops_after_kill = 0;
  for (const WindowReport& window : report.windows)
    ops_after_kill += window.start_us >= 700'000 ? window.ops_completed : 0;
  EXPECT_GT(ops_after_kill, 0);
  StatusOr<VerifyReport> verify = VerifyMember(server_->address(), load);
  ASSERT_TRUE(verify.ok()) << verify.status();
  EXPECT_TRUE(verify->ok()) << (verify->mismatch_examples.empty() ? ""
                                                                  : verify->mismatch_examples[0]);
}

TEST_P(WriteLoadTest, StopEndsTheLoadEarly) {
  WriteLoadConfig config = BaseConfig();
  config.duration_ms = 60'000;
  config.ops_max = 100'000'000;
  WriteLoad load(config, clock_);
  ASSERT_TRUE(load.Start().ok());
  WaitElapsed(load, 100'000);
  const auto stopping = std::chrono::steady_clock::now();
  load.Stop();
  EXPECT_LT(std::chrono::steady_clock::now() - stopping, std::chrono::seconds(2));
  const LoadReport report = load.Report();
  EXPECT_EQ(report.end_reason, "stopped");
  EXPECT_GT(report.replies_ok, 0);
  EXPECT_EQ(report.replies_ok, report.requests_sent);
}

std::string KindName(const ::testing::TestParamInfo<TestServer::Kind>& info) {
  return info.param == TestServer::Kind::kWeft ? "Weftd" : "Redis";
}

INSTANTIATE_TEST_SUITE_P(Servers, WriteLoadTest,
                         ::testing::Values(TestServer::Kind::kWeft, TestServer::Kind::kRedis),
                         KindName);

TEST(WriteLoadNoServerTest, UnreachableMemberIsCountedNotFatal) {
  // A port nothing listens on: bind one, learn it, close it.
  HostPort nowhere;
  {
    StatusOr<std::unique_ptr<TestServer>> server =
        TestServer::Start(TestServer::Kind::kWeft, TestWeftdPath());
    ASSERT_TRUE(server.ok()) << server.status();
    nowhere = (*server)->address();
  }
  WriteLoadConfig config;
  config.members = {nowhere};
  config.connections_per_member = 2;
  config.keys = 10;
  config.duration_ms = 300;
  config.rate_ops_per_s = 1000;
  SystemClock clock;
  WriteLoad load(config, clock);
  ASSERT_TRUE(load.Start().ok());
  ASSERT_TRUE(load.WaitFinished(kFinishTimeoutMs));
  const LoadReport report = load.Report();
  EXPECT_EQ(report.replies_ok, 0);
  EXPECT_EQ(report.requests_sent, 0);
  EXPECT_GE(report.connect_failures, 2);
  // Backoff bounds the attempts: 10, 20, 40, 80, 160 ms ... at most ~6 per connection.
  EXPECT_LE(report.connect_failures, 16);
  ASSERT_FALSE(report.error_kinds.empty());
  EXPECT_NE(report.error_kinds[0].first.find("Connection refused"), std::string::npos)
      << report.error_kinds[0].first;
  // Every request that fell due is reported as not sent.
  EXPECT_NEAR(static_cast<double>(report.backlog_at_end), 300, 10);
  EXPECT_TRUE(load.AcknowledgedLastValues().empty());
}

TEST(WriteLoadConfigTest, RejectsUnboundedOrInconsistentConfigs) {
  WriteLoadConfig good;
  good.members = {HostPort{"127.0.0.1", 1}};
  EXPECT_TRUE(ValidateWriteLoadConfig(good).ok());
  auto rejected = [&](auto mutate) {
    WriteLoadConfig config = good;
    mutate(config);
    return absl::IsInvalidArgument(ValidateWriteLoadConfig(config));
  };
  EXPECT_TRUE(rejected([](WriteLoadConfig& c) { c.members.clear(); }));
  EXPECT_TRUE(rejected([](WriteLoadConfig& c) { c.duration_ms = 0; }));
  EXPECT_TRUE(rejected([](WriteLoadConfig& c) { c.ops_max = 0; }));
  EXPECT_TRUE(rejected([](WriteLoadConfig& c) { c.keys = 3; }));  // fewer than 4 connections
  EXPECT_TRUE(rejected([](WriteLoadConfig& c) { c.pipeline_depth = 0; }));
  EXPECT_TRUE(rejected([](WriteLoadConfig& c) { c.rate_ops_per_s = -1; }));
  EXPECT_TRUE(rejected([](WriteLoadConfig& c) { c.delete_fraction = 1.5; }));
  EXPECT_TRUE(rejected([](WriteLoadConfig& c) { c.value_bytes = 0; }));
  EXPECT_TRUE(rejected([](WriteLoadConfig& c) { c.connections_per_member = 1000; }));
  SystemClock clock;
  WriteLoad load(WriteLoadConfig{}, clock);
  EXPECT_FALSE(load.Start().ok());
}

}  // namespace
}  // namespace weft::tools
