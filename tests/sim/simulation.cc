#include "tests/sim/simulation.h"

#include <algorithm>
#include <cmath>
#include <utility>

#include "weft/replication/write_ticket.h"

#include <fmt/format.h>

namespace weft::sim {
namespace {

constexpr int64_t kMs = 1000;
constexpr int64_t kSecond = 1'000'000;

std::string_view FaultName(Fault::Kind kind) {
  switch (kind) {
    case Fault::Kind::kCrash:
      return "crash";
    case Fault::Kind::kCut:
      return "cut one way";
    case Fault::Kind::kCutBoth:
      return "cut both ways";
    case Fault::Kind::kClog:
      return "clog";
    case Fault::Kind::kResetLanes:
      return "reset lanes";
    case Fault::Kind::kResetImage:
      return "reset images";
    case Fault::Kind::kStall:
      return "stall";
    case Fault::Kind::kRegistryDown:
      return "registry down";
    case Fault::Kind::kRegistryCut:
      return "registry cut off";
  }
  return "?";
}

std::string_view RoleName(PhaseCrash::Role role) {
  switch (role) {
    case PhaseCrash::Role::kJoiner:
      return "joiner";
    case PhaseCrash::Role::kProvider:
      return "provider";
    case PhaseCrash::Role::kWriter:
      return "writer";
  }
  return "?";
}

}  // namespace

SimPlan SimPlan::FromSeed(uint64_t seed, bool membership_faults, bool registry_cuts) {
  Random random(seed ^ 0x5eedf00dULL);
  SimPlan plan;
  plan.seed = seed;
  plan.membership_faults = membership_faults;
  plan.registry_cuts = membership_faults && registry_cuts;
  plan.mode =
      random.OneIn(5) ? replication::ReplicationMode::kAsync : replication::ReplicationMode::kSync;
  plan.founders = 1 + static_cast<int>(random.Uniform(3));
  plan.joiners = 1 + static_cast<int>(random.Uniform(3));
  plan.joins_together = random.OneIn(3);
  plan.keys = random.OneIn(2) ? 4 + random.Uniform(12) : 200 + random.Uniform(800);
  plan.single_writer_keys = static_cast<int>(random.Uniform(4));
  plan.writes_per_second = 50 + static_cast<int>(random.Uniform(350));
  plan.reads_per_second = 20 + static_cast<int>(random.Uniform(80));
  plan.write_until_us = (8 + static_cast<int64_t>(random.Uniform(12))) * kSecond;
  plan.delete_one_in = 3 + static_cast<int>(random.Uniform(8));
  plan.expire_one_in = random.OneIn(2) ? 0 : 5 + static_cast<int>(random.Uniform(20));
  plan.max_skew_ms = static_cast<int64_t>(random.Uniform(500));
  plan.max_drift = static_cast<double>(random.Uniform(2000)) / 1e6;
  plan.transient_error_one_in = random.OneIn(3) ? 5 + random.Uniform(20) : 0;
  const int faults = static_cast<int>(random.Uniform(5));
  for (int i = 0; i < faults; ++i) {
    Fault fault;
    fault.kind = static_cast<Fault::Kind>(random.Uniform(8));
    fault.at_us = static_cast<int64_t>(random.Uniform(static_cast<uint64_t>(plan.write_until_us)));
    fault.duration_us = 200 * kMs + static_cast<int64_t>(random.Uniform(6 * kSecond));
    fault.restart = random.OneIn(2);
    if (!membership_faults) {
      // Shorter than a lease (2 s) for a stall; than the unreachable timeout (5 s) for a path.
      const bool path = fault.kind == Fault::Kind::kCut || fault.kind == Fault::Kind::kCutBoth ||
                        fault.kind == Fault::Kind::kClog;
      if (fault.kind == Fault::Kind::kStall) {
        fault.duration_us = std::min<int64_t>(fault.duration_us, 1'500 * kMs);
      } else if (path) {
        fault.duration_us = std::min<int64_t>(fault.duration_us, 3 * kSecond);
      }
    }
    plan.faults.push_back(fault);
  }
  if (plan.registry_cuts) {
    // Drawn apart, so that adding this fault left the other faults of every seed as they were.
    Random cuts(seed ^ 0xc07e7cd5ULL);
    if (cuts.OneIn(3)) {
      Fault fault;
      fault.kind = Fault::Kind::kRegistryCut;
      fault.at_us = static_cast<int64_t>(cuts.Uniform(static_cast<uint64_t>(plan.write_until_us)));
      fault.duration_us = 500 * kMs + static_cast<int64_t>(cuts.Uniform(8 * kSecond));
      plan.faults.push_back(fault);
    }
    // The same mode turns half the registry outages into freezes (drawn last, for the same
    // reason).
    for (Fault& fault : plan.faults) {
      if (fault.kind == Fault::Kind::kRegistryDown) {
        fault.freeze = cuts.OneIn(2);
      }
    }
  }
  const int phase_crashes = random.OneIn(2) ? static_cast<int>(random.Uniform(3)) : 0;
  for (int i = 0; i < phase_crashes; ++i) {
    PhaseCrash crash;
    constexpr replication::JoinPhase kPhases[] = {
        replication::JoinPhase::kIntent, replication::JoinPhase::kStabilize,
        replication::JoinPhase::kImage, replication::JoinPhase::kIncorporate,
        replication::JoinPhase::kFlush};
    crash.phase = kPhases[random.Uniform(5)];
    crash.role = static_cast<PhaseCrash::Role>(random.Uniform(3));
    crash.delay_us = static_cast<int64_t>(random.Uniform(3 * kMs));
    crash.restart = random.OneIn(2);
    plan.phase_crashes.push_back(crash);
  }
  return plan;
}

std::string SimPlan::Describe() const {
  std::string text = fmt::format(
      "seed {}: {} region, {} founder(s), {} joiner(s){}, {} multi-writer key(s), {} "
      "single-writer key(s), {} writes/s and {} reads/s for {:.1f} s, delete 1/{}, expire {}, "
      "clock skew <= {} ms, drift <= {:.4f}, registry errors {}{}{}",
      seed, replication::ReplicationModeName(mode), founders, joiners,
      joins_together ? " at once" : "", keys, single_writer_keys, writes_per_second,
      reads_per_second, static_cast<double>(write_until_us) / 1e6, delete_one_in,
      expire_one_in == 0 ? std::string("never") : fmt::format("1/{}", expire_one_in), max_skew_ms,
      max_drift,
      transient_error_one_in == 0 ? std::string("none")
                                  : fmt::format("1/{}", transient_error_one_in),
      membership_faults ? ", membership faults" : "", registry_cuts ? ", registry cuts" : "");
  for (const Fault& fault : faults) {
    text +=
        fmt::format("\n  at {:.3f} s: {} for {:.3f} s{}", static_cast<double>(fault.at_us) / 1e6,
                    FaultName(fault.kind), static_cast<double>(fault.duration_us) / 1e6,
                    fault.kind == Fault::Kind::kCrash && fault.restart ? ", then restart"
                    : fault.freeze                                     ? " (a freeze)"
                                                                       : "");
  }
  for (const PhaseCrash& crash : phase_crashes) {
    text += fmt::format("\n  when a join enters {}: crash its {} after {} us{}",
                        replication::JoinPhaseName(crash.phase), RoleName(crash.role),
                        crash.delay_us, crash.restart ? ", then restart" : "");
  }
  return text;
}

Simulation::Simulation(SimPlan plan, replication::ProtocolBreaks breaks, bool verbose)
    : plan_(std::move(plan)),
      random_(plan_.seed),
      network_(loop_, random_),
      registry_(loop_, random_, SimRegistryOptions{}),
      world_{loop_, network_, registry_, oracle_, nullptr} {
  loop_.set_verbose(verbose);
  oracle_.set_latest_wall_clock([this] {
    int64_t latest = 0;
    for (const std::unique_ptr<SimMember>& member : members_) {
      latest = std::max(latest, member->clock().NowUnixMs());
    }
    return latest;
  });
  registry_.set_transient_error_one_in(plan_.transient_error_one_in);
  world_.on_phase = [this](SimMember& member, replication::JoinPhase from,
                           replication::JoinPhase to) {
    OnJoinPhase(member, from, to);
  };
  options_.region = "sim";
  options_.mode = plan_.mode;
  options_.lanes = 2;
  options_.ack_timeout_ms = 10'000;
  options_.join_phase_timeout_ms = 10'000;
  options_.image_stall_timeout_ms = 5'000;
  options_.retry_min_ms = 100;
  options_.retry_max_ms = 2'000;
  options_.image_chunk_bytes = 4096;
  options_.image_window_bytes = 16 * 1024;
  options_.lane_payload_bytes = 16 * 1024;
  options_.postimage_shard_count = 16;
  // State kept for a while is bounded by its TTL; short ones let the final checks see it gone.
  options_.early_marker_ttl_ms = 5'000;
  options_.stabilized_ttl_ms = 5'000;
  // Short reconcile steps, so that live changes and control records fall between them.
  options_.reconcile_batch = 1 + random_.Uniform(16);
  options_.breaks = breaks;
  phase_crashes_ = plan_.phase_crashes;
}

Simulation::~Simulation() {
  // Members first: their sessions refer to the network and the registry.
  for (auto& member : members_) {
    if (member->alive()) {
      member->Crash();
    }
  }
  members_.clear();
}

SimMember* Simulation::StartMember(const MemberTweaks& tweaks) {
  const std::string name = fmt::format("m{}", next_name_++);
  const uint64_t id = random_.Next() | 1;
  int64_t skew_ms =
      plan_.max_skew_ms == 0
          ? 0
          : static_cast<int64_t>(random_.Uniform(2 * static_cast<uint64_t>(plan_.max_skew_ms))) -
                plan_.max_skew_ms;
  if (tweaks.skew_ms) {
    skew_ms = *tweaks.skew_ms;
  }
  replication::ReplicatorOptions options = options_;
  if (!tweaks.preferred_provider.empty()) {
    options.preferred_provider = tweaks.preferred_provider;
  }
  if (tweaks.reconcile_batch) {
    options.reconcile_batch = *tweaks.reconcile_batch;
  }
  const double drift =
      plan_.max_drift * (static_cast<double>(random_.Uniform(2001)) / 1000.0 - 1.0);
  members_.push_back(std::make_unique<SimMember>(world_, name, id, random_.Next(), skew_ms, drift,
                                                 options, tweaks.worker_piece_us));
  if (loop_.verbose()) {
    fmt::print(stderr, "{:10.6f} START {} {:016x}\n", static_cast<double>(loop_.now_us()) / 1e6,
               name, id);
  }
  SimMember* member = members_.back().get();
  member->Start();
  return member;
}

std::vector<SimMember*> Simulation::Alive() {
  std::vector<SimMember*> alive;
  for (auto& member : members_) {
    if (member->alive()) {
      alive.push_back(member.get());
    }
  }
  return alive;
}

std::map<uint64_t, SimMember*> Simulation::MemberMap() {
  std::map<uint64_t, SimMember*> map;
  for (auto& member : members_) {
    map[member->id()] = member.get();
  }
  return map;
}

SimMember* Simulation::ByName(std::string_view name) {
  for (auto& member : members_) {
    if (member->alive() && member->name() == name) {
      return member.get();
    }
  }
  return nullptr;
}

SimMember* Simulation::Pick(bool active_only) {
  std::vector<SimMember*> candidates;
  for (SimMember* member : Alive()) {
    if (!active_only || member->replicator().serving()) {
      candidates.push_back(member);
    }
  }
  return candidates.empty() ? nullptr : candidates[random_.Uniform(candidates.size())];
}

void Simulation::Crash(SimMember* member, bool restart) {
  if (member == nullptr || !member->alive()) {
    return;
  }
  // Never the last member that serves the region's data and holds it in the registry: the
  // region's data is in memory, and once no live member holds it, it is gone, which is not a
  // protocol bug. (Serving alone is not enough: a member cut off from etcd, dropped from the
  // group and its holding, still serves an async region until it learns it; seed 2858 crashed
  // the last holder beside it and waited for it forever.)
  int other_holders = 0;
  for (SimMember* other : Alive()) {
    other_holders += other != member && other->replicator().serving() &&
                             registry_.Holds(options_.region, other->id())
                         ? 1
                         : 0;
  }
  if (other_holders == 0) {
    return;
  }
  if (loop_.verbose()) {
    fmt::print(stderr, "{:10.6f} CRASH {}\n", static_cast<double>(loop_.now_us()) / 1e6,
               member->name());
  }
  member->Crash();
  if (restart) {
    loop_.At(500 * kMs + static_cast<int64_t>(random_.Uniform(2 * kSecond)), 0, "sim.restart",
             [this] {
               if (writing_) {
                 StartMember();
               }
             });
  }
}

void Simulation::OnJoinPhase(SimMember& member, replication::JoinPhase from,
                             replication::JoinPhase to) {
  if (to == replication::JoinPhase::kNone && from == replication::JoinPhase::kFlush) {
    ++joins_completed_;
  }
  for (auto it = phase_crashes_.begin(); it != phase_crashes_.end(); ++it) {
    if (it->phase != to || !writing_) {
      continue;
    }
    const PhaseCrash crash = *it;
    phase_crashes_.erase(it);
    std::string target;
    if (crash.role == PhaseCrash::Role::kJoiner) {
      target = member.name();
    } else if (crash.role == PhaseCrash::Role::kProvider) {
      target = member.replicator().join().progress().provider;
    }
    loop_.At(crash.delay_us, 0, "sim.phase-crash", [this, crash, target] {
      SimMember* victim = crash.role == PhaseCrash::Role::kWriter ? Pick(true) : ByName(target);
      Crash(victim, crash.restart);
    });
    return;
  }
}

void Simulation::Write(SimMember* member, const std::string& key, bool single_writer,
                       std::function<void(bool acked)> done) {
  if (member == nullptr || !member->alive() || !member->replicator().serving()) {
    done(false);
    return;
  }
  // Step 1: the recipient snapshot.
  const int64_t begun_us = loop_.now_us();
  auto set = std::make_shared<std::shared_ptr<const replication::RecipientSet>>(
      member->replicator().write_path().Begin());
  const uint64_t roll = random_.Next();
  const int64_t expire_ms = 20 + static_cast<int64_t>(random_.Uniform(400));
  auto finished = std::make_shared<bool>(false);
  auto finish = [finished, done](bool acked) {
    if (!*finished) {
      *finished = true;
      done(acked);
    }
  };
  // Step 2: apply under the key's shard lock and enqueue to the snapshot's recipients. Now and
  // then the writer is descheduled between its snapshot and its enqueue (a busy machine):
  // the drain must wait for it.
  const int64_t gap_us = random_.OneIn(16) ? 1'000 + static_cast<int64_t>(random_.Uniform(30'000))
                                           : static_cast<int64_t>(random_.Uniform(300));
  member->Schedule(gap_us, "client.apply", [=, this] {
    replication::WriteContext context;
    context.snapshot = set->get();
    auto record_index = std::make_shared<std::optional<size_t>>();
    auto ticket =
        std::make_shared<replication::WriteTicket>([this, record_index, finish](bool acknowledged) {
          // An abandoned write is not acknowledged: the client learns its outcome is unknown.
          if (acknowledged && *record_index) {
            oracle_.OnAck(**record_index, loop_.now_us());
          }
          finish(acknowledged);
        });
    context.ticket = ticket;
    member->store().WithKey(
        key,
        [&](storage::LockedKeys& keys) {
          const std::optional<storage::EntryView> before = keys.Find(key);
          WriteRecord record;
          record.origin = member->id();
          record.key = key;
          record.pre =
              before ? std::optional<std::string>(std::string(before->value)) : std::nullopt;
          for (const replication::Recipient& recipient : (*set)->members) {
            record.snapshot.insert(recipient.outboxes->member);
          }
          record.sync = plan_.mode == replication::ReplicationMode::kSync;
          record.single_writer = single_writer;
          record.begun_us = begun_us;
          record.issued_us = loop_.now_us();
          const bool remove = plan_.delete_one_in != 0 && roll % plan_.delete_one_in == 0;
          const bool expire = plan_.expire_one_in != 0 && (roll >> 8) % plan_.expire_one_in == 0;
          if (remove && !before) {
            return;  // DEL of an absent key changes nothing
          }
          record.version = member->versions().Next();
          if (remove) {
            record.value = std::nullopt;
          } else {
            record.value = fmt::format("{}#{}", member->name(), record.version.seq);
            if (expire) {
              record.expire_at_unix_ms = member->clock().NowUnixMs() + expire_ms;
            }
          }
          *record_index = oracle_.OnWrite(record);
          oracle_.ExpectLocalEvent(*member, **record_index);
          if (remove) {
            keys.Delete(key, record.version);
          } else {
            keys.Set(key, *record.value, record.version, record.expire_at_unix_ms);
          }
        },
        &context);
    // Step 3: the write ends; the client waits for its acknowledgement (sync) or not (async).
    member->Schedule(static_cast<int64_t>(random_.Uniform(300)), "client.end",
                     [this, member, set, ticket, record_index, finish] {
                       member->replicator().write_path().End(**set);
                       const bool done_now = ticket->Arm();
                       if (!*record_index || (done_now && ticket->abandoned())) {
                         finish(false);
                       } else if (done_now || plan_.mode == replication::ReplicationMode::kAsync) {
                         oracle_.OnAck(**record_index, loop_.now_us());
                         finish(true);
                       }
                     });
  });
}

