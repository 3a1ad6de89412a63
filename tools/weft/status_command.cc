// `weft status`: see status_command.h.

#include "tools/weft/status_command.h"

#include <chrono>
#include <cstdio>
#include <memory>
#include <thread>

#include "weft/base/strings.h"

#include "tools/weft/info_parser.h"
#include "tools/weft/progress_bar.h"
#include "tools/weft/resp_client.h"
#include "tools/weft/status_format.h"
#include "tools/weft/subcommand.h"
#include <CLI/CLI.hpp>

namespace weft::tools {
namespace {

// One connection to the member, reopened after a failure so that one lost connection does not
// end a long watch; each fetch is bounded by the client's timeouts.
class InfoSource {
 public:
  explicit InfoSource(HostPort member) : member_(std::move(member)) {}

  StatusOr<ReplicationInfo> Fetch() {
    if (client_ == nullptr || client_->broken()) {
      WEFT_ASSIGN_OR_RETURN(client_, RespClient::Connect(member_));
    }
    WEFT_ASSIGN_OR_RETURN(RespReply reply, client_->Call({"INFO", "replication"}));
    if (reply.type != RespReply::Type::kBulkString) {
      return absl::FailedPreconditionError(
          StrCat(member_.ToString(), ": INFO replication answered ", reply.DebugString()));
    }
    StatusOr<ReplicationInfo> info = ParseReplicationInfo(reply.text);
    if (!info.ok())
      return Status(info.status().code(),
                    StrCat(member_.ToString(), ": ", info.status().message()));
    return info;
  }

  const HostPort& member() const { return member_; }

 private:
  HostPort member_;
  std::unique_ptr<RespClient> client_;
};

// Once following or watching, a member that stops answering is retried on later polls for this
// long (a restarted connection, a busy member) before the command gives up.
constexpr int64_t kUnreachableGraceUs = 5'000'000;

// Tracks how long polls have been failing.
class FailureGrace {
 public:
  // True if the command should give up after a failed poll at `now_us`.
  bool GiveUp(int64_t now_us) {
    if (failing_since_us_ < 0)
      failing_since_us_ = now_us;
    return now_us - failing_since_us_ >= kUnreachableGraceUs;
  }
  void Succeeded() { failing_since_us_ = -1; }

