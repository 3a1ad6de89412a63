// RegionReplicator: one member's share of one region's replication (DESIGN.md §4, §5), composed
// of role objects that each own one part of the protocol:
//
//   WritePath    local writes: recipient snapshots, enqueue with pre-images, tickets, the drain
//   Peers        the group's other members: outbound lanes (LaneSender), inbound lane state
//   Applier      received changes: base store, post-image store (event index), events
//   JoinService  every member's and the provider's side of a join; ImageServe for the image
//   JoinDriver   the joining member's side; ImageFetch for the image
//
// and itself: entering the region through the registry, adopting group views (who joins, who
// left), departure repair, expelling recipients too far behind, routing lane records to the
// roles, periodic work, and a published status.
//
// It is sans-I/O: it never opens sockets, starts threads, reads the wall clock or draws
// randomness of its own. The Host (host.h) carries out what it asks for and reports back; the
// same object runs under server/cluster.cc and under the simulator (tests/sim).
//
// Thread safety: the protocol thread only, except where a method says otherwise: write_path()
// (the store's ChangeObserver, used by writers on any thread), state(), serving(),
// failure_reason() and GetStatus() (a snapshot published by the protocol thread).
#pragma once

#include <atomic>
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"

#include "weft/base/clock.h"
#include "weft/base/mutex.h"
#include "weft/base/random.h"
#include "weft/membership/registry.h"
#include "weft/replication/applier.h"
#include "weft/replication/change_consumer.h"
#include "weft/replication/host.h"
#include "weft/replication/image_serve.h"
#include "weft/replication/join_driver.h"
#include "weft/replication/join_phase.h"
#include "weft/replication/join_service.h"
#include "weft/replication/lane_receiver.h"
#include "weft/replication/messages.h"
#include "weft/replication/peers.h"
#include "weft/replication/recent_changes.h"
#include "weft/replication/region_env.h"
#include "weft/replication/write_path.h"
#include "weft/storage/store.h"
#include "weft/storage/version.h"

namespace weft::replication {

enum class RegionState { kStarting, kInitializing, kActive, kFailed };
std::string_view RegionStateName(RegionState state);

// What the simulator's oracles are told as it happens (production passes none).
class ReplicatorObserver : public JoinServiceObserver {
 public:
  // The region's state changed (to ACTIVE: it holds a complete copy from now on).
  virtual void OnRegionState(RegionState state) = 0;
  virtual void OnJoinPhase(JoinPhase from, JoinPhase to) = 0;
  // A change record from `from` reached this member, before and after it was applied (the
  // events it made, if any, came in between).
  virtual void OnChangeArriving(uint64_t from, const ChangeRecord& change) = 0;
  virtual void OnChangeApplied(uint64_t from, const ChangeRecord& change) = 0;
  // The member was dropped from the group and rejoins it: its events start a new stream.
  virtual void OnRejoin() = 0;
};

// One outbound or inbound channel's counters, for INFO and tests.
struct ChannelStatus {
  uint64_t peer = 0;
  std::string peer_name;
  bool outbound = true;
  uint32_t lane = 0;
  bool connected = false;
  uint64_t stream = 0;
  uint64_t sent = 0;      // outbound
  uint64_t acked = 0;     // outbound
  uint64_t received = 0;  // inbound
};

struct ReplicationStatus {
  std::string region;
  RegionState state = RegionState::kStarting;
  ReplicationMode mode = ReplicationMode::kSync;
  JoinPhase phase = JoinPhase::kNone;
  JoinPhase held_at = JoinPhase::kNone;  // waiting at a HoldPhase in front of this phase
  std::string provider;
  std::string waiting;  // why the join waits to retry
  std::string failure;  // why the region is FAILED
  uint64_t image_entries = 0;
  uint64_t image_bytes = 0;
  uint64_t image_entries_estimate = 0;
  uint64_t rate_bytes_per_s = 0;
  int64_t eta_ms = 0;
  uint64_t postimage_keys = 0;
  uint64_t postimage_changes = 0;  // live changes received during the join
  uint64_t repaired_keys = 0;      // re-sent after members crashed
  int64_t join_ms = 0;             // duration of the current or last join
  int join_attempts = 0;
  int rejoins = 0;  // times this member lost its place in the group and rejoined in place
  std::vector<membership::GroupMember> members;
  std::vector<ChannelStatus> channels;
};

class RegionReplicator final : public RecordSink, public JoinDriverHost {
 public:
  RegionReplicator(ReplicatorOptions options, storage::Store& store,
                   storage::VersionSource& versions, membership::MemberInfo self,
                   const Clock& clock, Random& random, Host& host, ChangeConsumer* consumer,
                   ReplicatorObserver* observer = nullptr);
  ~RegionReplicator() override;
  RegionReplicator(const RegionReplicator&) = delete;
  RegionReplicator& operator=(const RegionReplicator&) = delete;