void Simulation::RandomWrite() {
  if (!writing_) {
    return;
  }
  SimMember* member = Pick(true);
  const std::string key = fmt::format("k{}", random_.Uniform(plan_.keys));
  Write(member, key, false, [this, key](bool acked) {
    // A client that wrote on one member often reads on another right after.
    if (acked && random_.OneIn(4)) {
      CheckRead(Pick(true), key);
    }
  });
  const double mean_us = 1e6 / plan_.writes_per_second;
  const auto gap = static_cast<int64_t>(
      -std::log(1.0 - static_cast<double>(random_.Uniform(1'000'000)) / 1e6) * mean_us);
  loop_.At(gap, 0, "client.write", [this] { RandomWrite(); });
}

void Simulation::CheckRead(SimMember* member, const std::string& key) {
  // A stopped process answers nothing: its clients wait, and read when it resumes.
  if (member == nullptr || plan_.mode != replication::ReplicationMode::kSync ||
      loop_.StalledUntil(member->id()) > loop_.now_us()) {
    return;
  }
  const int64_t now_us = loop_.now_us();
  // A member of the group misses no acknowledged sync write. One the group dropped, unaware so
  // far, may miss those of the read guard's bound: past it, it must have stopped serving.
  const int64_t acked_by_us = registry_.Group(options_.region).Contains(member->id())
                                  ? now_us
                                  : now_us - ReadGuardBoundUs();
  oracle_.CheckRead(*member, key, now_us, acked_by_us);
}

