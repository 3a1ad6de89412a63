// `weft demo`: the main job (README's first command). Three members in one process, a
// preloaded dataset, a bounded write load spread over the members, a fourth member joining in
// the middle of it with a live progress bar, and a report: writers' throughput, latency and
// longest stall before / during / after the join, the join's duration and rate, the live
// changes the joiner received with pre-images, and the four digests, which must be equal.
//
// Exit code 0 only if the digests agree and every acknowledged write reads back from every
// member.
#include <cinttypes>
#include <cstdio>
#include <memory>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "weft/base/clock.h"
#include "weft/base/logging.h"
#include "weft/replication/write_ticket.h"

#include "tools/weft/demo_cluster.h"
#include "tools/weft/load_report.h"
#include "tools/weft/load_verifier.h"
#include "tools/weft/progress_bar.h"
#include "tools/weft/subcommand.h"
#include "tools/weft/write_load.h"
#include <CLI/CLI.hpp>
#include <fmt/format.h>
#include <spdlog/spdlog.h>

namespace weft::tools {
namespace {

struct DemoOptions {
  int64_t keys = 1'000'000;
  int value_bytes = 100;
  int members = 3;
  double rate = 5'000;
  // Per member. Each connection has one request in flight, so the connections together must
  // absorb rate x latency: with 2 per member a sync write's extra acknowledgement during the
  // join (~0.8 ms) capped the load at ~8k/s and the open-loop backlog then read as seconds of
  // latency. Real clients use many connections; 8 per member leaves room to see the real stall.
  int connections = 8;
  int64_t load_keys = 100'000;
  double before_s = 3;
  double after_s = 3;
  double join_timeout_s = 600;
  uint32_t lanes = 2;
  bool async = false;
  int64_t image_rate_limit = 0;
  std::string provider;
  uint64_t seed = 0;
  std::string windows_csv;
  std::string loglevel = "warning";
};

ProgressBar::Options BarOptions() {
  ProgressBar::Options options;
  options.in_place = ProgressBar::IsTerminal(stdout);
  return options;
}

// Writes `keys` keys of `value_bytes` through the first member's store as local writes, so
// they replicate like client writes; batches wait for their acknowledgements (WriteTicket), so
// the outboxes stay bounded however large the dataset.
Status Preload(DemoMember& member, const DemoOptions& options, const Clock& clock) {
  ProgressBar bar(stdout, clock, BarOptions());
  const std::string value(static_cast<size_t>(options.value_bytes), 'v');
  constexpr int64_t kBatch = 20'000;
  server::Database& database = member.database();
  const int64_t start_us = clock.NowMonotonicUs();
  for (int64_t first = 0; first < options.keys; first += kBatch) {
    Mutex mutex;
    CondVar acknowledged;
    bool done = false;
    auto ticket = std::make_shared<replication::WriteTicket>([&](bool) {
      MutexLock lock(&mutex);
      done = true;
      acknowledged.SignalAll();
    });
    const replication::WriteContext write(ticket);
    const int64_t last = std::min(options.keys, first + kBatch);
    for (int64_t i = first; i < last; ++i) {
      const std::string key = fmt::format("demo:{:010}", i);
      database.store().WithKey(
          key,
          [&](storage::LockedKeys& keys) { keys.Set(key, value, database.versions().Next(), 0); },
          &write);
    }
    if (!ticket->Arm()) {
      MutexLock lock(&mutex);
      while (!done) {
        acknowledged.Wait(&mutex);
      }
    }
    ProgressState state;
    state.label = "preload";
    state.count_noun = "keys";
    state.done = std::min(options.keys, first + kBatch);
    state.total = options.keys;
    bar.Update(state);
  }
  ProgressState state;
  state.label = "preload";
  state.count_noun = "keys";
  state.done = options.keys;
  state.total = options.keys;
  const double seconds = static_cast<double>(clock.NowMonotonicUs() - start_us) / 1e6;
  state.detail = fmt::format("{:.1f} s", seconds);
  bar.Finish(state);
  return absl::OkStatus();
}

// Waits until every outbound lane of every member has been acknowledged (bounded).
bool WaitQuiet(std::vector<std::unique_ptr<DemoMember>>& members, int64_t timeout_ms) {
  SystemClock clock;
  const int64_t deadline = clock.NowMonotonicUs() + timeout_ms * 1000;
  while (clock.NowMonotonicUs() < deadline) {
    bool quiet = true;
    for (auto& member : members) {
      for (const replication::ChannelStatus& channel : member->replicator()->GetStatus().channels) {
        if (channel.outbound && channel.sent != channel.acked) {
          quiet = false;
        }
      }
    }
    if (quiet) {
      return true;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  return false;
}

int RunDemo(const DemoOptions& options) {
  if (!options.provider.empty()) {
    bool known = false;
    for (int i = 1; i <= options.members; ++i) {
      known = known || options.provider == fmt::format("m{}", i);
    }
    if (!known) {
      std::fprintf(stderr, "--provider %s: no such member (m1 to m%d)\n", options.provider.c_str(),
                   options.members);
      return kExitUsage;
    }
  }
  spdlog::set_level(
      spdlog::level::from_str(options.loglevel == "warning" ? "warn" : options.loglevel));
  SystemClock clock;
  std::random_device device;
  const uint64_t seed =
      options.seed != 0 ? options.seed : (static_cast<uint64_t>(device()) << 32) ^ device();
  std::mt19937_64 random(seed);
  std::string secret(32, '\0');
  for (char& c : secret) {
    c = static_cast<char>('a' + random() % 26);
  }
  std::printf("weft demo: %d members + 1 joining, %s keys x %d B, %s, %u lanes, seed %" PRIu64 "\n",
              options.members, HumanCount(options.keys).c_str(), options.value_bytes,
              options.async ? "async" : "sync", options.lanes, seed);

  membership::InProcessRegistryHub hub;
  std::vector<std::unique_ptr<DemoMember>> members;
  auto make_member = [&](int index, std::string provider = "") {
    DemoMemberOptions member_options;
    member_options.name = fmt::format("m{}", index + 1);
    member_options.secret = secret;
    member_options.lanes = options.lanes;
    member_options.sync = !options.async;
    member_options.image_rate_limit = options.image_rate_limit;
    member_options.provider = std::move(provider);
    member_options.seed = random() | 1;
    return std::make_unique<DemoMember>(member_options, hub, clock);
  };
  for (int i = 0; i < options.members; ++i) {
    members.push_back(make_member(i));
    if (Status status = members.back()->Start(); !status.ok()) {
      std::fprintf(stderr, "cannot start %s: %s\n", members.back()->name().c_str(),
                   status.ToString().c_str());
      return kExitFailure;
    }
    // Each starts after the previous one is complete, as an operator would bring them up.
    while (!members.back()->replicator()->serving() ||
           members.back()->replicator()->GetStatus().phase != replication::JoinPhase::kNone) {
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
  }
  if (Status status = Preload(*members[0], options, clock); !status.ok()) {
    std::fprintf(stderr, "preload failed: %s\n", status.ToString().c_str());
    return kExitFailure;
  }

  WriteLoadConfig load_config;
  for (auto& member : members) {
    load_config.members.push_back(HostPort{"127.0.0.1", static_cast<uint16_t>(member->port())});
  }
  load_config.connections_per_member = options.connections;
  load_config.rate_ops_per_s = options.rate;
  load_config.keys = options.load_keys;
  load_config.value_bytes = options.value_bytes;
  load_config.duration_ms =
      static_cast<int64_t>((options.before_s + options.after_s + options.join_timeout_s) * 1000);
  load_config.ops_max = static_cast<int64_t>(options.rate * (options.before_s + options.after_s +
                                                             options.join_timeout_s)) +
                        1;
  load_config.first_phase = "before";
  load_config.seed = seed;
  WriteLoad load(load_config, clock);
  if (Status status = load.Start(); !status.ok()) {
    std::fprintf(stderr, "load: %s\n", status.ToString().c_str());
    return kExitFailure;
  }
  std::printf("load: %s writes/s over %d members, %d connections each\n",
              HumanCount(static_cast<int64_t>(options.rate)).c_str(), options.members,
              options.connections);
  std::this_thread::sleep_for(
      std::chrono::milliseconds(static_cast<int64_t>(options.before_s * 1000)));

  // The join, in the middle of the load.
  (void)load.MarkPhase("during");
  members.push_back(make_member(options.members, options.provider));
  DemoMember& joiner = *members.back();
  if (Status status = joiner.Start(); !status.ok()) {
    std::fprintf(stderr, "cannot start the joiner: %s\n", status.ToString().c_str());
    load.Stop();
    return kExitFailure;
  }
  ProgressBar bar(stdout, clock, BarOptions());
  const int64_t join_deadline =
      clock.NowMonotonicUs() + static_cast<int64_t>(options.join_timeout_s * 1e6);
  replication::ReplicationStatus status;
  while (true) {
    status = joiner.replicator()->GetStatus();
    ProgressState state;
    state.label = fmt::format("join {} <- {}", joiner.name(), status.provider);
    state.count_noun = "entries";
    state.done = static_cast<int64_t>(status.image_entries);
    state.total = static_cast<int64_t>(status.image_entries_estimate);
    state.detail = fmt::format("{} {} post-image {}", replication::JoinPhaseName(status.phase),
                               HumanBytes(static_cast<int64_t>(status.image_bytes)),
                               HumanCount(static_cast<int64_t>(status.postimage_changes)));
    const bool finished = status.state == replication::RegionState::kActive &&
                          status.phase == replication::JoinPhase::kNone;
    if (finished || status.state == replication::RegionState::kFailed ||
        clock.NowMonotonicUs() > join_deadline) {
      bar.Finish(state);
      break;
    }
    bar.Update(state);
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  if (status.state != replication::RegionState::kActive) {
    std::fprintf(stderr, "the join did not complete: state %s\n",
                 std::string(replication::RegionStateName(status.state)).c_str());
    load.Stop();
    return kExitFailure;
  }
  (void)load.MarkPhase("after");
  std::this_thread::sleep_for(
      std::chrono::milliseconds(static_cast<int64_t>(options.after_s * 1000)));
  load.Stop();
  const LoadReport report = load.Report();

  const bool quiet = WaitQuiet(members, 30'000);
  std::printf("\n%s", FormatLoadReport(report).c_str());
  const double join_s = static_cast<double>(status.join_ms) / 1000;
  std::printf(
      "\njoin: %.2f s, %s entries, %s, %.1f MB/s image rate, provider %s, %d attempt(s)\n"
      "post-image changes received during the join: %s\n",
      join_s, HumanCount(static_cast<int64_t>(status.image_entries)).c_str(),
      HumanBytes(static_cast<int64_t>(status.image_bytes)).c_str(),
      static_cast<double>(status.rate_bytes_per_s) / 1e6, status.provider.c_str(),
      status.join_attempts, HumanCount(static_cast<int64_t>(status.postimage_changes)).c_str());
  if (!options.windows_csv.empty()) {
    if (std::FILE* csv = std::fopen(options.windows_csv.c_str(), "w")) {
      std::fputs(FormatWindowsCsv(report).c_str(), csv);
      std::fclose(csv);
    }
  }

  bool ok = quiet;
  if (!quiet) {
    std::printf("replication did not drain within 30 s\n");
  }
  std::printf("\ndigests:\n");
  uint64_t first_digest = 0;
  for (size_t i = 0; i < members.size(); ++i) {
    const uint64_t digest = members[i]->database().store().Digest();
    if (i == 0) {
      first_digest = digest;
    }
    ok = ok && digest == first_digest;
    std::printf(
        "  %-4s %016" PRIx64 "  %s keys\n", members[i]->name().c_str(), digest,
        HumanCount(static_cast<int64_t>(members[i]->database().store().KeyCount())).c_str());
  }
  std::printf("  %s\n", ok ? "all equal" : "DIFFERENT");
  for (auto& member : members) {
    StatusOr<VerifyReport> verified =
        VerifyMember(HostPort{"127.0.0.1", static_cast<uint16_t>(member->port())}, load);
    if (!verified.ok()) {
      std::printf("verify %s: %s\n", member->name().c_str(), verified.status().ToString().c_str());
      ok = false;
      continue;
    }
    std::printf("verify %s: %s keys checked, %s mismatched\n", member->name().c_str(),
                HumanCount(verified->keys_checked).c_str(),
                HumanCount(verified->keys_mismatched).c_str());
    for (const std::string& example : verified->mismatch_examples) {
      std::printf("    %s\n", example.c_str());
    }
    ok = ok && verified->ok();
  }
  std::printf("%s\n", ok ? "demo: OK" : "demo: FAILED");
  for (auto it = members.rbegin(); it != members.rend(); ++it) {
    (*it)->Stop();
  }
  return ok ? kExitOk : kExitFailure;
}

}  // namespace

Subcommand AddDemoCommand(CLI::App& parent) {
  auto options = std::make_shared<DemoOptions>();
  CLI::App* app = parent.add_subcommand(
      "demo", "three members in one process, a write load, a fourth member joining mid-load");
  app->add_option("--keys", options->keys, "preloaded keys")->check(CLI::Range(0, 200'000'000));
  app->add_option("--value-size", options->value_bytes, "bytes per value")
      ->check(CLI::Range(1, 1 << 20));
  app->add_option("--members", options->members, "members before the join")
      ->check(CLI::Range(1, 8));
  app->add_option("--rate", options->rate, "writes/s over all members (open loop)")
      ->check(CLI::Range(1.0, 1e7));
  app->add_option("--connections", options->connections, "writer connections per member")
      ->check(CLI::Range(1, 64));
  app->add_option("--load-keys", options->load_keys, "keys the write load spreads over")
      ->check(CLI::Range(1, 100'000'000));
  app->add_option("--before", options->before_s, "seconds of load before the join");
  app->add_option("--after", options->after_s, "seconds of load after the join");
  app->add_option("--join-timeout", options->join_timeout_s, "give up on the join after this");
  app->add_option("--lanes", options->lanes, "channels per member pair")->check(CLI::Range(1, 64));
  app->add_flag("--async", options->async, "async replication (default sync)");
  app->add_option("--image-rate-limit", options->image_rate_limit, "provider bytes/s cap");
  app->add_option("--provider", options->provider,
                  "the member the joiner copies from (m1, m2, ...; default: a random one)");
  app->add_option("--seed", options->seed, "seed (0 = random, printed)");
  app->add_option("--windows-csv", options->windows_csv, "write per-100 ms windows to this CSV");
  app->add_option("--loglevel", options->loglevel, "members' log level (default warning)");
  return Subcommand{app, [options] {
                      return RunDemo(*options);
                    }};
}

}  // namespace weft::tools
