// Applier: how a change received from a peer reaches the stores and the event pipeline, by the
// phase of this member's join (DESIGN.md §5 "Meanwhile on N", Phase E).
//
//   kActive   the base store decides: a change newer than the key's entry makes an event whose
//             old value is that entry, and replaces it.
//   kJoining  the event index (the post-image store) decides, and only it is written: the base
//             store is the image's. The old value is the index's entry for the key, otherwise
//             the pre-image the sender shipped. The image never decides whether a change makes
//             an event.
//   kMerging  from incorporate until release: the index still decides events and is kept
//             current; the base store takes every change too (newer wins).
//
// Reconcile walks the index in batches (incorporate, and once more before the index is
// released): where the index is newer than the base entry, the base takes it; where the base is
// newer (an image entry the key's events have not reached yet: a change that beat a live one by
// version, or a post-cut change the image carried and whose live copy never came), the key gets
// that change as its event (old value = the index's) and the index follows, so that per key each
// event's old value is the previous event's new value and the last one is what the store holds.
// Every key is reconciled under the base then the index shard lock, from what they hold at that
// moment: a change applied between two batches is never undone or reported twice.
//
// Thread safety: the protocol thread only, except that the index is a Store (local writes in the
// flush phase update it through the WritePath, under the same shard locks).
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "weft/base/clock.h"
#include "weft/replication/change_consumer.h"
#include "weft/replication/messages.h"
#include "weft/replication/recent_changes.h"
#include "weft/replication/write_path.h"
#include "weft/storage/store.h"
#include "weft/storage/version.h"

namespace weft::replication {

class Applier {
 public:
  enum class Mode { kActive, kJoining, kMerging };

  Applier(std::string region, storage::Store& base, storage::VersionSource& versions,
          ChangeConsumer* consumer, RecentChanges& recent, const Clock& clock,
          size_t index_shard_count);

  // kActive -> kJoining: creates an empty index.
  void BeginJoin();
  // kJoining -> kActive without a merge: the member bootstrapped the region instead.
  void CancelJoin();
  // kJoining -> kMerging.
  void BeginMerge();
  // kMerging -> kActive: the base store decides from now on. Returns the index, released, which
  // local writes of older epochs may still be using (WritePath::RetireIndex).
  std::unique_ptr<EventIndex> EndJoin();
  // Gives up the index, released, in any mode (this applier is being replaced: the member
  // rejoins). Null if there is none.
  std::unique_ptr<EventIndex> ReleaseIndex();
  // A failed join attempt: the base store goes (it held the partial image); the index stays.
  Mode mode() const { return mode_; }
  // The index while joining or merging, else null.
  storage::Store* index() const { return index_ == nullptr ? nullptr : &index_->store; }
  EventIndex* event_index() const { return index_.get(); }

  // Applies one received change.
  void Apply(const ChangeRecord& change);

  // Reconciles up to `count` index entries from `cursor` (0 starts); returns the next cursor, 0
  // when the index has been walked. REQUIRES: kMerging.
  uint64_t Reconcile(uint64_t cursor, size_t count);

  uint64_t postimage_changes() const { return postimage_changes_; }
  uint64_t corrections() const { return corrections_; }
  uint64_t changes_without_pre_image() const { return without_pre_image_; }
  uint64_t index_entries() const;

  // --- deliberate breaks, for the simulator only (region_env.h, ProtocolBreaks) ---
  bool break_image_overwrites_postimage = false;
  bool break_stale_reconcile = false;

 private:
  void ApplyActive(const ChangeRecord& change);
  // Joining and merging. `base` is the locked base store (null only for a joining change with a
  // pre-image); `write_base`: merging, the base store takes the change too.
  void ApplyIndexed(const ChangeRecord& change, storage::LockedKeys* base, bool write_base);
  void ReconcileKey(std::string_view key);
  // The stale_reconcile break: merges entries copied a step earlier.
  struct CopiedEntry {
    std::string key;
    std::string value;
    storage::Version version;
    int64_t expire_at_unix_ms;
    bool tombstone;
  };
  uint64_t ReconcileFromCopies(uint64_t cursor, size_t count);
  std::vector<CopiedEntry> copied_;
  bool copied_last_ = false;

  const std::string region_;
  storage::Store& base_;
  storage::VersionSource& versions_;
  ChangeConsumer* const consumer_;
  RecentChanges& recent_;
  const Clock& clock_;
  const size_t index_shard_count_;
  Mode mode_ = Mode::kActive;
  std::unique_ptr<EventIndex> index_;
  uint64_t postimage_changes_ = 0;
  uint64_t corrections_ = 0;
  uint64_t without_pre_image_ = 0;
};

}  // namespace weft::replication