int64_t Simulation::ReadGuardBoundUs() const {
  // The guard closes once a member has not heard from the group for silence_timeout, checked
  // every tick; a member's clock may run slow by its drift.
  return static_cast<int64_t>(
             static_cast<double>(options_.silence_timeout_ms * 1000 + 2 * options_.tick_ms * 1000) *

             (1.0 + plan_.max_drift)) +
         2 * plan_.max_skew_ms * 1000;
}

void Simulation::SingleWriter(int index, SimMember* member) {
  if (!writing_ || member == nullptr || !member->alive()) {
    return;
  }
  const std::string key = fmt::format("solo{}", index);
  if (!member->replicator().serving()) {
    loop_.At(100 * kMs, 0, "client.solo-wait",
             [this, index, member] { SingleWriter(index, member); });
    return;
  }
  Write(member, key, true, [this, index, member](bool acked) {
    loop_.At(1 * kMs + static_cast<int64_t>(random_.Uniform(20 * kMs)), 0, "client.solo",
             [this, index, member] { SingleWriter(index, member); });
  });
}

void Simulation::RandomRead() {
  if (!writing_) {
    return;
  }
  const std::string key = random_.OneIn(4) && plan_.single_writer_keys > 0
                              ? fmt::format("solo{}", random_.Uniform(plan_.single_writer_keys))
                              : fmt::format("k{}", random_.Uniform(plan_.keys));
  CheckRead(Pick(true), key);
  loop_.At(static_cast<int64_t>(1e6 / plan_.reads_per_second), 0, "client.read",
           [this] { RandomRead(); });
}

