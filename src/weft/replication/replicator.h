// RegionReplicator: one member's share of one region's replication (DESIGN.md §4, §5): write
// distribution with transmission/reception counters, the join protocol in both roles (the
// joiner N; the provider P and every other member M), the post-image store and the events of
// the consumer seam.
//
// It is sans-I/O: it never opens sockets, starts threads, reads the wall clock or draws
// randomness of its own. The transport calls it (lane and image traffic, channel state), the
// membership watch feeds it group views, the store reports local writes to it (as the store's
// ChangeObserver), and it talks back through the injected Outlet. The same object runs under
// the real TCP transport and under an in-memory network in tests.
//
// Roles and state, per DESIGN §5:
//  - recipients_: everyone else in the group; INITIALIZING ones get pre-images. Changing the set
//    drains in-flight writes (recipients.h).
//  - outbound lanes (PeerLink): one Outbox per lane per peer; `sent` counters.
//  - inbound lanes: `received` counters; records are applied in order, duplicates dropped.
//  - as provider: stabilizations waiting for StateMarkers and reception counters, then images.
//  - as joiner: the join attempt (provider, join_id, phase), the post-image store, the image
//    apply, incorporate, and the JoinFlush wait.
//
// Locking (outer to inner): inbound lane mutex -> mutex_ -> recipients' mutex -> outbox mutex;
// shard locks (base store -> post-image store) -> recipients' mutex -> outbox mutex. Writers
// (OnLocalChange) never take mutex_, so mutex_ may be held while recipients drain. The registry
// is never called with mutex_ held.
//
// Thread safety: every public method is safe from any thread.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"

#include "weft/base/clock.h"
#include "weft/base/mutex.h"
#include "weft/base/random.h"
#include "weft/base/status.h"
#include "weft/membership/registry.h"
#include "weft/replication/change_consumer.h"
#include "weft/replication/image_sender.h"
#include "weft/replication/messages.h"
#include "weft/replication/outbox.h"
#include "weft/replication/recent_changes.h"
#include "weft/replication/recipients.h"
#include "weft/storage/store.h"
#include "weft/storage/version.h"

namespace weft::replication {

enum class ReplicationMode { kSync, kAsync };
enum class RegionState { kStarting, kInitializing, kActive, kFailed };
enum class JoinPhase { kNone, kIntent, kStabilize, kImage, kIncorporate, kFlush, kFailed };

std::string_view ReplicationModeName(ReplicationMode mode);
std::string_view RegionStateName(RegionState state);
std::string_view JoinPhaseName(JoinPhase phase);
// The phase named as JoinPhaseName names it, or nullopt.
std::optional<JoinPhase> ParseJoinPhase(std::string_view name);

struct ReplicatorOptions {
  std::string region = "default";
  ReplicationMode mode = ReplicationMode::kSync;
  uint32_t lanes = 2;
  // Member name to prefer as provider; empty: a seeded random ACTIVE member.
  std::string preferred_provider;
  size_t lane_payload_bytes = 256 * 1024;  // per LaneItems frame (at least one record)
  // A recipient whose unacknowledged changes on one lane pass this is expelled from the group,
  // as is one that acknowledges nothing on a lane with changes waiting for ack_timeout_ms
  // (longer than a registry lease, so a crashed member leaves by its lease first).
  size_t outbox_bytes_max = size_t{1} << 30;
  int64_t ack_timeout_ms = 60'000;
  size_t image_chunk_bytes = 256 * 1024;
  uint64_t image_window_bytes = 8 << 20;  // credit the joiner keeps granted
  uint64_t image_rate_limit_bytes_per_s = 0;
  // Pace images by the acknowledgement latency of live changes (ImageSender::Pace). Off by
  // default because pacing needs time to pass (a ManualClock that never moves would stall it);
  // weftd turns it on.
  bool pace_images = false;
  int64_t image_pace_target_us = 4'000;
  size_t postimage_shard_count = 256;
  // RecentChanges window for repairing a crashed member's half-sent changes.
  size_t recent_changes_capacity = 1 << 18;
  int64_t recent_changes_window_ms = 30'000;
};

// The transport as the replicator sees it.
class Outlet {
 public:
  virtual ~Outlet() = default;
  // Records wait in OutboxFor(peer, lane): make sure a channel to that lane is open (dial if
  // needed) and pull from it. Called with locks held: must only post work, never call back.
  virtual void WakeLane(const membership::MemberInfo& peer, uint32_t lane) = 0;
  // Joiner: open an image connection to `provider`, send `request` (ImageRequest payload), and
  // report its traffic with join_id through OnImageChunk / OnImageDone / OnImageClosed.
  virtual void OpenImage(const membership::MemberInfo& provider, uint64_t join_id,
                         std::string request) = 0;
  // The member left the group: close its connections, stop dialing it.
  virtual void DropPeer(uint64_t member_id) = 0;
};

// One outbound channel's or inbound channel's counters, for INFO and tests.
struct ChannelStatus {
  uint64_t peer = 0;
  std::string peer_name;
  bool outbound = true;
  uint32_t lane = 0;
  bool connected = false;
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
  std::vector<membership::GroupMember> members;
  std::vector<ChannelStatus> channels;
};

// One peer's outbound lanes.
class PeerLink {
 public:
  PeerLink(membership::MemberInfo info, uint32_t lanes, size_t outbox_bytes_max);
  const membership::MemberInfo& info() const { return info_; }
  Outbox& lane(uint32_t index) { return *lanes_[index]; }
  uint32_t lane_count() const { return static_cast<uint32_t>(lanes_.size()); }
  std::atomic<bool>& connected(uint32_t index) { return connected_[index]; }

