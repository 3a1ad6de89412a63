// WritePath: how this member's own writes to a region leave it (DESIGN.md §4 step 2), and the
// drain that turns a change of the recipient set into a clean cut (§5 Phase B steps 1-2).
//
// One local change takes three steps:
//   Begin   snapshot the recipient set (a RecipientSet of one epoch);
//   Enqueue encode the change once per flavour (with the pre-image for joining recipients) and
//           append it to the key's lane of every recipient in the snapshot; emit its event;
//   End     the write no longer uses the snapshot.
// Production runs them back to back inside the store's ChangeObserver call, under the key's
// shard lock, so per key the enqueue order is the apply order. The simulator runs them as
// separate events (WriteContext::snapshot), so that every protocol step can fall between them.
//
// The drain: Replace installs a new set in a new epoch. A write that began on an older epoch
// may still enqueue to the old set; once none is left (Drained), every change that did not see
// the new set is in its outboxes, so the transmission counters read then include all of them,
// and every later write sees the new set. Nothing waits: the last such write's End reports the
// drained epoch through `on_drained`, and the protocol carries on from there.
//
// A RecipientSet also says where a joiner in its flush phase keeps its event index (the
// post-image store): local writes then update it, so that the index stays the key's last event.
// Clearing it is a Replace like any other, so the index may be freed once that epoch drained.
//
// Thread safety: Begin, Enqueue, End and OnLocalChange are called by writers on any thread, with
// the key's shard lock held (Enqueue needs it). Replace, Drained, Current and the setters are the
// protocol thread's. `on_drained` runs on a writer's thread with a shard lock held: it must only
// post.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"

#include "weft/base/clock.h"
#include "weft/base/mutex.h"
#include "weft/replication/change_consumer.h"
#include "weft/replication/outbox.h"
#include "weft/replication/write_ticket.h"
#include "weft/storage/store.h"

namespace weft::replication {

enum class ReplicationMode { kSync, kAsync };
std::string_view ReplicationModeName(ReplicationMode mode);

// One recipient's outbound lanes: writers append to them, the protocol sends from them.
struct PeerOutboxes {
  uint64_t member = 0;
  std::vector<std::unique_ptr<Outbox>> lanes;
};

struct Recipient {
  std::shared_ptr<PeerOutboxes> outboxes;
  bool wants_pre_image = false;  // a joiner: every change carries its pre-image
};

// A joiner's event index (the post-image store) as writers see it. Local writes keep it current
// until it is released; from then on (the join ended, or the member rejoins) the base store
// decides, also for writes of older epochs that enqueue late, and the index waits to be freed
// until no such write is left (WritePath::RetireIndex).
struct EventIndex {
  EventIndex(size_t shard_count, const Clock& clock);
  storage::Store store;
  std::atomic<bool> released{false};
};

struct RecipientSet {
  uint64_t epoch = 0;
  std::vector<Recipient> members;
  // A joiner between its incorporate and its release: local writes keep this index current and
  // take their events' old values from it, until it is released. Null otherwise.
  EventIndex* event_index = nullptr;
  // This member is not in the group (it rejoins): a write cannot be confirmed, whatever it
  // does; its ticket completes unconfirmed.
  bool unconfirmable = false;
};

class WritePath final : public storage::ChangeObserver {
 public:
  WritePath(std::string region, ReplicationMode mode, uint32_t lanes, const storage::Store& store,
            ChangeConsumer* consumer, const Clock& clock, std::function<void(uint64_t)> on_drained);
  WritePath(const WritePath&) = delete;
  WritePath& operator=(const WritePath&) = delete;

  // --- a writer's steps ---
  std::shared_ptr<const RecipientSet> Begin();
  // REQUIRES: the key's shard lock; `set` came from Begin and has not ended.
  void Enqueue(const RecipientSet& set, const storage::EntryView* before,
               const storage::EntryView& after, const std::shared_ptr<WriteTicket>* ticket);
  void End(const RecipientSet& set);
  // A departure repair: sends `entry` again to every recipient in `set`, with `pre_value` as the
  // pre-image for joiners when it is known. No event, no ticket. REQUIRES: the key's shard lock.
  void Resend(const RecipientSet& set, const storage::EntryView& entry, bool pre_known,
              std::optional<std::string_view> pre_value);

  // storage::ChangeObserver: the three steps, or only Enqueue when the caller's WriteContext
  // carries a snapshot it took itself.
  void OnLocalChange(const storage::EntryView* before, const storage::EntryView& after,
                     const storage::ChangeContext* context) override;

  // --- the protocol thread ---
  // Installs a new set in a new epoch and returns the epoch.
  uint64_t Replace(std::vector<Recipient> members, EventIndex* event_index,
                   bool unconfirmable = false);
  // An epoch for a member that is no longer in the group: writes of it are unconfirmable.
  uint64_t ReplaceUnconfirmable() { return Replace({}, nullptr, /*unconfirmable=*/true); }
  // True once no write that began before `epoch` is still between Begin and End.
  bool Drained(uint64_t epoch) const;
  // Keeps a released index (`index->released` set) until no write that began before `epoch`, an
  // epoch whose set no longer names it, is left; frees it now if none is.
  void RetireIndex(std::unique_ptr<EventIndex> index, uint64_t epoch);
  // Frees the retired indexes nobody can use any more (call on every drain).
  void FreeRetiredIndexes();
  size_t retired_indexes() const { return retired_indexes_.size(); }
  std::shared_ptr<const RecipientSet> Current() const;
  // Time records from enqueue to acknowledgement (for image pacing), or stop.
  void set_timing_acks(bool on) { timing_acks_.store(on, std::memory_order_relaxed); }
  // Deliberate break for the simulator's checker tests: joiners' lanes take no ticket, so a sync
  // write is acknowledged before a joiner applied it.
  void set_break_ack_before_joiner_applies(bool on) { break_joiner_tickets_ = on; }

  // The lane a key's changes use: a key always uses the same one.
  uint32_t LaneOf(std::string_view key) const;
  ReplicationMode mode() const { return mode_; }

 private:
  const std::string region_;
  const ReplicationMode mode_;
  const uint32_t lanes_;
  const storage::Store& store_;
  ChangeConsumer* const consumer_;
  const Clock& clock_;
  const std::function<void(uint64_t)> on_drained_;
  std::atomic<bool> timing_acks_{false};
  bool break_joiner_tickets_ = false;
  // Released indexes, by the epoch whose drain frees them (the protocol thread's).
  std::vector<std::pair<uint64_t, std::unique_ptr<EventIndex>>> retired_indexes_;

  mutable Mutex mutex_;
  std::shared_ptr<const RecipientSet> current_ ABSL_GUARDED_BY(mutex_);
  // Writes between Begin and End, by epoch. The current epoch's count may sit at zero.
  std::map<uint64_t, int64_t> in_flight_ ABSL_GUARDED_BY(mutex_);
};

}  // namespace weft::replication