void Simulation::Apply(const Fault& fault) {
  if (!writing_) {
    return;
  }
  SimMember* a = Pick(false);
  SimMember* b = Pick(false);
  if (a == nullptr) {
    return;
  }
  if (loop_.verbose()) {
    fmt::print(stderr, "{:10.6f} FAULT {} {} {}\n", static_cast<double>(loop_.now_us()) / 1e6,
               FaultName(fault.kind), a->name(), b != nullptr ? b->name() : "");
  }
  switch (fault.kind) {
    case Fault::Kind::kCrash:
      Crash(a, fault.restart);
      break;
    case Fault::Kind::kCut:
      if (b != a) {
        network_.Cut(a->id(), b->id(), fault.duration_us);
      }
      break;
    case Fault::Kind::kCutBoth:
      if (b != a) {
        network_.Cut(a->id(), b->id(), fault.duration_us);
        network_.Cut(b->id(), a->id(), fault.duration_us);
      }
      break;
    case Fault::Kind::kClog:
      if (b != a) {
        network_.Clog(a->id(), b->id(), fault.duration_us);
      }
      break;
    case Fault::Kind::kResetLanes:
      if (b != a) {
        network_.Reset(a->id(), b->id(), true, false);
      }
      break;
    case Fault::Kind::kResetImage:
      for (SimMember* other : Alive()) {
        network_.Reset(a->id(), other->id(), false, true);
      }
      break;
    case Fault::Kind::kStall:
      a->Stall(fault.duration_us);
      break;
    case Fault::Kind::kRegistryDown:
      registry_.Outage(fault.duration_us, fault.freeze);
      break;
    case Fault::Kind::kRegistryCut:
      registry_.Cut(a->id(), fault.duration_us);
      break;
  }
}