 private:
  const membership::MemberInfo info_;
  std::vector<std::unique_ptr<Outbox>> lanes_;
  std::unique_ptr<std::atomic<bool>[]> connected_;
};

class RegionReplicator : public storage::ChangeObserver {
 public:
  RegionReplicator(ReplicatorOptions options, storage::Store& store,
                   storage::VersionSource& versions, membership::Registry& registry,
                   membership::MemberInfo self, const Clock& clock, Random& random, Outlet& outlet,
                   ChangeConsumer* consumer);
  ~RegionReplicator() override;
  RegionReplicator(const RegionReplicator&) = delete;
  RegionReplicator& operator=(const RegionReplicator&) = delete;

  // Enters the region through the registry: bootstraps it (ACTIVE at once) or starts joining.
  // Installs itself as the store's ChangeObserver. Call once, after the transport can accept.
  Status Start();
  // The registry's group watch delivers here (also called by Start with the entry view).
  void OnGroupView(const membership::GroupView& view);
  // Periodic work (rates, provider retry after a failure). Call every ~100 ms.
  void OnTick();

  // --- clients ---
  // True once the region holds a complete copy (ACTIVE): clients may read and write it.
  bool serving() const { return state_.load(std::memory_order_acquire) == RegionState::kActive; }
  RegionState state() const { return state_.load(std::memory_order_acquire); }
  // Why the region is FAILED (empty otherwise).
  std::string failure_reason() const;
  // The registry no longer lists this member (its lease expired: a long stall or a partition
  // from the registry). The others have dropped it and its copy may miss their changes, so the
  // region stops serving (FAILED) rather than answer from a copy that silently diverges.
  void OnMembershipLost(std::string_view reason);
  ReplicationMode mode() const { return options_.mode; }
  const std::string& region() const { return options_.region; }

  // storage::ChangeObserver: a local write (shard lock held). Ships it to every recipient.
  void OnLocalChange(const storage::EntryView* before, const storage::EntryView& after) override;

  // --- outbound lanes (this member is the sender; the transport dialed) ---
  // The outbox of (peer, lane), or null if the peer is not known (left the group).
  Outbox* OutboxFor(uint64_t peer, uint32_t lane);
  // The peer's outbound lanes (shared: a connection may keep pulling while the member leaves).
  std::shared_ptr<PeerLink> PeerLinkFor(uint64_t peer);
  ChannelOpen ChannelOpenFor(uint64_t peer, uint32_t lane) const;
  void OnLaneResumed(uint64_t peer, uint32_t lane, uint64_t received_through);
  void OnAck(uint64_t peer, uint32_t lane, uint64_t received_through);
  // The channel broke: writes stop waiting on this peer (it is suspected) until it resumes.
  void OnLaneClosed(uint64_t peer, uint32_t lane);

  // --- inbound lanes (this member receives; the peer dialed) ---
  // Validates the opening and returns this lane's reception counter (for ChannelResume).
  StatusOr<uint64_t> OnChannelOpen(const ChannelOpen& open);
  // Applies a LaneItems payload in order; returns the reception counter to acknowledge. An
  // error (malformed record, a gap in the numbering) means: close this connection.
  StatusOr<uint64_t> OnLaneItems(uint64_t from, uint32_t lane, std::string_view payload);

  // --- image, provider side ---
  StatusOr<std::shared_ptr<ImageSender>> OnImageRequest(const ImageRequest& request);
  // --- image, joiner side ---
  // Applies a chunk; returns the credit (bytes) to grant back to the provider.
  StatusOr<uint64_t> OnImageChunk(uint64_t join_id, std::string_view payload);
  void OnImageDone(uint64_t join_id, const ImageDone& done);
  // The image connection closed (before ImageDone: the attempt fails and retries).
  void OnImageClosed(uint64_t join_id, const Status& status);

