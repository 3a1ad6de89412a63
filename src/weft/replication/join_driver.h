// JoinDriver: the joining member N's side of the join (DESIGN.md §5), one attempt at a time.
//
//   intent     JoinIntent{join_id, provider P, members} to every ACTIVE member; each answers
//              IntentAck (or a refusal: the attempt fails and is retried).
//   stabilize  waiting for P's Stabilized (every member's cut is applied at P).
//   image      an ImageFetch pulls the image from P into the base store (no events).
//   incorporate  the Applier reconciles the post-image store into the base store in batches;
//              then the registry marks N ACTIVE and N serves clients.
//   flush      JoinComplete to every ACTIVE member; N waits for a JoinFlush on every lane of each
//              (and, for a member that departed during the join, for every survivor's
//              RepairDone: its repair may carry a change N must report). Then a last reconcile,
//              the post-image store stops being the event index (a new write epoch), JoinReleased
//              to every member, and the store is freed once the epoch drained.
//
// A failed attempt (a refusal, P leaving, the image channel failing, a phase past its deadline)
// is retried after a backoff with a new join_id, preferring other providers for a while; the
// post-image store is kept and the partial image is cleared behind any chunk still being
// applied. N waits in `retry` while no ACTIVE member exists. Nothing is blocking: the registry,
// the drain and the worker answer as events.
//
// A member rejoining in place that still holds the region (registry.h, holders) begins with its
// own copy in the base store. It keeps copy and holding until it is about to take an image: then
// it gives the holding up (GiveUpHolding), clears the copy, and fetches. Until then a failed
// attempt clears nothing, and if no ACTIVE member is left to join from (the one it entered
// beside had crashed), it re-forms the group from its copy and the changes it received since
// (Reform): otherwise a crashed member still listed ACTIVE when it came back would make it drop
// the region's last copy (simulator seeds 989, 178296966).
//
// Test hooks: HoldPhase(image|incorporate|flush) stops the join in front of that phase.
//
// Thread safety: the protocol thread only.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <tuple>
#include <utility>
#include <vector>

#include "weft/membership/registry.h"
#include "weft/replication/applier.h"
#include "weft/replication/image_fetch.h"
#include "weft/replication/join_phase.h"
#include "weft/replication/peers.h"
#include "weft/replication/recent_changes.h"
#include "weft/replication/region_env.h"
#include "weft/storage/store.h"

namespace weft::replication {

// The replicator, as the join driver needs it.
class JoinDriverHost {
 public:
  virtual ~JoinDriverHost() = default;
  virtual const membership::GroupView& view() const = 0;
  // The registry made this member ACTIVE; `view` is the group as of that change.
  virtual void OnBecameActive(const membership::GroupView& view) = 0;
  // The join cannot go on: this member is no longer in the group.
  virtual void OnJoinAborted(std::string reason) = 0;
  // The join can never succeed: every ACTIVE member refuses this member's handshakes (a wrong
  // cluster secret). Rejoining would only repeat it, and the others' sync writes would wait
  // for this member each time: it gives up and leaves.
  virtual void OnJoinRefused(std::string reason) = 0;
  virtual void OnJoinPhase(JoinPhase from, JoinPhase to) = 0;
};

// Progress of the current (or last) attempt, for INFO and the demo.
struct JoinProgress {
  JoinPhase phase = JoinPhase::kNone;
  JoinPhase held_at = JoinPhase::kNone;
  std::string provider;
  uint64_t join_id = 0;  // of the current or last attempt
  std::string waiting;   // why the join waits in `retry`
  uint64_t image_entries = 0;
  uint64_t image_bytes = 0;
  uint64_t image_entries_estimate = 0;
  int64_t image_started_us = 0;
  int64_t image_finished_us = 0;
  int64_t join_started_us = 0;
  int64_t join_finished_us = 0;
  int attempts = 0;
};

class JoinDriver final : public ImageFetchListener {
 public:
  JoinDriver(const RegionEnv& env, JoinDriverHost& host, Peers& peers, Applier& applier,
             WritePath& write_path, storage::Store& store, storage::VersionSource& versions,
             RecentChanges& recent);
  ~JoinDriver() override;

  // Starts the join: the region has been entered (INITIALIZING) at `entered_revision`.
  // `own_copy`: the base store holds this member's copy from before it rejoined, and the
  // registry still counts it a holder.
  void Begin(int64_t entered_revision, bool own_copy);

  void OnIntentAck(uint64_t from, const ControlRecord& ack);
  void OnStabilized(uint64_t from, const ControlRecord& stabilized);
  void OnJoinFlush(uint64_t from, uint32_t lane, const ControlRecord& flush);
  // `from` has repaired `origin` on `lane` and holds none of its entries through `through`.
  void OnRepairDone(uint64_t from, uint32_t lane, uint64_t origin, int64_t through);
  // `member`'s entry `entry` (its entered_at) left the group in the view of `revision`.
  void OnMemberLeft(uint64_t member, int64_t revision, int64_t entry);
  void OnGroupView(const membership::GroupView& view);
  void OnTick();
  // The member was dropped: the join ends here.
  void Abort();

