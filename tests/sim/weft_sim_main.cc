// weft-sim: runs the deterministic simulator (tests/sim, docs/design/simulation.md).
//
//   weft-sim --seed N [--trace]        one run: its plan, its result, `trace HASH`
//   weft-sim --seeds A..B [--jobs J]   a batch: `N passed, N failed` and, for each failure, the
//                                      command that replays it
//   weft-sim --regressions FILE        the seeds listed in FILE (one per line, # comments)
//   weft-sim --scenario NAME           a scripted scenario (--scenarios lists them)
//   --until-failure                    a batch stops starting seeds after the first failure
//   --membership-faults                also stalls past the lease and partitions past the
//                                      unreachable timeout (members lose their place)
//   --registry-cuts                    with --membership-faults: also one member at a time cut
//                                      off from etcd alone, and registry outages that end as
//                                      a freeze does (every lease etcd missed expires at once)
//   --break NAME                       removes one safeguard (skip-drain,
//                                      image-overwrites-postimage, release-before-flush,
//                                      ack-before-joiner-applies): the checkers must catch it
//
// Each seed of a batch runs in a child process with a time limit, so a crash (a failed
// WEFT_CHECK), a hang or a leak in one seed is that seed's failure, not the batch's.
#include <unistd.h>

#include <cctype>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "tests/sim/scenarios.h"
#include "tests/sim/simulation.h"
#include <fmt/format.h>
#include <spdlog/sinks/stdout_sinks.h>
#include <spdlog/spdlog.h>
#include <sys/wait.h>