void Simulation::ScheduleWorkload() {
  for (int i = 0; i < plan_.founders; ++i) {
    StartMember();
  }
  const int64_t first_join_us = 1 * kSecond + static_cast<int64_t>(random_.Uniform(kSecond));
  for (int i = 0; i < plan_.joiners; ++i) {
    const int64_t at_us =
        plan_.joins_together
            ? first_join_us
            : first_join_us + static_cast<int64_t>(
                                  random_.Uniform(static_cast<uint64_t>(plan_.write_until_us / 2)));
    loop_.At(at_us, 0, "sim.join", [this] {
      if (writing_) {
        StartMember();
      }
    });
  }
  loop_.At(300 * kMs, 0, "client.write", [this] { RandomWrite(); });
  loop_.At(300 * kMs, 0, "client.read", [this] { RandomRead(); });
  for (int i = 0; i < plan_.single_writer_keys; ++i) {
    SimMember* member = members_[random_.Uniform(members_.size())].get();
    loop_.At(400 * kMs, 0, "client.solo", [this, i, member] { SingleWriter(i, member); });
  }
  for (const Fault& fault : plan_.faults) {
    loop_.At(fault.at_us, 0, "sim.fault", [this, fault] { Apply(fault); });
  }
  loop_.At(plan_.write_until_us, 0, "sim.stop-writes", [this] { writing_ = false; });
}

