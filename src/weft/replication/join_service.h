// JoinService: what every ACTIVE member M does for a joining member N, and what the provider P
// does on top (DESIGN.md §5 Phases B, C and E, the members' side).
//
// On JoinIntent{join_id, provider P, members} from N, M:
//   1. adds N as a recipient with pre-images (Peers::Publish: a new write epoch);
//   2. waits, without blocking, until every write of an older epoch has enqueued (OnDrained);
//   3. reads its transmission counters toward P, sends StateMarker{counters, streams} to P and
//      IntentAck to N. A member that cannot mark (not ACTIVE, or P is not its peer) answers
//      IntentAck with the reason, so the joiner retries instead of waiting.
// P does 1-2 for itself and then stabilizes (Phase C): it waits until, for every member named in
// the intent, the reception counter of each lane from that member (on the marker's stream) has
// reached the marker's counter — or the member left — and until its own registry view has
// reached the one N named its members from, and then sends Stabilized to N. Only then
// may N's ImageRequest for that join be admitted, once, and only from N.
// On JoinComplete from N, M sends JoinFlush on every lane (no change the image could have carried
// follows it); on JoinReleased, M stops sending N pre-images. Tombstone purging pauses while any
// join is in progress here (DESIGN §4.6).
//
// Bounded state: a marker that overtook its intent is kept for early_marker_ttl_ms, a stabilized
// join whose image nobody asked for for stabilized_ttl_ms; everything about a joiner goes when it
// leaves the group.
//
// Thread safety: the protocol thread only.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <set>
#include <vector>

#include "weft/replication/messages.h"
#include "weft/replication/peers.h"
#include "weft/replication/region_env.h"
#include "weft/replication/write_path.h"
#include "weft/storage/store.h"

namespace weft::replication {

// A member's cut as its StateMarker reports it: per lane, the stream and the transmission
// counter toward the provider.
struct Marker {
  std::vector<uint64_t> counters;
  std::vector<uint64_t> streams;
};

// Told when a provider sends Stabilized (the simulator's oracles check the cut against it).
class JoinServiceObserver {
 public:
  virtual ~JoinServiceObserver() = default;
  virtual void OnStabilized(uint64_t joiner, uint64_t join_id,
                            const std::map<uint64_t, Marker>& markers) = 0;
};

class JoinService {
 public:
  // `active` says whether this member holds a complete copy (may mark and provide).
  // `view_at_least(revision)` says whether this member's registry view is at `revision` or
  // newer; if not, it has the group read afresh (a watch delivers only changes of this
  // region, so it may never reach a revision that other changes of the registry made).
  // CheckStabilizations runs again whenever the view moves, and every tick.
  JoinService(const RegionEnv& env, Peers& peers, WritePath& write_path, storage::Store& store,
              std::function<bool()> active, std::function<bool(int64_t)> view_at_least,
              JoinServiceObserver* observer);
  ~JoinService();

  void OnJoinIntent(uint64_t joiner, const ControlRecord& intent);
  void OnStateMarker(uint64_t from, const ControlRecord& marker);
  // `joiner_entry`: the joiner's entry in the group, as the stream the record came on names it.
  void OnJoinComplete(uint64_t joiner, int64_t joiner_entry, const ControlRecord& complete);
  void OnJoinReleased(uint64_t joiner, const ControlRecord& released);
  // Writes of epochs before `epoch` have all ended.
  void OnDrained(uint64_t epoch);
  void OnMemberLeft(uint64_t member);
  // Reception counters moved, or members left: stabilizations may be complete.
  void CheckStabilizations();
  // Expires what waited too long.
  void OnTick();

  // Whether `joiner` may have the image of `join_id` now; if so, it is admitted (once).
  Status AdmitImage(uint64_t joiner, uint64_t join_id);

  // For status and the simulator's bounds checks.
  size_t stabilizations() const { return stabilizations_.size(); }
  size_t early_markers() const { return early_markers_.size(); }
  size_t stabilized_joins() const { return stabilized_.size(); }
  size_t pending_marks() const { return pending_marks_.size(); }
  size_t purge_pauses() const { return purge_paused_for_.size(); }

 private:
  struct PendingMark {
    uint64_t epoch = 0;
    uint64_t join_id = 0;
    uint64_t joiner = 0;
    uint64_t provider = 0;
  };
  struct Stabilization {
    uint64_t joiner = 0;
    bool self_marked = false;   // this provider's own drain is done
    int64_t view_revision = 0;  // the joiner's view: this provider's must reach it
    std::set<uint64_t> waiting;
    std::map<uint64_t, Marker> markers;
  };
  struct EarlyMarker {
    uint64_t joiner = 0;
    Marker marker;
    int64_t at_us = 0;
  };
  struct Stabilized {
    uint64_t joiner = 0;
    int64_t at_us = 0;
  };

  void Mark(const PendingMark& mark);
  void Refuse(uint64_t joiner, uint64_t join_id, std::string reason);
  bool Satisfied(uint64_t member, const Marker& marker);
  void PausePurge(uint64_t joiner);
  void ResumePurge(uint64_t joiner);

  const RegionEnv& env_;
  Peers& peers_;
  WritePath& write_path_;
  storage::Store& store_;
  const std::function<bool()> active_;
  const std::function<bool(int64_t)> view_at_least_;
  JoinServiceObserver* const observer_;

  std::vector<PendingMark> pending_marks_;
  std::map<uint64_t, Stabilization> stabilizations_;                    // join_id ->
  std::map<std::pair<uint64_t, uint64_t>, EarlyMarker> early_markers_;  // (join_id, member) ->
  std::map<uint64_t, Stabilized> stabilized_;                           // join_id ->
  std::set<uint64_t> purge_paused_for_;                                 // joiners
};

}  // namespace weft::replication