namespace {

using weft::replication::ProtocolBreaks;
using weft::sim::SimPlan;
using weft::sim::SimResult;
using weft::sim::Simulation;

bool ParseBreak(const std::string& name, ProtocolBreaks* breaks) {
  const std::pair<const char*, bool ProtocolBreaks::*> kBreaks[] = {
      {"skip-drain", &ProtocolBreaks::skip_drain},
      {"image-overwrites-postimage", &ProtocolBreaks::image_overwrites_postimage},
      {"release-before-flush", &ProtocolBreaks::release_before_flush},
      {"ack-before-joiner-applies", &ProtocolBreaks::ack_before_joiner_applies},
      {"bug1-stale-reconcile", &ProtocolBreaks::stale_reconcile},
      {"bug2-stale-release-recipients", &ProtocolBreaks::stale_release_recipients},
      {"bug3-forget-image-for-repair", &ProtocolBreaks::forget_image_for_repair},
      {"bug4-repair-without-pre-image", &ProtocolBreaks::repair_without_pre_image},
      {"bug5-release-tickets-on-close", &ProtocolBreaks::release_tickets_on_close},
      {"bug6-clear-without-barrier", &ProtocolBreaks::clear_without_barrier},
      {"bug7-skip-release-sweep", &ProtocolBreaks::skip_release_sweep},
      {"bug8-blacklist-failed-providers", &ProtocolBreaks::blacklist_failed_providers},
      {"bug9-silent-marking-failure", &ProtocolBreaks::silent_marking_failure},
      {"bug10-keep-pre-images-at-active", &ProtocolBreaks::keep_pre_images_at_active},
      {"bug11-admit-any-requester", &ProtocolBreaks::admit_any_requester},
      {"bug12-reuse-stream-ids", &ProtocolBreaks::reuse_stream_ids},
      {"seed989-give-up-holding-on-entry", &ProtocolBreaks::give_up_holding_on_entry},
      {"seed1624-admit-ended-entries", &ProtocolBreaks::admit_ended_entries},
  };
  for (const auto& [known, field] : kBreaks) {
    if (name == known) {
      breaks->*field = true;
      return true;
    }
  }
  return false;
}

bool membership_faults = false;
bool registry_cuts = false;

SimResult RunSeed(uint64_t seed, const ProtocolBreaks& breaks, bool verbose, bool describe) {
  SimPlan plan = SimPlan::FromSeed(seed, membership_faults, registry_cuts);
  if (describe) {
    fmt::print("plan {}\n", plan.Describe());
    std::fflush(stdout);
  }
  Simulation simulation(std::move(plan), breaks, verbose);
  return simulation.Run();
}

void PrintResult(uint64_t seed, const SimResult& result) {
  for (const std::string& failure : result.failures) {
    fmt::print("  {}\n", failure);
  }
  fmt::print("trace {:016x}\n", result.trace_hash);
  fmt::print(
      "seed {}: {} ({} events, {} writes ({} acknowledged), {} change events, {} join(s) "
      "completed, {:.1f} s simulated)\n",
      seed, result.passed ? "passed" : "FAILED", result.events_run, result.writes, result.acked,
      result.change_events, result.joins_completed, result.simulated_s);
}

struct Child {
  uint64_t seed;
  pid_t pid;
  int output;  // read end of the child's stdout
  std::chrono::steady_clock::time_point started;
};

std::string Drain(int fd) {
  std::string text;
  char buffer[4096];
  ssize_t n;
  while ((n = read(fd, buffer, sizeof(buffer))) > 0) {
    text.append(buffer, static_cast<size_t>(n));
  }
  return text;
}

int RunBatch(const std::vector<uint64_t>& seeds, const ProtocolBreaks& breaks,
             const std::string& break_flag, int jobs, int timeout_s, bool until_failure) {
  int passed = 0;
  int failed = 0;
  std::vector<Child> running;
  size_t next = 0;
  const auto started = std::chrono::steady_clock::now();
  auto reap = [&](bool block) {
    for (auto it = running.begin(); it != running.end();) {
      int status = 0;
      const pid_t done = waitpid(it->pid, &status, block ? 0 : WNOHANG);
      const bool late =
          std::chrono::steady_clock::now() - it->started > std::chrono::seconds(timeout_s);
      if (done == 0 && !late) {
        ++it;
        continue;
      }
      if (done == 0) {
        kill(it->pid, SIGKILL);
        waitpid(it->pid, &status, 0);
      }
      const std::string output = Drain(it->output);
      close(it->output);
      const bool ok = done != 0 && WIFEXITED(status) && WEXITSTATUS(status) == 0;
      if (ok) {
        ++passed;
      } else {
        ++failed;
        fmt::print("FAILED seed {}{}:\n{}  replay: weft-sim --seed {}{}{}{}\n", it->seed,
                   done == 0             ? fmt::format(" (no result after {} s)", timeout_s)
                   : WIFSIGNALED(status) ? fmt::format(" (signal {})", WTERMSIG(status))
                                         : std::string(),
                   output, it->seed, break_flag.empty() ? "" : " --break " + break_flag,
                   membership_faults ? " --membership-faults" : "",
                   registry_cuts ? " --registry-cuts" : "");
        std::fflush(stdout);
      }
      it = running.erase(it);
      block = false;
    }
  };
  while (next < seeds.size() || !running.empty()) {
    if (until_failure && failed > 0) {
      next = seeds.size();  // let the running ones finish; start no more
    }
    while (next < seeds.size() && static_cast<int>(running.size()) < jobs) {
      int pipe_fds[2];
      if (pipe(pipe_fds) != 0) {
        std::perror("pipe");
        return 2;
      }
      std::fflush(stdout);
      const pid_t pid = fork();
      if (pid == 0) {
        close(pipe_fds[0]);
        dup2(pipe_fds[1], STDOUT_FILENO);
        const SimResult result = RunSeed(seeds[next], breaks, false, false);
        if (!result.passed) {
          PrintResult(seeds[next], result);
        }
        std::fflush(stdout);
        _exit(result.passed ? 0 : 1);
      }
      close(pipe_fds[1]);
      running.push_back(Child{seeds[next], pid, pipe_fds[0], std::chrono::steady_clock::now()});
      ++next;
    }
    reap(false);
    if (!running.empty()) {
      usleep(2000);
    }
  }
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
  fmt::print("{} passed, {} failed ({:.1f} s, {:.2f} s per seed with {} job(s))\n", passed, failed,
             seconds, seconds * jobs / std::max<size_t>(1, seeds.size()), jobs);
  return failed == 0 ? 0 : 1;
}

int Usage() {
  std::fprintf(stderr,
               "usage: weft-sim --seed N [--trace] | --seeds A..B [--jobs J] | --regressions FILE"
               " [--break NAME] [--membership-faults [--registry-cuts]] [--timeout S]\n");
  return 2;
}

}  // namespace

