// `weft status` against a scripted server playing a member through a join.

#include "tools/weft/status_command.h"

#include <stdio.h>

#include <cstdlib>

#include <gtest/gtest.h>

#include "tools/weft/subcommand.h"
#include "tools/weft/test_server.h"

namespace weft::tools {
namespace {

std::string Info(std::string_view phase, std::string_view state, int64_t bytes) {
  return BulkReply(
      "# Replication\r\nrole:member\r\nmember_id:0a1b\r\nmember_name:m4\r\nregions:1\r\n"
      "region0:name=default,state=" +
      std::string(state) + ",mode=sync,phase=" + std::string(phase) +
      ",provider=m1,entries=" + std::to_string(bytes / 100) + ",bytes=" + std::to_string(bytes) +
      ",rate_bps=1048576,eta_ms=1000,postimage_keys=0,members=4,join_ms=10\r\n"
      "region0_member0:id=0a1b,name=m4,state=" +
      std::string(state) + ",peer=127.0.0.1:7004\r\n");
}

// Runs `weft status` with output captured.
struct CapturedRun {
  int code = -1;
  std::string out;
  std::string err;
};

CapturedRun RunCaptured(const StatusOptions& options) {
  char* out_buffer = nullptr;
  size_t out_size = 0;
  char* err_buffer = nullptr;
  size_t err_size = 0;
  std::FILE* out = open_memstream(&out_buffer, &out_size);
  std::FILE* err = open_memstream(&err_buffer, &err_size);
  SystemClock clock;
  CapturedRun run;
  run.code = RunStatus(options, out, err, clock);
  std::fclose(out);
  std::fclose(err);
  run.out.assign(out_buffer, out_size);
  run.err.assign(err_buffer, err_size);
  std::free(out_buffer);
  std::free(err_buffer);
  return run;
}

StatusOptions Options(const HostPort& member) {
  StatusOptions options;
  options.member = member.ToString();
  options.interval_ms = 10;
  options.timeout_s = 10;
  return options;
}

TEST(StatusCommandTest, PrintsOnceWhenNoJoinRuns) {
  StatusOr<std::unique_ptr<ScriptedServer>> server =
      ScriptedServer::Start({Info("none", "ACTIVE", 0)});
  ASSERT_TRUE(server.ok());
  const CapturedRun run = RunCaptured(Options((*server)->address()));
  EXPECT_EQ(run.code, kExitOk) << run.err;
  EXPECT_EQ((*server)->requests(), 1);
  EXPECT_NE(run.out.find("member m4 (id 0a1b)"), std::string::npos) << run.out;
  EXPECT_NE(run.out.find("region default: ACTIVE, mode sync, phase none"), std::string::npos);
  EXPECT_EQ(run.out.find("join default"), std::string::npos);
}

TEST(StatusCommandTest, FollowsAJoinUntilThePhaseIsNone) {
  StatusOr<std::unique_ptr<ScriptedServer>> server = ScriptedServer::Start({
      Info("image", "INITIALIZING", 1'000'000),
      Info("image", "INITIALIZING", 2'000'000),
      Info("incorporate", "INITIALIZING", 3'000'000),
      Info("none", "ACTIVE", 3'000'000),
  });
  ASSERT_TRUE(server.ok());
  const CapturedRun run = RunCaptured(Options((*server)->address()));
  EXPECT_EQ(run.code, kExitOk) << run.err;
  EXPECT_EQ((*server)->requests(), 4);  // the first print, then polls until phase none
  // Not a terminal: plain progress lines, the last one at 100 % (the image is complete).
  EXPECT_EQ(run.out.find('\r'), std::string::npos);
  EXPECT_NE(run.out.find("join default ["), std::string::npos) << run.out;
  EXPECT_NE(run.out.find("100% 2.86 MiB/2.86 MiB"), std::string::npos) << run.out;
  EXPECT_TRUE(run.out.ends_with("  m4    0a1b  ACTIVE  127.0.0.1:7004\nchannels: none\n"))
      << run.out;
}

TEST(StatusCommandTest, AFailedJoinFails) {
  StatusOr<std::unique_ptr<ScriptedServer>> server = ScriptedServer::Start({
      Info("image", "INITIALIZING", 1000),
      Info("failed", "FAILED", 1000),
  });
  ASSERT_TRUE(server.ok());
  const CapturedRun run = RunCaptured(Options((*server)->address()));
  EXPECT_EQ(run.code, kExitFailure);
  EXPECT_NE(run.err.find("the join of region default failed"), std::string::npos) << run.err;
}

TEST(StatusCommandTest, FollowingIsBoundedByTheTimeout) {
  StatusOr<std::unique_ptr<ScriptedServer>> server =
      ScriptedServer::Start({Info("stabilize", "INITIALIZING", 0)});
  ASSERT_TRUE(server.ok());
  StatusOptions options = Options((*server)->address());
  options.timeout_s = 0.1;
  const CapturedRun run = RunCaptured(options);
  EXPECT_EQ(run.code, kExitFailure);
  EXPECT_NE(run.err.find("join of region default still running"), std::string::npos) << run.err;
}

TEST(StatusCommandTest, UnreachableOrWrongMembersFail) {
  HostPort nowhere;
  {
    StatusOr<std::unique_ptr<ScriptedServer>> server = ScriptedServer::Start({"+OK\r\n"});
    ASSERT_TRUE(server.ok());
    nowhere = (*server)->address();
    const CapturedRun run = RunCaptured(Options(nowhere));
    EXPECT_EQ(run.code, kExitFailure);
    EXPECT_NE(run.err.find("INFO replication answered +OK"), std::string::npos) << run.err;
  }
  const CapturedRun refused = RunCaptured(Options(nowhere));
  EXPECT_EQ(refused.code, kExitFailure);
  EXPECT_NE(refused.err.find("Connection refused"), std::string::npos) << refused.err;
  StatusOptions bad;
  bad.member = "no-port";
  EXPECT_EQ(RunCaptured(bad).code, kExitUsage);
}

}  // namespace
}  // namespace weft::tools