  // --- tests and diagnostics ---
  // While held, the join stops before entering `phase` until released (kImage: before asking
  // for the image; kIncorporate: after ImageDone, before merging; kFlush: before JoinComplete).
  void HoldPhase(JoinPhase phase, bool hold);
  ReplicationStatus GetStatus() const;
  uint64_t ReceivedCounter(uint64_t from, uint32_t lane) const;
  uint64_t SentCounter(uint64_t to, uint32_t lane);
  uint32_t LaneOf(std::string_view key) const;
  const membership::MemberInfo& self() const { return self_; }

 private:
  // The mutex serialises applying (one connection at a time per lane, also across a
  // reconnect); `received` is atomic so that a provider can read it while checking
  // stabilization without taking the mutex (which would invert the lock order).
  struct InboundLane {
    Mutex mutex;
    std::atomic<uint64_t> received{0};
  };

  // Where the joiner stands: one attempt per provider.
  struct JoinAttempt {
    uint64_t join_id = 0;
    uint64_t provider = 0;
    std::set<uint64_t> intent_pending;  // members that have not acknowledged JoinIntent
    std::set<std::pair<uint64_t, uint32_t>> flush_pending;  // (member, lane) owing JoinFlush
    uint64_t entries_estimate = 0;
    uint64_t entries = 0;
    uint64_t bytes = 0;
    int64_t image_started_us = 0;
    bool stabilized = false;
    int64_t image_finished_us = 0;
    std::string provider_name;
  };

  // A provider waiting for every member's cut to be applied here (Phase C).
  struct Stabilization {
    uint64_t joiner = 0;
    std::set<uint64_t> waiting;                         // members owing a marker/apply
    std::map<uint64_t, std::vector<uint64_t>> markers;  // member -> sent counters
    bool done = false;
  };

