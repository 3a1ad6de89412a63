// RecentChanges: which keys other members changed lately, so that survivors can repair what a
// crashed member left half-sent.
//
// A member that dies (kill -9) may have put a change on its channel to Y but not yet on its
// channel to Z; nobody will ever send it to Z, and Y and Z would differ forever. So every
// member remembers, for a bounded window, the keys of changes it received and from which
// origin; when an origin leaves the group, each survivor sends its current entry for each such
// key that still carries the departed origin's version to everyone (DepartureRepair in the
// replicator). Receivers apply it by version like any change: duplicates cost nothing.
//
// The window is bounded in entries and age. A change that sat unsent in the dead member's
// outbox for longer than the window before the crash is not repaired (the key stays different
// until it is written again); the repair count in the logs and INFO shows what was done.
//
// Thread safety: all methods are safe from any thread.
#pragma once

#include <cstddef>
#include <cstdint>
#include <deque>
#include <string>
#include <string_view>
#include <vector>

#include "absl/base/thread_annotations.h"

#include "weft/base/mutex.h"

namespace weft::replication {

class RecentChanges {
 public:
  RecentChanges(size_t capacity, int64_t window_ms) : capacity_(capacity), window_ms_(window_ms) {}

  void Record(std::string_view key, uint64_t origin, int64_t now_ms);
  // Keys changed by `origin` within the window (deduplicated), oldest first.
  std::vector<std::string> KeysFrom(uint64_t origin, int64_t now_ms);

 private:
  struct Item {
    std::string key;
    uint64_t origin;
    int64_t at_ms;
  };

  void Trim(int64_t now_ms) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mutex_);

  const size_t capacity_;
  const int64_t window_ms_;
  Mutex mutex_;
  std::deque<Item> items_ ABSL_GUARDED_BY(mutex_);
};

}  // namespace weft::replication