  // Installs the write path as the store's observer, asks the registry to enter the region
  // (bootstrap it, or join it), and starts the periodic work.
  void Start();
  // Stops lanes and periodic work (the member is shutting down).
  void Stop();
  // The registry's watch delivers here.
  void OnGroupView(const membership::GroupView& view);
  // The registry says registration `registration` of this member lost its lease: the member
  // rejoins in place. News about a registration a rejoin already replaced is stale and ignored.
  void OnMembershipLost(std::string_view reason, uint64_t registration);

  // Channels from peers, routed here by their first frame. Returns the session for the rest of
  // the channel, or null with *refusal set (the caller answers and closes).
  std::shared_ptr<ChannelSession> AcceptLane(uint64_t peer, const ChannelOpen& open,
                                             Channel& channel, Status* refusal);
  std::shared_ptr<ChannelSession> AcceptImage(uint64_t peer, const ImageRequest& request,
                                              Channel& channel, Status* refusal);

  // --- any thread ---
  // Test hook: while held, the join stops in front of `phase` (image, incorporate, flush).
  // Posted to the protocol thread.
  void HoldPhase(JoinPhase phase, bool hold);
  WritePath& write_path() { return write_path_; }
  RegionState state() const { return state_.load(std::memory_order_acquire); }
  // Holds a complete copy (ACTIVE).
  bool complete() const { return state() == RegionState::kActive; }
  // May serve clients: complete, and — in a sync region — in touch with every ACTIVE member of
  // the group within the last silence_timeout_ms (the read guard, docs/design/replication.md):
  // a member cut off from the others stops serving before they can expel it and acknowledge
  // writes without it.
  bool serving() const;
  // Why a complete member does not serve (empty when it serves).
  std::string not_serving_reason() const;
  std::string failure_reason() const;
  ReplicationStatus GetStatus() const;
  const std::string& region() const { return options_.region; }
  ReplicationMode mode() const { return options_.mode; }
  uint32_t LaneOf(std::string_view key) const { return write_path_.LaneOf(key); }
  const membership::MemberInfo& self() const { return self_; }

  // --- the protocol thread: for the simulator's oracles and tests ---
  const Peers& peers() const { return roles_->peers; }
  const Applier& applier() const { return roles_->applier; }
  const JoinDriver& join() const { return roles_->driver; }
  const JoinService& service() const { return roles_->service; }
  // How often this member was dropped from the group and rejoined it in place.
  int rejoins() const { return rejoins_; }
  // Why the member is rejoining (empty once it entered the region again).
  const std::string& rejoin_reason() const { return rejoin_reason_; }
  size_t image_serves() const { return serves_.size(); }
  uint64_t ReceivedCounter(uint64_t from, uint32_t lane) const;
  uint64_t SentCounter(uint64_t to, uint32_t lane) const;
  // Refreshes the status GetStatus returns (also done every tick and at every state change).
  void PublishStatus();

  // JoinDriverHost.
  const membership::GroupView& view() const override { return view_; }
  void OnBecameActive(const membership::GroupView& view) override;
  void OnJoinAborted(std::string reason) override;
  void OnJoinRefused(std::string reason) override;
  void OnJoinPhase(JoinPhase from, JoinPhase to) override;

  // RecordSink.
  void ApplyRecord(uint64_t from, uint32_t lane, const Record& record) override;

