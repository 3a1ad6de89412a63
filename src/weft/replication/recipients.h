// Recipients: the members a local write must be sent to (everyone else in the region's group),
// and the drain that makes a change of that set a clean cut (DESIGN.md §5, Phase B steps 1-2).
//
// A write takes a snapshot (Begin), enqueues its changes to the snapshot's members, and ends
// (End). Every snapshot belongs to an epoch; Replace() installs a new set in a new epoch and
// then waits until no write of an older epoch is still between Begin and End. After that every
// change that did not see the new set is already in its outboxes, so reading the transmission
// counters captures all of them; every later write sees the new set. The wait is a condition
// variable signalled by the last write of an old epoch, never a sleep loop, and lasts as long as
// the slowest in-flight enqueue (microseconds); if it ever takes longer than a second it logs
// which epoch and how many writes hold it.
//
// Thread safety: all methods are safe from any thread. Begin/End are called with a shard lock
// held; Replace must not be called with a shard lock held (it would wait for itself).
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <vector>

#include "absl/base/thread_annotations.h"

#include "weft/base/mutex.h"

namespace weft::replication {

class PeerLink;  // defined by the replicator: one peer's outboxes

struct Recipient {
  std::shared_ptr<PeerLink> peer;
  bool wants_pre_image = false;  // INITIALIZING: every change carries its pre-image
};

struct RecipientSet {
  uint64_t epoch = 0;
  std::vector<Recipient> members;
};

class Recipients {
 public:
  Recipients() : current_(std::make_shared<RecipientSet>()) {}

  // Snapshot for one write. The returned pointer stays valid after End.
  std::shared_ptr<const RecipientSet> Begin();
  void End(const RecipientSet& snapshot);

  // Installs `members` as a new epoch and waits for the writes of older epochs to end.
  void Replace(std::vector<Recipient> members);

  std::shared_ptr<const RecipientSet> Current() const;

 private:
  mutable Mutex mutex_;
  CondVar drained_;
  std::shared_ptr<const RecipientSet> current_ ABSL_GUARDED_BY(mutex_);
  std::map<uint64_t, int64_t> in_flight_ ABSL_GUARDED_BY(mutex_);  // epoch -> writes
};

}  // namespace weft::replication
