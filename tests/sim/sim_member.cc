#include "tests/sim/sim_member.h"

#include <algorithm>
#include <utility>

#include "tests/sim/oracle.h"
#include <fmt/format.h>

namespace weft::sim {

SimMember::SimMember(World& world, std::string name, uint64_t id, uint64_t seed, int64_t skew_ms,
                     double drift, const replication::ReplicatorOptions& options,
                     int64_t worker_piece_us)
    : world_(world),
      name_(std::move(name)),
      id_(id),
      clock_(world.loop, skew_ms, drift),
      random_(seed),
      store_(storage::StoreOptions{.shard_count = 16}, clock_),
      versions_(clock_, id),
      worker_piece_us_(worker_piece_us) {
  membership::MemberInfo self;
  self.member_id = id;
  self.name = name_;
  self.peer_address = "sim:" + name_;
  self.client_address = "sim:" + name_;
  replicator_ = std::make_unique<replication::RegionReplicator>(options, store_, versions_, self,
                                                                clock_, random_, *this, this, this);
  router_.Add(replicator_.get());
}

SimMember::~SimMember() {
  watch_.reset();
  replicator_.reset();
}

void SimMember::Schedule(int64_t delay_us, std::string_view label, std::function<void()> fn) {
  world_.loop.At(delay_us, id_, label, std::move(fn));
}

void SimMember::Start() {
  membership::MemberInfo self = replicator_->self();
  world_.registry.AddMember(self, id_, [this](uint64_t registration) {
    Schedule(0, "member.lease-lost", [this, registration] {
      replicator_->OnMembershipLost("the registry lease of this member expired", registration);
    });
  });
  world_.network.Attach(id_, this);
  replicator_->Start();
  watch_ =
      world_.registry.Watch(id_, replicator_->region(), [this](const membership::GroupView& view) {
        Schedule(static_cast<int64_t>(random_.Uniform(100)), "member.view",
                 [this, view] { replicator_->OnGroupView(view); });
      });
}

void SimMember::Crash() {
  alive_ = false;
  world_.loop.Cancel(id_);
  world_.network.Detach(id_);
  world_.registry.RemoveMember(id_);
  world_.oracle.OnCrash(*this);
  watch_.reset();
}

void SimMember::Stall(int64_t duration_us) {
  world_.loop.Stall(id_, world_.loop.now_us() + duration_us);
  world_.registry.StallKeepalives(id_, duration_us);
}

void SimMember::After(int64_t delay_us, std::function<void()> fn) {
  // "Soon" is not "next": whatever else is ready may run first, as on an event loop.
  Schedule(delay_us + static_cast<int64_t>(random_.Uniform(50)), "host.after", std::move(fn));
}

void SimMember::Post(std::function<void()> fn) {
  Schedule(static_cast<int64_t>(random_.Uniform(50)), "host.post", std::move(fn));
}

void SimMember::Open(const membership::MemberInfo& peer, replication::ChannelKind kind,
                     uint16_t index, std::weak_ptr<replication::ChannelSession> session) {
  world_.network.Dial(id_, peer.member_id, kind, std::move(session));
}

void SimMember::Offload(std::function<void()> work, std::function<void()> done) {
  // One piece at a time, in order; each takes a little while; `done` comes back in order too.
  const int64_t now_us = world_.loop.now_us();
  const int64_t start_us =
      std::max(now_us, worker_free_us_) + static_cast<int64_t>(random_.Uniform(200));
  worker_free_us_ = start_us + 20 + worker_piece_us_ + static_cast<int64_t>(random_.Uniform(100));
  const int64_t done_us =
      std::max(worker_done_us_, worker_free_us_) + static_cast<int64_t>(random_.Uniform(50));
  worker_done_us_ = done_us;
  auto shared_done = std::make_shared<std::function<void()>>(std::move(done));
  Schedule(start_us - now_us, "worker.run", [this, work = std::move(work), shared_done, done_us] {
    work();
    Schedule(done_us - world_.loop.now_us(), "worker.done", [shared_done] { (*shared_done)(); });
  });
}

void SimMember::Registry(replication::RegistryRequest request,
                         std::function<void(replication::RegistryReply)> done) {
  world_.registry.Request(
      id_, std::move(request), [this, done = std::move(done)](replication::RegistryReply reply) {
        Schedule(0, "member.registry-reply", [done, reply = std::move(reply)] { done(reply); });
      });
}

std::shared_ptr<replication::ChannelSession> SimMember::Accept(uint64_t from,
                                                               replication::ChannelKind kind,
                                                               replication::Channel& channel) {
  return router_.Accept(from, kind, channel);
}

void SimMember::OnStabilized(uint64_t joiner, uint64_t join_id,
                             const std::map<uint64_t, replication::Marker>& markers) {
  world_.oracle.OnStabilized(*this, joiner, join_id, markers, {});
}

void SimMember::OnRegionState(replication::RegionState state) {
  if (state == replication::RegionState::kActive) {
    world_.oracle.OnActive(*this);
  }
}

void SimMember::OnJoinPhase(replication::JoinPhase from, replication::JoinPhase to) {
  if (world_.loop.verbose()) {
    fmt::print(stderr, "{:10.6f} PHASE {} {} -> {}\n",
               static_cast<double>(world_.loop.now_us()) / 1e6, name_,
               replication::JoinPhaseName(from), replication::JoinPhaseName(to));
  }
  if (to == replication::JoinPhase::kImage) {
    world_.oracle.OnImageStart(*this);
  }
  if (world_.on_phase) {
    world_.on_phase(*this, from, to);
  }
}

void SimMember::OnChangeArriving(uint64_t from, const replication::ChangeRecord& change) {
  world_.oracle.OnChangeArriving(*this, from, change);
}

void SimMember::OnChangeApplied(uint64_t from, const replication::ChangeRecord& change) {
  world_.oracle.OnChangeApplied(*this, from, change);
}

void SimMember::OnRejoin() {
  if (world_.loop.verbose()) {
    fmt::print(stderr, "{:10.6f} REJOIN {}\n", static_cast<double>(world_.loop.now_us()) / 1e6,
               name_);
  }
  // A member rejoins only once the group has gone on without it (its lease ran out, it was
  // expelled, it learned it is not in the region): giving up while still in the group strands
  // its clients for a whole new join.
  const membership::GroupView group = world_.registry.Group(replicator_->region());
  const bool still_in = group.Find(id_) != nullptr;
  world_.oracle.OnRejoin(*this, still_in, replicator_->rejoin_reason(), world_.loop.now_us());
}

void SimMember::OnChange(const replication::ChangeEvent& event) {
  world_.oracle.OnEvent(*this, event);
}

}  // namespace weft::sim
