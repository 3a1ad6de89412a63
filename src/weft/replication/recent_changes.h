// RecentChanges: which keys other members changed lately, and what each change replaced here,
// so that survivors can repair what a crashed member left half-sent.
//
// A member that dies (kill -9) may have put a change on its channel to Y but not yet on its
// channel to Z; nobody will ever send it to Z, and Y and Z would differ forever. So every member
// remembers, for a bounded window, the changes it applied from others (and, on a joiner, the
// image entries whose stamps fall in the window: a provider's change may reach a joiner only
// through the image); when an origin leaves the group, each survivor sends its current entry for
// each such key that still carries the departed origin's version to everyone (RegionReplicator's
// departure repair). Receivers apply it by version like any change: duplicates cost nothing.
// With it goes what this member held before the change, as the change's pre-image for a joiner
// (the departed origin's own pre-image is gone with it; this is the old value of this member's
// own event for the change).
//
// The window is bounded in entries, bytes and age. A change that sat unsent in the dead member's
// outbox for longer than the window before the crash is not repaired (the key stays different
// until it is written again); the repair counts in the logs and INFO show what was done.
//
// Thread safety: the protocol thread only.
#pragma once

#include <cstddef>
#include <cstdint>
#include <deque>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "weft/storage/version.h"

namespace weft::replication {

class RecentChanges {
 public:
  struct Change {
    std::string key;
    storage::Version version;
    bool pre_known = false;                // pre_value says what this member held before
    std::optional<std::string> pre_value;  // nullopt: the key was absent
    int64_t at_ms = 0;
  };

  RecentChanges(size_t capacity, size_t bytes_max, int64_t window_ms)
      : capacity_(capacity), bytes_max_(bytes_max), window_ms_(window_ms) {}

  void Record(std::string_view key, const storage::Version& version, bool pre_known,
              std::optional<std::string_view> pre_value, int64_t now_ms);
  // The latest recorded change of each key changed by `origin` within the window, oldest first.
  std::vector<Change> From(uint64_t origin, int64_t now_ms);

  int64_t window_ms() const { return window_ms_; }
  size_t size() const { return items_.size(); }
  size_t bytes() const { return bytes_; }

 private:
  static size_t Footprint(const Change& change);
  void Trim(int64_t now_ms);

  const size_t capacity_;
  const size_t bytes_max_;
  const int64_t window_ms_;
  std::deque<Change> items_;
  size_t bytes_ = 0;
};

}  // namespace weft::replication
