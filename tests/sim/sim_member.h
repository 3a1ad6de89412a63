// SimMember: one weftd process in the simulator — a store, a RegionReplicator and its
// ChannelRouter, exactly as server/cluster.cc wires them — with the simulator as its Host:
// timers and posts are events of this member, channels are SimNetwork connections, the image
// worker is a FIFO of events, registry requests go to the SimRegistry.
//
// A member incarnation is identified by its member id, which is also the owner of its events:
// a crash cancels them all and drops the member (a restart is a new incarnation: new id, empty
// store). A stall delays every event of the member for a while (a stopped process).
//
// Thread safety: none; the simulator's one thread.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>

#include "weft/base/random.h"
#include "weft/replication/channel_router.h"
#include "weft/replication/replicator.h"
#include "weft/storage/store.h"
#include "weft/storage/version.h"

#include "tests/sim/event_loop.h"
#include "tests/sim/sim_network.h"
#include "tests/sim/sim_registry.h"

namespace weft::sim {

class Oracle;
class SimMember;

// What a member needs of the simulated world.
struct World {
  EventLoop& loop;
  SimNetwork& network;
  SimRegistry& registry;
  Oracle& oracle;
  std::function<void(SimMember&, replication::JoinPhase, replication::JoinPhase)> on_phase;
};

class SimMember final : public NetworkNode,
                        public replication::Host,
                        public replication::ReplicatorObserver,
                        public replication::ChangeConsumer {
 public:
  // `worker_piece_us`: extra time each piece of image work takes (a slow worker).
  SimMember(World& world, std::string name, uint64_t id, uint64_t seed, int64_t skew_ms,
            double drift, const replication::ReplicatorOptions& options,
            int64_t worker_piece_us = 0);
  ~SimMember() override;
  SimMember(const SimMember&) = delete;
  SimMember& operator=(const SimMember&) = delete;

  // Registers with the registry, attaches to the network, enters the region.
  void Start();
  // kill -9: every event of this member is dropped, its connections reset; its lease expires
  // in time. The object may be destroyed after.
  void Crash();
  // A stopped process for `duration_us`: its events run late, its keepalives stop.
  void Stall(int64_t duration_us);

  uint64_t id() const { return id_; }
  const std::string& name() const { return name_; }
  bool alive() const { return alive_; }
  storage::Store& store() { return store_; }
  storage::VersionSource& versions() { return versions_; }
  replication::RegionReplicator& replicator() { return *replicator_; }
  const Clock& clock() const { return clock_; }
  // Schedules `fn` as an event of this member.
  void Schedule(int64_t delay_us, std::string_view label, std::function<void()> fn);

  // replication::Host.
  void After(int64_t delay_us, std::function<void()> fn) override;
  void Post(std::function<void()> fn) override;
  void Open(const membership::MemberInfo& peer, replication::ChannelKind kind, uint16_t index,
            std::weak_ptr<replication::ChannelSession> session) override;
  void Offload(std::function<void()> work, std::function<void()> done) override;
  void Registry(replication::RegistryRequest request,
                std::function<void(replication::RegistryReply)> done) override;

  // NetworkNode.
  std::shared_ptr<replication::ChannelSession> Accept(uint64_t from, replication::ChannelKind kind,
                                                      replication::Channel& channel) override;
  uint64_t owner() const override { return id_; }

  // replication::ReplicatorObserver.
  void OnStabilized(uint64_t joiner, uint64_t join_id,
                    const std::map<uint64_t, replication::Marker>& markers) override;
  void OnRegionState(replication::RegionState state) override;
  void OnJoinPhase(replication::JoinPhase from, replication::JoinPhase to) override;
  void OnChangeArriving(uint64_t from, const replication::ChangeRecord& change) override;
  void OnChangeApplied(uint64_t from, const replication::ChangeRecord& change) override;
  void OnRejoin() override;

  // replication::ChangeConsumer.
  void OnChange(const replication::ChangeEvent& event) override;

 private:
  World& world_;
  const std::string name_;
  const uint64_t id_;
  SimClock clock_;
  Random random_;
  storage::Store store_;
  storage::VersionSource versions_;
  replication::ChannelRouter router_;
  std::unique_ptr<replication::RegionReplicator> replicator_;
  std::unique_ptr<membership::WatchHandle> watch_;
  bool alive_ = true;
  const int64_t worker_piece_us_;
  int64_t worker_free_us_ = 0;
  int64_t worker_done_us_ = 0;
};

}  // namespace weft::sim