 private:
  int64_t failing_since_us_ = -1;
};

// Errors from InfoSource name the member already.
int Fail(std::FILE* err, const Status& status) {
  std::fprintf(err, "weft status: %s\n", std::string(StatusMessage(status)).c_str());
  return kExitFailure;
}

// The region whose join the progress bar shows: the first one running.
const RegionInfo* RunningJoin(const ReplicationInfo& info) {
  for (const RegionInfo& region : info.regions) {
    if (region.join_running())
      return &region;
  }
  return nullptr;
}

int ReportFailedJoins(const ReplicationInfo& info, std::FILE* err) {
  int code = kExitOk;
  for (const RegionInfo& region : info.regions) {
    if (region.phase == JoinPhase::kFailed) {
      std::fprintf(err, "weft status: the join of region %s failed\n", region.name.c_str());
      code = kExitFailure;
    }
  }
  return code;
}

// Follows running joins with a progress bar until none is left, then prints the final state.
int FollowJoins(InfoSource& source, const StatusOptions& options, std::FILE* out, std::FILE* err,
                const Clock& clock) {
  ProgressBar::Options bar_options;
  bar_options.in_place = ProgressBar::IsTerminal(out);
  ProgressBar bar(out, clock, bar_options);
  const int64_t deadline_us =
      clock.NowMonotonicUs() + static_cast<int64_t>(options.timeout_s * 1e6);
  ProgressState last;
  FailureGrace grace;
  while (true) {
    StatusOr<ReplicationInfo> info = source.Fetch();
    if (!info.ok()) {
      if (grace.GiveUp(clock.NowMonotonicUs()))
        return Fail(err, info.status());
      std::this_thread::sleep_for(std::chrono::milliseconds(options.interval_ms));
      continue;
    }
    grace.Succeeded();
    const RegionInfo* joining = RunningJoin(*info);
    if (joining == nullptr) {
      if (!last.label.empty())
        bar.Finish(last);
      std::fputs(FormatStatus(*info, source.member()).c_str(), out);
      return ReportFailedJoins(*info, err);
    }
    last = JoinProgress(*joining);
    bar.Update(last);
    if (Interrupted()) {
      bar.Finish(last);
      return kExitFailure;
    }
    if (clock.NowMonotonicUs() >= deadline_us) {
      bar.Finish(last);
      std::fprintf(err, "weft status: %s: join of region %s still running after %.0f s\n",
                   source.member().ToString().c_str(), joining->name.c_str(), options.timeout_s);
      return kExitFailure;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(options.interval_ms));
  }
}

// Refreshes the whole display until Ctrl-C: redrawn in place on a terminal, printed every 2 s
// otherwise (so a log does not fill up).
int Watch(InfoSource& source, const StatusOptions& options, std::FILE* out, std::FILE* err,
          const Clock& clock) {
  const bool terminal = ProgressBar::IsTerminal(out);
  const int64_t plain_interval_us = 2'000'000;
  int64_t last_print_us = -plain_interval_us;
  FailureGrace grace;
  while (!Interrupted()) {
    StatusOr<ReplicationInfo> info = source.Fetch();
    const int64_t now_us = clock.NowMonotonicUs();
    if (!info.ok()) {
      if (grace.GiveUp(now_us))
        return Fail(err, info.status());
      std::this_thread::sleep_for(std::chrono::milliseconds(options.interval_ms));
      continue;
    }
    grace.Succeeded();
    if (terminal || now_us - last_print_us >= plain_interval_us) {
      last_print_us = now_us;
      std::string screen = FormatStatus(*info, source.member());
      for (const RegionInfo& region : info->regions) {
        if (region.join_running())
          screen += FormatProgressLine(JoinProgress(region), 24) + "\n";
      }
      // Home the cursor and clear the screen, then draw: a steady, flicker-light refresh.
      std::fprintf(out, "%s%s%s", terminal ? "\x1b[H\x1b[2J" : "", screen.c_str(),
                   terminal ? "" : "\n");
      std::fflush(out);
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(options.interval_ms));
  }
  return kExitOk;
}

}  // namespace

int RunStatus(const StatusOptions& options, std::FILE* out, std::FILE* err, const Clock& clock) {
  StatusOr<HostPort> member = ParseHostPort(options.member);
  if (!member.ok()) {
    std::fprintf(err, "weft status: %s\n", std::string(StatusMessage(member.status())).c_str());
    return kExitUsage;
  }
  InfoSource source(*member);
  if (options.watch)
    return Watch(source, options, out, err, clock);
  StatusOr<ReplicationInfo> info = source.Fetch();
  if (!info.ok())
    return Fail(err, info.status());
  std::fputs(FormatStatus(*info, *member).c_str(), out);
  if (!info->any_join_running())
    return ReportFailedJoins(*info, err);
  std::fflush(out);
  return FollowJoins(source, options, out, err, clock);
}

Subcommand AddStatusCommand(CLI::App& parent) {
  auto options = std::make_shared<StatusOptions>();
  CLI::App* app = parent.add_subcommand(
      "status", "Show a member's regions, group members and peer channels; follow a running join");
  app->add_option("--member,-m", options->member, "Member to ask, host:port (its client port)")
      ->required();
  app->add_flag("--watch,-w", options->watch, "Keep refreshing until Ctrl-C");
  app->add_option("--timeout", options->timeout_s,
                  "Longest time to follow a running join, in seconds")
      ->default_val(600)
      ->check(CLI::PositiveNumber);
  app->add_option("--interval-ms", options->interval_ms, "Polling interval")
      ->default_val(200)
      ->check(CLI::Range(int64_t{10}, int64_t{60'000}));
  return Subcommand{app, [options] {
                      InstallInterruptHandler();
                      SystemClock clock;
                      return RunStatus(*options, stdout, stderr, clock);
                    }};
}

}  // namespace weft::tools