  // Sends `entry` (with `before` as pre-image where wanted) to every recipient; the caller is
  // between recipients_.Begin() and End() and holds the key's shard lock.
  void Ship(const RecipientSet& recipients, const storage::EntryView& entry,
            const storage::EntryView* before, const std::shared_ptr<WriteTicket>* ticket);
  // Recipients too far behind: a lane over outbox_bytes_max, or acknowledging nothing for
  // ack_timeout_ms. Returns (member, what is wrong).
  std::vector<std::pair<uint64_t, std::string>> FindLaggards()
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mutex_);
  // Once per tick: feeds the live changes' acknowledgement latency to the images provided here.
  void PaceImages() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mutex_);
  // A recipient too far behind: remove it from the group (registry).
  void ExpelLaggard(uint64_t member, std::string_view problem);
  // After an origin left: re-send our entries that still carry its versions (recent_changes.h).
  void RepairDeparted(uint64_t origin);

  // The region is FAILED for `reason` (logged once); it never serves again.
  void Fail(std::string_view reason) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mutex_);

  // Applying one received change, by region state.
  void ApplyChange(const ChangeRecord& change);
  void ApplyToBase(const ChangeRecord& change, bool emit_event);
  void ApplyToPostImage(const ChangeRecord& change, bool also_base);
  void Emit(std::string_view key, std::optional<std::string_view> old_value,
            const storage::EntryView& post);
  void ApplyControl(uint64_t from, uint32_t lane, const Record& record);

  // Joiner.
  void BeginJoinAttempt() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mutex_);
  void FailJoinAttempt(std::string_view reason) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mutex_);
  void EnterPhase(JoinPhase phase) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mutex_);
  void MaybeRequestImage() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mutex_);
  void MaybeIncorporate();
  void Incorporate();
  void SendJoinComplete() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mutex_);
  void ReleasePostImage();
  void MaybeFinishFlush() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mutex_);
  void BarrierInboundLanes();

  // Provider.
  void CheckStabilizations() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mutex_);

  // Group and recipients.
  // The link to a member, created if new. `listed_since` is the registry revision from which
  // every view must list it: a view at or after it that does not has seen it leave.
  std::shared_ptr<PeerLink> LinkFor(const membership::MemberInfo& info, int64_t listed_since)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mutex_);
  void AdoptView(const membership::GroupView& view) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mutex_);
  void SetRecipient(uint64_t member, bool present, bool wants_pre_image)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mutex_);
  void RemoveMember(uint64_t member) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mutex_);
  void SendControl(uint64_t to, RecordKind kind, const ControlRecord& control, uint32_t lane = 0)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mutex_);
  std::string NameOf(uint64_t member) const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mutex_);
  InboundLane& Inbound(uint64_t from, uint32_t lane);

  const ReplicatorOptions options_;
  storage::Store& store_;
  storage::VersionSource& versions_;
  membership::Registry& registry_;
  const membership::MemberInfo self_;
  const Clock& clock_;
  Random& random_;
  Outlet& outlet_;
  ChangeConsumer* const consumer_;

  std::atomic<RegionState> state_{RegionState::kStarting};
  // How received changes are applied: see ApplyChange.
  enum class ApplyMode { kBase, kPostImage, kBoth };
  std::atomic<ApplyMode> apply_mode_{ApplyMode::kBase};

  Recipients recipients_;
  // The post-image store exists from the start of a join until every JoinFlush is in.
  std::unique_ptr<storage::Store> postimage_;
  std::atomic<uint64_t> postimage_changes_{0};

  mutable Mutex inbound_mutex_;
  std::map<std::pair<uint64_t, uint32_t>, std::unique_ptr<InboundLane>> inbound_
      ABSL_GUARDED_BY(inbound_mutex_);

  mutable Mutex mutex_;
  membership::GroupView view_ ABSL_GUARDED_BY(mutex_);
  std::map<uint64_t, std::shared_ptr<PeerLink>> links_ ABSL_GUARDED_BY(mutex_);
  std::map<uint64_t, int64_t> listed_since_ ABSL_GUARDED_BY(mutex_);
  int64_t entered_revision_ ABSL_GUARDED_BY(mutex_) = 0;
  std::map<uint64_t, bool> recipient_pre_ ABSL_GUARDED_BY(mutex_);  // member -> wants pre-image
  JoinPhase phase_ ABSL_GUARDED_BY(mutex_) = JoinPhase::kNone;
  std::optional<JoinAttempt> join_ ABSL_GUARDED_BY(mutex_);
  std::optional<JoinAttempt> last_join_ ABSL_GUARDED_BY(mutex_);  // for status after the join
  bool self_listed_ ABSL_GUARDED_BY(mutex_) = false;
  std::string failure_reason_ ABSL_GUARDED_BY(mutex_);
  std::set<uint64_t> failed_providers_ ABSL_GUARDED_BY(mutex_);
  int join_attempts_ ABSL_GUARDED_BY(mutex_) = 0;
  int64_t join_started_us_ ABSL_GUARDED_BY(mutex_) = 0;
  int64_t join_finished_us_ ABSL_GUARDED_BY(mutex_) = 0;
  int64_t phase_started_us_ ABSL_GUARDED_BY(mutex_) = 0;
  bool image_done_ ABSL_GUARDED_BY(mutex_) = false;
  std::set<JoinPhase> held_phases_ ABSL_GUARDED_BY(mutex_);
  // The held phase the join is waiting in front of (kNone: not waiting at a hold).
  JoinPhase held_at_ ABSL_GUARDED_BY(mutex_) = JoinPhase::kNone;
  std::map<uint64_t, Stabilization> stabilizations_ ABSL_GUARDED_BY(mutex_);  // join_id ->
  std::map<uint64_t, std::map<uint64_t, std::vector<uint64_t>>> early_markers_
      ABSL_GUARDED_BY(mutex_);
  std::set<uint64_t> stabilized_joins_ ABSL_GUARDED_BY(mutex_);   // join_ids we may image
  std::map<uint64_t, int> purge_pauses_ ABSL_GUARDED_BY(mutex_);  // joiner -> pauses held
  // Per (recipient, lane) with changes waiting: the acked counter last seen and since when.
  struct AckProgress {
    uint64_t acked = 0;
    int64_t since_us = 0;
  };
  std::map<std::pair<uint64_t, uint32_t>, AckProgress> ack_progress_ ABSL_GUARDED_BY(mutex_);
  // Images this member provides, paced every tick (the transport owns them).
  std::vector<std::weak_ptr<ImageSender>> image_senders_ ABSL_GUARDED_BY(mutex_);
  // Whether outboxes time acknowledgements: only while a paced image is provided here.
  std::atomic<bool> timing_acks_{false};
  std::atomic<bool> stabilizing_{false};
  // Set when the last JoinFlush is in; OnTick frees the post-image store (it needs barriers that
  // cannot run under the locks held where the marker arrives).
  bool release_postimage_ ABSL_GUARDED_BY(mutex_) = false;
  // Departed origins whose changes OnTick repairs (once this member is ACTIVE).
  std::vector<uint64_t> repair_pending_ ABSL_GUARDED_BY(mutex_);
  RecentChanges recent_;
  std::atomic<uint64_t> repaired_keys_{0};
};

}  // namespace weft::replication