  void HoldPhase(JoinPhase phase, bool hold);
  JoinPhase phase() const { return phase_; }
  // Whether a join is under way (between Begin and release).
  bool joining() const { return phase_ != JoinPhase::kNone && phase_ != JoinPhase::kFailed; }
  JoinProgress progress() const;
  size_t flush_pending() const { return flush_pending_.size(); }
  // The members whose JoinFlush the release still waits for.
  std::set<uint64_t> flush_pending_members() const {
    std::set<uint64_t> members;
    for (const auto& [member, lane] : flush_pending_) {
      members.insert(member);
    }
    return members;
  }
  size_t repairs_pending() const;
  // (survivor, departed member) of every RepairDone still awaited.
  std::set<std::pair<uint64_t, uint64_t>> repairs_pending_members() const;
  // The last reconcile and release are under way.
  bool releasing() const { return releasing_; }

  // ImageFetchListener.
  void OnImageChunkApplied(uint64_t join_id, uint64_t entries, uint64_t bytes,
                           uint64_t entries_estimate,
                           std::vector<RecentImageEntry> recent) override;
  void OnImageComplete(uint64_t join_id, const ImageDone& done, uint64_t entries_applied) override;
  void OnImageFailed(uint64_t join_id, const Status& reason) override;

 private:
  struct Attempt {
    uint64_t join_id = 0;
    uint64_t provider = 0;
    std::string provider_name;
    std::set<uint64_t> intent_pending;
    bool stabilized = false;
    bool image_complete = false;
    int64_t deadline_us = 0;  // intent and stabilize must end by then
    int64_t last_progress_us = 0;
    uint64_t entries = 0;
    uint64_t bytes = 0;
    uint64_t entries_estimate = 0;
    int64_t image_started_us = 0;
    int64_t image_finished_us = 0;
  };
  // (repairer, lane, departed origin)
  using RepairMark = std::tuple<uint64_t, uint32_t, uint64_t>;
  // Asks every repairer still awaited for its claim (RecordKind::kRepairQuery).
  void QueryRepairs();
  // Whether `mark` still waits for a claim covering `entry`.
  bool RepairPending(const RepairMark& mark, int64_t entry) const;

  void EnterPhase(JoinPhase phase);
  void BeginAttempt();
  void FailAttempt(std::string_view reason);
  void ScheduleRetry(int64_t delay_us);
  int64_t RetryDelayUs();
  void MaybeRequestImage();
  void MaybeIncorporate();
  void ContinueMerge();
  void RequestActive();
  void SendJoinComplete();
  void MaybeRelease();
  void ContinueSweep();
  // Clears the base store on the worker (behind any chunk still queued there), then runs
  // `done` unless this driver is gone.
  void ClearBaseStore(std::function<void()> done);
  // Own copy: gives up the holding, then clears the copy, then goes on with the join.
  void GiveUpOwnCopy();
  // Own copy, nobody ACTIVE: asks the registry to make this member ACTIVE from its copy.
  void Reform();
  bool Held(JoinPhase phase);
  // Why no ACTIVE member will ever provide (all refuse the handshake), or nullopt.
  std::optional<std::string> EveryProviderRefuses() const;
  // Wraps a callback the host runs later so that it does nothing once this driver is gone (a
  // rejoin replaces the region's roles while callbacks may still be queued).
  template <typename Fn>
  auto Guard(Fn fn) {
    return [life = std::weak_ptr<char>(life_), fn = std::move(fn)](auto&&... args) mutable {
      if (!life.expired()) {
        fn(std::forward<decltype(args)>(args)...);
      }
    };
  }

  const RegionEnv& env_;
  JoinDriverHost& host_;
  Peers& peers_;
  Applier& applier_;
  WritePath& write_path_;
  storage::Store& store_;
  storage::VersionSource& versions_;
  RecentChanges& recent_;

  JoinPhase phase_ = JoinPhase::kNone;
  int64_t phase_started_us_ = 0;
  std::set<JoinPhase> held_;
  JoinPhase held_at_ = JoinPhase::kNone;
  int64_t entered_revision_ = 0;
  int64_t active_revision_ = 0;  // of the registry change that made this member ACTIVE
  std::optional<Attempt> attempt_;
  std::optional<Attempt> last_attempt_;
  std::shared_ptr<ImageFetch> fetch_;
  int attempts_ = 0;
  int consecutive_failures_ = 0;
  std::map<uint64_t, int64_t> provider_backoff_until_us_;
  uint64_t retry_generation_ = 0;
  bool clearing_ = false;  // the base store is being cleared (ClearBaseStore)
  // What the base store holds before an image: nothing (kNone), this member's own copy with its
  // holding (kKept), or that copy on its way out (kGivingUp: holding, then copy).
  enum class OwnCopy { kNone, kKept, kGivingUp };
  OwnCopy own_copy_ = OwnCopy::kNone;
  bool reforming_ = false;  // a Reform request is under way
  std::string waiting_;
  std::set<std::pair<uint64_t, uint32_t>> flush_pending_;
  // The entry of the departed origin each repair must cover, and the claims received (the
  // highest per mark): a repairer holds none of the origin's entries through its claim.
  std::map<RepairMark, int64_t> repairs_expected_;
  std::map<RepairMark, int64_t> repairs_received_;
  int64_t repairs_queried_us_ = 0;
  bool releasing_ = false;
  std::vector<Recipient> release_recipients_;  // the stale_release_recipients break
  uint64_t reconcile_cursor_ = 0;
  int64_t join_started_us_ = 0;
  int64_t join_finished_us_ = 0;
  const std::shared_ptr<char> life_ = std::make_shared<char>();
};

}  // namespace weft::replication
