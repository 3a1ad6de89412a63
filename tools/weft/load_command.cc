// `weft load --members h:p,h:p --rate 10000 --seconds 10 --max-ops N --keys 100000
//            --value-size 100 --connections 4 [--pipeline 1] [--phase NAME@SECONDS]... [--verify]`
//
// Runs a WriteLoad (write_load.h) from the command line with a progress bar on stderr, then
// prints the per-phase report on stdout and, with --verify, reads every written key back from
// every member. Ctrl-C stops the load early and still reports. Exit codes: 0 done; 1 no write
// succeeded or verification found a lost write; 2 usage.

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <fstream>
#include <memory>
#include <random>
#include <thread>

#include "weft/base/clock.h"
#include "weft/base/strings.h"

#include "tools/weft/load_report.h"
#include "tools/weft/load_verifier.h"
#include "tools/weft/progress_bar.h"
#include "tools/weft/subcommand.h"
#include "tools/weft/write_load.h"
#include <CLI/CLI.hpp>
#include <fmt/format.h>

namespace weft::tools {
namespace {

struct LoadOptions {
  std::string members;
  double rate = 0;
  double seconds = 10;
  int64_t max_ops = 10'000'000;
  int64_t keys = 100'000;
  int value_size = 100;
  int connections = 4;
  int pipeline = 1;
  double delete_fraction = 0;
  std::string key_prefix;  // default: "weft:load:<seed>:"
  uint64_t seed = 0;       // 0: drawn at random (and printed)
  int64_t window_ms = 100;
  int64_t reply_timeout_ms = 10'000;
  std::string first_phase = "load";
  std::vector<std::string> phases;  // "name@seconds"
  bool verify = false;
  std::string windows_csv;
};

struct PhaseMark {
  std::string name;
  int64_t at_us;
};

StatusOr<std::vector<PhaseMark>> ParsePhaseMarks(const std::vector<std::string>& specs) {
  std::vector<PhaseMark> marks;
  for (const std::string& spec : specs) {
    const size_t at = spec.rfind('@');
    double seconds = -1;
    if (at != std::string::npos && at > 0) {
      try {
        size_t used = 0;
        seconds = std::stod(spec.substr(at + 1), &used);
        if (used != spec.size() - at - 1)
          seconds = -1;
      } catch (const std::exception&) {
        seconds = -1;
      }
    }
    if (!(seconds >= 0))
      return absl::InvalidArgumentError(StrCat("--phase '", spec, "' is not NAME@SECONDS"));
    marks.push_back(PhaseMark{spec.substr(0, at), static_cast<int64_t>(seconds * 1e6)});
  }
  std::stable_sort(marks.begin(), marks.end(),
                   [](const PhaseMark& a, const PhaseMark& b) { return a.at_us < b.at_us; });
  return marks;
}

// The progress line: ops done against the run's expected total, whichever bound ends it first.
ProgressState LoadProgressState(const LoadProgress& progress, const WriteLoadConfig& config) {
  ProgressState state;
  state.label = "load";
  state.count_noun = "ops";
  state.done = progress.replies_ok + progress.replies_error;
  const double time_fraction =
      static_cast<double>(progress.elapsed_us) / (static_cast<double>(config.duration_ms) * 1000.0);
  const double ops_fraction =
      static_cast<double>(progress.requests_sent) / static_cast<double>(config.ops_max);
  if (time_fraction > 0 && time_fraction >= ops_fraction) {
    state.total = std::max<int64_t>(
        state.done,
        static_cast<int64_t>(static_cast<double>(state.done) / std::min(time_fraction, 1.0)));
  } else {
    state.total = config.ops_max;
  }
  if (progress.replies_error > 0)
    state.detail = fmt::format("{} errors", HumanCount(progress.replies_error));
  return state;
}

StatusOr<WriteLoadConfig> MakeConfig(const LoadOptions& options) {
  WriteLoadConfig config;
  WEFT_ASSIGN_OR_RETURN(config.members, ParseHostPortList(options.members));
  config.connections_per_member = options.connections;
  config.rate_ops_per_s = options.rate;
  config.pipeline_depth = options.pipeline;
  config.keys = options.keys;
  config.value_bytes = options.value_size;
  config.delete_fraction = options.delete_fraction;
  config.duration_ms = static_cast<int64_t>(options.seconds * 1000);
  config.ops_max = options.max_ops;
  config.window_ms = options.window_ms;
  config.reply_timeout_ms = options.reply_timeout_ms;
  config.first_phase = options.first_phase;
  config.seed = options.seed;
  if (config.seed == 0) {
    std::random_device device;
    config.seed = (static_cast<uint64_t>(device()) << 32 | device()) | 1;
  }
  config.key_prefix =
      options.key_prefix.empty() ? fmt::format("weft:load:{}:", config.seed) : options.key_prefix;
  WEFT_RETURN_IF_ERROR(ValidateWriteLoadConfig(config));
  return config;
}

// Runs the load to its end (or Ctrl-C), marking phases and drawing progress.
void Drive(WriteLoad& load, const std::vector<PhaseMark>& marks) {
  SystemClock clock;
  ProgressBar::Options bar_options;
  bar_options.in_place = ProgressBar::IsTerminal(stderr);
  ProgressBar bar(stderr, clock, bar_options);
  size_t next_mark = 0;
  bool stopping = false;
  while (!load.WaitFinished(50)) {
    const LoadProgress progress = load.Progress();
    while (next_mark < marks.size() && progress.elapsed_us >= marks[next_mark].at_us) {
      if (Status marked = load.MarkPhase(marks[next_mark].name); !marked.ok()) {
        std::fprintf(stderr, "weft load: %s\n", std::string(StatusMessage(marked)).c_str());
      }
      ++next_mark;
    }
    if (Interrupted() && !stopping) {
      stopping = true;
      load.RequestStop();  // the connections drain; the loop waits for them, then reports
    }
    bar.Update(LoadProgressState(progress, load.config()));
  }
  bar.Finish(LoadProgressState(load.Progress(), load.config()));
}

int VerifyAll(const WriteLoad& load) {
  int code = kExitOk;
  for (const HostPort& member : load.config().members) {
    StatusOr<VerifyReport> report = VerifyMember(member, load);
    if (!report.ok()) {
      std::fprintf(stderr, "weft load: verify %s: %s\n", member.ToString().c_str(),
                   std::string(StatusMessage(report.status())).c_str());
      code = kExitFailure;
      continue;
    }
    std::printf("verify %s: %lld keys, %lld mismatched, %lld matched a write in doubt\n",
                member.ToString().c_str(), static_cast<long long>(report->keys_checked),
                static_cast<long long>(report->keys_mismatched),
                static_cast<long long>(report->keys_matched_in_doubt));
    for (const std::string& example : report->mismatch_examples)
      std::printf("  %s\n", example.c_str());
    if (!report->ok())
      code = kExitFailure;
  }
  return code;
}

int RunLoad(const LoadOptions& options) {
  StatusOr<WriteLoadConfig> config = MakeConfig(options);
  StatusOr<std::vector<PhaseMark>> marks = ParsePhaseMarks(options.phases);
  if (!config.ok() || !marks.ok()) {
    const Status& bad = !config.ok() ? config.status() : marks.status();
    std::fprintf(stderr, "weft load: %s\n", std::string(StatusMessage(bad)).c_str());
    return kExitUsage;
  }
  std::printf(
      "load: %zu members x %d connections, %s, pipeline %d, %lld keys x %d bytes, "
      "at most %.1f s and %lld ops, seed %llu, keys %s*\n",
      config->members.size(), config->connections_per_member,
      config->rate_ops_per_s > 0
          ? fmt::format("{:.0f} ops/s open loop", config->rate_ops_per_s).c_str()
          : "closed loop",
      config->pipeline_depth, static_cast<long long>(config->keys), config->value_bytes,
      static_cast<double>(config->duration_ms) / 1000.0, static_cast<long long>(config->ops_max),
      static_cast<unsigned long long>(config->seed), config->key_prefix.c_str());
  std::fflush(stdout);

  SystemClock clock;
  WriteLoad load(*config, clock);
  if (Status started = load.Start(); !started.ok()) {
    std::fprintf(stderr, "weft load: %s\n", std::string(StatusMessage(started)).c_str());
    return kExitUsage;
  }
  InstallInterruptHandler();
  Drive(load, *marks);
  load.Stop();

  const LoadReport report = load.Report();
  std::fputs(FormatLoadReport(report).c_str(), stdout);
  if (const int64_t in_doubt = load.KeysInDoubt(); in_doubt > 0)
    std::printf("keys with a write in doubt: %lld\n", static_cast<long long>(in_doubt));
  if (!options.windows_csv.empty()) {
    std::ofstream csv(options.windows_csv);
    csv << FormatWindowsCsv(report);
    if (!csv)
      std::fprintf(stderr, "weft load: cannot write %s\n", options.windows_csv.c_str());
  }
  int code = report.replies_ok > 0 ? kExitOk : kExitFailure;
  if (code != kExitOk)
    std::fprintf(stderr, "weft load: no write succeeded\n");
  if (options.verify && VerifyAll(load) != kExitOk)
    code = kExitFailure;
  return code;
}

}  // namespace

Subcommand AddLoadCommand(CLI::App& parent) {
  auto options = std::make_shared<LoadOptions>();
  CLI::App* app = parent.add_subcommand(
      "load", "Write SET/DEL load to members and report throughput, latency and stalls");
  app->add_option("--members,-m", options->members, "Members to write to: host:port,host:port")
      ->required();
  app->add_option("--rate", options->rate,
                  "Target ops/s over all connections (open loop); 0 = closed loop")
      ->default_val(0)
      ->check(CLI::Range(0.0, 1e8));
  app->add_option("--seconds", options->seconds, "Stop sending after this long")
      ->default_val(10)
      ->check(CLI::Range(0.001, 86400.0));
  app->add_option("--max-ops", options->max_ops, "Stop after sending this many requests")
      ->default_val(10'000'000)
      ->check(CLI::PositiveNumber);
  app->add_option("--keys", options->keys, "Size of the key space")->default_val(100'000);
  app->add_option("--value-size", options->value_size, "Value size in bytes")->default_val(100);
  app->add_option("--connections", options->connections, "Connections per member")->default_val(4);
  app->add_option("--pipeline", options->pipeline, "Requests in flight per connection")
      ->default_val(1);
  app->add_option("--del-fraction", options->delete_fraction, "Fraction of requests that are DEL")
      ->default_val(0)
      ->check(CLI::Range(0.0, 1.0));
  app->add_option("--key-prefix", options->key_prefix,
                  "Key prefix (default weft:load:<seed>:, fresh for every seed)");
  app->add_option("--seed", options->seed, "Seed for key choice (0: random, printed)")
      ->default_val(0);
  app->add_option("--window-ms", options->window_ms, "Width of the report's time windows")
      ->default_val(100);
  app->add_option("--reply-timeout-ms", options->reply_timeout_ms,
                  "Reconnect when a reply is this late")
      ->default_val(10'000);
  app->add_option("--first-phase", options->first_phase, "Name of the phase the load starts in")
      ->default_val("load");
  app->add_option("--phase", options->phases,
                  "Start phase NAME at SECONDS after the start (repeatable): NAME@SECONDS");
  app->add_flag("--verify", options->verify,
                "Afterwards, read every written key from every member and compare");
  app->add_option("--windows-csv", options->windows_csv, "Write per-window figures to this file");
  return Subcommand{app, [options] {
                      return RunLoad(*options);
                    }};
}

}  // namespace weft::tools