 private:
  // Asks the registry to enter the region after `delay_us`; OnEntered hears the answer.
  void EnterRegion(int64_t delay_us);
  void OnEntered(const RegistryReply& reply);
  void AdoptView(const membership::GroupView& view);
  // Whether view_ is at `revision` or newer; if not, reads the group afresh (one read at a
  // time) and adopts what it says. JoinService::CheckStabilizations asks.
  bool ViewAtLeast(int64_t revision);
  // `member` left as of `revision`; its entries up to `entries_through` are over (Peers::Remove).
  void RemoveMember(uint64_t member, int64_t revision, int64_t entries_through);
  void SetState(RegionState state);
  void Fail(std::string_view reason);
  // Removes this member from the region's group (retried until the registry answers), so that
  // nobody waits for a member that FAILED.
  void LeaveGroup();
  // This member is no longer in the group (its lease ended, it was expelled, or a view no
  // longer lists it): it stops serving, abandons what it cannot confirm, and enters the region
  // again with fresh roles — registering again first if needed — as a joiner (its copy is
  // replaced by an image), or re-forming the group if it holds a copy and nobody is ACTIVE.
  void Rejoin(std::string_view reason);
  void Reregister();
  // Clears the copy, then begins the join of entry_to_join_, once every write that began before
  // the last rejoin has ended.
  void ClearCopyThenJoin();
  // Serves from now on (a fresh read guard, state ACTIVE), then repairs the departures it
  // deferred while it was not ACTIVE.
  void TurnActive();
  // A member vanished from the group: drop its holding (registry.h) before the group goes on
  // without it, then remove it.
  void DropDeparted(uint64_t member, int64_t revision);
  // DropDeparted for the entry made at `entered_at` (GroupMember::entered_at): a retry must
  // not drop a later entry of the same member.
  void DropDepartedEntry(uint64_t member, int64_t revision, int64_t entered_at);
  // Removes `member`'s peer if it is an entry older than `entered_at` (it entered again).
  void ForgetEarlierEntry(uint64_t member, int64_t entered_at);
  void OnDrained(uint64_t epoch);
  void Tick();
  void PaceImages();
  // Recipients too far behind: a lane over outbox_bytes_max, or acknowledging nothing for
  // ack_timeout_ms; each is expelled from the group through the registry.
  void ExpelLaggards();
  // After an origin left: re-send our entries that still carry its versions, then RepairDone.
  void RepairDeparted(uint64_t origin);
  // The RepairDone claim for `origin`: this member holds none of its entries that entered at
  // or before it (RecordKind::kRepairDone). Bounded by this member's view (an entry listed
  // later may still reach it), its live peer of that origin and its deferred repairs.
  int64_t RepairClaim(uint64_t origin) const;
  // A joiner asks for the claim (RecordKind::kRepairQuery).
  void OnRepairQuery(uint64_t joiner, const ControlRecord& query);
  std::string NameOf(uint64_t member) const;

  const ReplicatorOptions options_;
  const membership::MemberInfo self_;
  storage::Store& store_;
  storage::VersionSource& versions_;
  const Clock& clock_;
  Host& host_;
  ReplicatorObserver* const observer_;
  const RegionEnv env_;
  std::atomic<RegionState> state_{RegionState::kStarting};
  // The read guard: serving until this monotonic time (refreshed every tick from the peers'
  // last answers). INT64_MAX when no ACTIVE peer is to be heard from, or in an async region.
  std::atomic<int64_t> in_touch_until_us_{INT64_MAX};
  // A gap between ticks longer than this is a pause of this member (SIGSTOP, a long stall).
  int64_t PauseThresholdUs() const;
  // Refreshes in_touch_until_us_.
  void RefreshReadGuard();

  ChangeConsumer* const consumer_;
  RecentChanges recent_;
  WritePath write_path_;
  // The roles, replaced whole when this member rejoins the group in place.
  struct Roles {
    explicit Roles(RegionReplicator& replicator);
    Peers peers;
    Applier applier;
    JoinService service;
    JoinDriver driver;
  };
  PeerHistory peer_history_;  // for every Roles' Peers (peers.h: lane streams, ended entries)
  std::unique_ptr<Roles> roles_;
  std::vector<std::shared_ptr<ImageServe>> serves_;
  bool rejoining_ = false;
  uint64_t rejoin_epoch_ = 0;
  int64_t last_tick_us_ = 0;
  // After a pause of this member: peers heard before this time do not count (RefreshReadGuard).
  int64_t heard_after_us_ = 0;            // the write epoch the last rejoin began
  std::optional<int64_t> entry_to_join_;  // entered as a joiner: the join waits to begin
  bool join_own_copy_ = false;            // ... keeping this member's copy (it still holds)
  // The registration a Reregister last answered with (0: the first one, never asked).
  uint64_t registration_ = 0;
  std::string rejoin_reason_;
  int rejoins_ = 0;
  uint64_t generation_ = 0;      // bumped by every rejoin: answers to older requests are ignored
  std::set<uint64_t> dropping_;  // departed members whose holding is being dropped

  membership::GroupView view_;
  bool view_read_pending_ = false;  // ViewAtLeast's read of the group is under way
  bool self_listed_ = false;
  bool own_purge_paused_ = false;
  bool stopped_ = false;
  std::string failure_;
  // Departed (origin, entry), repaired once ACTIVE.
  std::vector<std::pair<uint64_t, int64_t>> repairs_deferred_;
  uint64_t repaired_keys_ = 0;
  // Per (recipient, lane) with changes waiting: the acked counter last seen and since when.
  struct AckProgress {
    uint64_t acked = 0;
    int64_t since_us = 0;
  };
  std::map<std::pair<uint64_t, uint32_t>, AckProgress> ack_progress_;
  std::set<uint64_t> expelling_;

  mutable Mutex status_mutex_;
  ReplicationStatus published_ ABSL_GUARDED_BY(status_mutex_);
};

}  // namespace weft::replication