bool Simulation::Quiet() {
  const membership::GroupView group = registry_.Group(options_.region);
  for (SimMember* member : Alive()) {
    const replication::RegionReplicator& replicator = member->replicator();
    if (replicator.state() == replication::RegionState::kFailed) {
      continue;
    }
    if (!replicator.serving() || !group.Contains(member->id()) ||
        replicator.join().phase() != replication::JoinPhase::kNone ||
        replicator.image_serves() > 0) {
      return false;
    }
    for (const auto& [id, peer] : replicator.peers().all()) {
      for (const auto& outbox : peer.outboxes->lanes) {
        if (outbox->sent() != outbox->acked()) {
          return false;
        }
      }
    }
  }
  return true;
}

bool Simulation::RunUntil(const std::function<bool()>& done, int64_t bound_us) {
  const int64_t deadline = loop_.now_us() + bound_us;
  while (!done()) {
    if (loop_.now_us() >= deadline) {
      return false;
    }
    loop_.RunUntil(loop_.now_us() + 1 * kMs);
  }
  return true;
}

bool Simulation::Settle(int64_t bound_us) {
  const int64_t deadline = loop_.now_us() + bound_us;
  while (loop_.now_us() < deadline) {
    loop_.RunUntil(loop_.now_us() + 250 * kMs);
    oracle_.CheckCounters(MemberMap());
    if (Quiet()) {
      // Long enough for late control records to settle and for what is kept for a TTL to
      // expire: nothing may be left after that.
      loop_.RunUntil(loop_.now_us() + 6 * kSecond);
      if (Quiet()) {
        return true;
      }
    }
  }
  return false;
}