int main(int argc, char** argv) {
  spdlog::set_level(spdlog::level::off);
  std::vector<uint64_t> seeds;
  bool single = false;
  bool until_failure = false;
  std::string scenario;
  bool verbose = false;
  int jobs = 1;
  int timeout_s = 120;
  ProtocolBreaks breaks;
  std::string break_flag;
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    auto value = [&]() -> std::string {
      return i + 1 < argc ? argv[++i] : "";
    };
    if (arg == "--seed") {
      seeds = {std::strtoull(value().c_str(), nullptr, 10)};
      single = true;
    } else if (arg == "--seeds") {
      const std::string range = value();
      const size_t dots = range.find("..");
      if (dots == std::string::npos) {
        return Usage();
      }
      const uint64_t first = std::strtoull(range.substr(0, dots).c_str(), nullptr, 10);
      const uint64_t last = std::strtoull(range.substr(dots + 2).c_str(), nullptr, 10);
      for (uint64_t seed = first; seed <= last; ++seed) {
        seeds.push_back(seed);
      }
    } else if (arg == "--regressions") {
      std::ifstream file(value());
      std::string line;
      while (std::getline(file, line)) {
        if (!line.empty() && std::isdigit(static_cast<unsigned char>(line[0]))) {
          seeds.push_back(std::strtoull(line.c_str(), nullptr, 10));
        }
      }
      if (seeds.empty()) {
        std::fprintf(stderr, "no seeds in the regression file\n");
        return 2;
      }
    } else if (arg == "--jobs") {
      jobs = std::max(1, std::atoi(value().c_str()));
    } else if (arg == "--timeout") {
      timeout_s = std::max(1, std::atoi(value().c_str()));
    } else if (arg == "--trace") {
      verbose = true;
      // The members' own log lines, in order among the trace's (one stdout).
      auto logger = spdlog::stdout_logger_st("sim");
      logger->set_pattern("           log %l: %v");
      spdlog::set_default_logger(logger);
      spdlog::set_level(spdlog::level::info);
    } else if (arg == "--scenario") {
      scenario = value();
    } else if (arg == "--scenarios") {
      for (const std::string& name : weft::sim::ScenarioNames()) {
        fmt::print("{}\n", name);
      }
      return 0;
    } else if (arg == "--until-failure") {
      until_failure = true;
    } else if (arg == "--membership-faults") {
      membership_faults = true;
    } else if (arg == "--registry-cuts") {
      registry_cuts = true;
    } else if (arg == "--break") {
      break_flag = value();
      if (!ParseBreak(break_flag, &breaks)) {
        std::fprintf(stderr, "unknown break '%s'\n", break_flag.c_str());
        return 2;
      }
    } else {
      return Usage();
    }
  }
  if (!scenario.empty()) {
    std::optional<SimResult> result = weft::sim::RunScenario(scenario, breaks, verbose);
    if (!result) {
      std::fprintf(stderr, "no scenario '%s' (--scenarios lists them)\n", scenario.c_str());
      return 2;
    }
    fmt::print("scenario {}\n", scenario);
    PrintResult(0, *result);
    return result->passed ? 0 : 1;
  }
  if (seeds.empty()) {
    return Usage();
  }
  if (single) {
    const SimResult result = RunSeed(seeds[0], breaks, verbose, true);
    PrintResult(seeds[0], result);
    return result.passed ? 0 : 1;
  }
  return RunBatch(seeds, breaks, break_flag, jobs, timeout_s, until_failure);
}
