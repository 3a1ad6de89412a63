// Version: the identity and the ordering of a change to an entry (DESIGN.md §2).
//
// A Version is `(stamp, origin, seq)`. `stamp` is a hybrid logical clock value,
// `(unix_ms << 16) | counter`, so it follows wall time while staying strictly increasing per
// member and moving past every stamp that member has seen. Conflicting changes resolve by
// `(stamp, origin)`, highest wins (last writer wins, ties broken by member); `(origin, seq)`
// names one change exactly, for deduplication and version vectors.
//
// VersionSource hands out the versions of one member's local writes to one region.
//
// Thread safety: Version is a value. VersionSource is safe from any thread; its critical section
// is a few instructions, and it never reads the clock while holding its lock.
#pragma once

#include <cstdint>

#include "absl/base/thread_annotations.h"

#include "weft/base/clock.h"
#include "weft/base/mutex.h"

namespace weft::storage {

struct Version {
  uint64_t stamp = 0;   // (unix_ms << 16) | counter
  uint64_t origin = 0;  // member that made the change
  uint64_t seq = 0;     // dense per (origin, region), starting at 1

  // True if this version wins a conflict against `other`: compares (stamp, origin). `seq` does
  // not take part: two changes from one origin never share a stamp.
  bool NewerThan(const Version& other) const {
    return stamp != other.stamp ? stamp > other.stamp : origin > other.origin;
  }

  friend bool operator==(const Version&, const Version&) = default;
};

inline constexpr int kStampCounterBits = 16;

// The wall-clock part of a stamp, in milliseconds since the Unix epoch.
inline int64_t StampUnixMs(uint64_t stamp) {
  return static_cast<int64_t>(stamp >> kStampCounterBits);
}

// The smallest stamp at `unix_ms`. REQUIRES: unix_ms >= 0.
inline uint64_t StampAtUnixMs(int64_t unix_ms) {
  return static_cast<uint64_t>(unix_ms) << kStampCounterBits;
}

// Assigns versions to local writes: stamps strictly increase across calls (also across a wall
// clock that steps back: the counter carries on from the last stamp) and seq counts 1, 2, 3, ...
// in the same order, so seq order and stamp order agree.
class VersionSource {
 public:
  VersionSource(const Clock& clock, uint64_t origin) : clock_(clock), origin_(origin) {}

  ~VersionSource() = default;
  VersionSource(const VersionSource&) = delete;
  VersionSource& operator=(const VersionSource&) = delete;
  VersionSource(VersionSource&&) = delete;
  VersionSource& operator=(VersionSource&&) = delete;

  // Returns a version newer than every version this source returned before and newer than every
  // stamp passed to Observe.
  Version Next();

  // Advances the clock past a stamp seen in a change from another member, so that the next
  // local write to the same key wins over it (the "receive" rule of a hybrid logical clock).
  void Observe(uint64_t stamp);

  uint64_t origin() const { return origin_; }

  // The last stamp handed out or observed (0 before any).
  uint64_t last_stamp() const;

 private:
  const Clock& clock_;
  const uint64_t origin_;
  mutable Mutex mu_;
  uint64_t last_stamp_ ABSL_GUARDED_BY(mu_) = 0;
  uint64_t last_seq_ ABSL_GUARDED_BY(mu_) = 0;
};

}  // namespace weft::storage
