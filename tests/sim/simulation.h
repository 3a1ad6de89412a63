// Simulation: one seeded run of weft's replication protocol — members (SimMember) on a simulated
// network and registry, a workload of writes and reads, faults — checked by the Oracle during
// and at the end. Everything is drawn from the seed: the plan (printed by Describe), the
// interleavings, the clocks. The same seed gives the same trace hash.
//
// A run: founders start together (several bootstrapping an empty region at once), joiners
// arrive while clients write (multi-writer SET/DEL/EXPIRE on a small or a large key space, and
// single-writer keys), faults strike (crashes of joiner, provider or a writer in a given join
// phase, restarts, one-way and two-way partitions, clogs, resets of lanes and of image
// channels, stalls past the lease, registry outages and transient registry errors); then writes
// stop, faults heal, and the run must settle within a bound before the final checks.
//
// Thread safety: none.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "weft/base/random.h"
#include "weft/replication/region_env.h"

#include "tests/sim/event_loop.h"
#include "tests/sim/oracle.h"
#include "tests/sim/sim_member.h"
#include "tests/sim/sim_network.h"
#include "tests/sim/sim_registry.h"

namespace weft::sim {

struct Fault {
  enum class Kind {
    kCrash,         // kill -9 a member (never the last ACTIVE one); maybe restart it later
    kCut,           // frames a -> b wait
    kCutBoth,       // both ways
    kClog,          // frames between a and b held
    kResetLanes,    // lane connections between a and b reset
    kResetImage,    // image connections of a reset
    kStall,         // a stops (its lease may expire)
    kRegistryDown,  // etcd unreachable
    kRegistryCut,   // a alone cannot reach etcd (its lease expires; peers still reach it)
  };
  Kind kind = Kind::kCrash;
  int64_t at_us = 0;
  int64_t duration_us = 0;
  bool restart = false;  // kCrash: a new incarnation later
  bool freeze = false;   // kRegistryDown: etcd paused, then expiring every lease it missed
};

// A crash that strikes when a join reaches a phase.
struct PhaseCrash {
  enum class Role { kJoiner, kProvider, kWriter };
  replication::JoinPhase phase = replication::JoinPhase::kImage;
  Role role = Role::kProvider;
  int64_t delay_us = 0;
  bool restart = false;
};

struct SimPlan {
  uint64_t seed = 0;
  replication::ReplicationMode mode = replication::ReplicationMode::kSync;
  int founders = 1;
  int joiners = 2;
  bool joins_together = false;
  uint64_t keys = 16;
  int single_writer_keys = 2;
  int writes_per_second = 200;
  int reads_per_second = 50;
  int64_t write_until_us = 20'000'000;
  int delete_one_in = 6;
  int expire_one_in = 10;
  int64_t max_skew_ms = 200;
  double max_drift = 0.001;
  uint64_t transient_error_one_in = 0;
  std::vector<Fault> faults;
  std::vector<PhaseCrash> phase_crashes;
  // Faults that cost a member its place in the group: stalls past the lease, partitions and
  // clogs past the unreachable timeout (DESIGN §6 "membership faults"; issue 8 item 8).
  bool membership_faults = false;
  // With membership_faults: a member at a time may also be cut off from the registry alone.
  bool registry_cuts = false;

  // Draws a plan from `seed`. Without `membership_faults`, stalls stay shorter than a lease and
  // partitions shorter than the unreachable timeout.
  static SimPlan FromSeed(uint64_t seed, bool membership_faults = false,
                          bool registry_cuts = false);
  std::string Describe() const;
};

struct SimResult {
  bool passed = false;
  std::vector<std::string> failures;
  uint64_t trace_hash = 0;
  uint64_t events_run = 0;
  uint64_t writes = 0;
  uint64_t acked = 0;
  uint64_t change_events = 0;
  int joins_completed = 0;
  int rejoins = 0;
  double simulated_s = 0;
};

// Per-member settings a scenario may force.
struct MemberTweaks {
  std::optional<int64_t> skew_ms = std::nullopt;
  std::string preferred_provider = {};
  std::optional<size_t> reconcile_batch = std::nullopt;
  int64_t worker_piece_us = 0;  // extra time the image worker takes per piece
};

class Simulation {
 public:
  Simulation(SimPlan plan, replication::ProtocolBreaks breaks, bool verbose);
  ~Simulation();

  SimResult Run();

  // Scenario building blocks (tests/sim/scenarios.cc drives these directly).
  SimMember* StartMember(const MemberTweaks& tweaks = {});
  void Crash(SimMember* member, bool restart);
  void Write(SimMember* member, const std::string& key, bool single_writer,
             std::function<void(bool acked)> done);
  EventLoop& loop() { return loop_; }
  SimNetwork& network() { return network_; }
  SimRegistry& registry() { return registry_; }
  Oracle& oracle() { return oracle_; }
  Random& random() { return random_; }
  std::vector<SimMember*> Alive();
  SimMember* ByName(std::string_view name);
  // Runs until every member settled (or `bound_us` passed); returns whether it settled.
  bool Settle(int64_t bound_us);
  // The final checks; the result.
  SimResult Finish(bool settled);
  // Runs until `done()` holds (checked every millisecond) or `bound_us` passes.
  bool RunUntil(const std::function<bool()>& done, int64_t bound_us);
  const std::string& region() const { return options_.region; }

 private:
  void OnJoinPhase(SimMember& member, replication::JoinPhase from, replication::JoinPhase to);
  void ScheduleWorkload();
  void RandomWrite();
  // Checks a read of `key` served by `member` (if any) now.
  void CheckRead(SimMember* member, const std::string& key);
  // How long a member the group dropped may go on serving reads without knowing it.
  int64_t ReadGuardBoundUs() const;
  void SingleWriter(int index, SimMember* member);
  void RandomRead();
  void Apply(const Fault& fault);
  SimMember* Pick(bool active_only);
  bool Quiet();
  std::map<uint64_t, SimMember*> MemberMap();

  SimPlan plan_;
  replication::ReplicatorOptions options_;
  EventLoop loop_;
  Random random_;
  SimNetwork network_;
  SimRegistry registry_;
  Oracle oracle_;
  World world_;
  std::vector<std::unique_ptr<SimMember>> members_;  // crashed ones stay, dead
  int next_name_ = 1;
  bool writing_ = true;
  std::vector<PhaseCrash> phase_crashes_;  // not yet fired
  int joins_completed_ = 0;
};

}  // namespace weft::sim