SimResult Simulation::Finish(bool settled) {
  const std::map<uint64_t, SimMember*> members = MemberMap();
  oracle_.CheckCounters(members);
  oracle_.CheckEnd(members, settled, registry_.Group(options_.region),
                   plan_.mode == replication::ReplicationMode::kSync);
  for (SimMember* member : Alive()) {
    loop_.Fold(member->store().Digest());
  }
  SimResult result;
  result.failures = oracle_.failures();
  result.passed = result.failures.empty();
  result.trace_hash = loop_.trace_hash();
  result.events_run = loop_.events_run();
  result.writes = oracle_.write_count();
  result.acked = oracle_.writes_acked();
  result.change_events = oracle_.events();
  result.joins_completed = joins_completed_;
  result.rejoins = oracle_.rejoins();
  result.simulated_s = static_cast<double>(loop_.now_us()) / 1e6;
  return result;
}

SimResult Simulation::Run() {
  ScheduleWorkload();
  // Writes and faults; the oracles run as it goes.
  while (loop_.now_us() < plan_.write_until_us && !oracle_.failed()) {
    loop_.RunUntil(std::min(plan_.write_until_us, loop_.now_us() + 250 * kMs));
    oracle_.CheckCounters(MemberMap());
  }
  // Faults heal (every one has a duration), writes stop; the run must settle.
  const bool settled = !oracle_.failed() && Settle(60 * kSecond);
  return Finish(settled);
}

}  // namespace weft::sim
