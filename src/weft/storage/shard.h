// Shard: one lock's worth of the store — a Dict of entries plus the side lists and counters that
// keep expiry and tombstone purging cheap. Store routes each key to one shard by hash; every
// rule about entry states lives here.
//
// Entry states and their transitions (all under the shard lock):
//   live            a value, maybe with an expiry; counted by live_count
//   live, expired   expire_at <= now but not yet noticed: reads treat it as a tombstone
//   tombstone       key + version, no value; kept so that an older change arriving later from
//                   another member cannot bring the key back (DESIGN.md §4.6)
// A live entry whose expiry has come turns into a tombstone carrying the entry's own version,
// when a read notices it (lazy expiry) or active expiry finds it. Every member therefore reaches
// the same state for that key, whenever it noticed the expiry, and an older in-flight write
// loses to it exactly as it would have lost to the live entry.
//
// Invariants: volatile_ holds exactly the live entries with has_expiry(), tombstones_ exactly the
// tombstones, each entry at index side_slot(); entry_bytes_ is the sum of allocated_bytes() over
// the dict; the published atomic counters equal the guarded state after every public call.
//
// Thread safety: every method except the counter accessors REQUIRES mutex(). The counters are
// relaxed atomics, written under the lock and readable from any thread without it (they are
// statistics: a reader may see a value that is one operation old).
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string_view>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/functional/function_ref.h"

#include "weft/base/clock.h"
#include "weft/base/mutex.h"
#include "weft/storage/dict.h"
#include "weft/storage/entry.h"
#include "weft/storage/version.h"

namespace weft::storage {

// 64-byte aligned so that two shards' locks never share a cache line.
class alignas(64) Shard {
 public:
  Shard() = default;
  ~Shard() = default;
  Shard(const Shard&) = delete;
  Shard& operator=(const Shard&) = delete;
  Shard(Shard&&) = delete;
  Shard& operator=(Shard&&) = delete;

  Mutex& mutex() const ABSL_LOCK_RETURNED(mu_) { return mu_; }

  // The live, unexpired entry for key, or nullopt; an expired entry becomes a tombstone.
  // REQUIRES: hash == Dict::Hash(key).
  std::optional<EntryView> FindLive(std::string_view key, uint64_t hash, const Clock& clock)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  // Like FindLive, but also returns tombstones (an expired entry is returned as the tombstone
  // it becomes). For version comparisons and pre-images.
  std::optional<EntryView> FindAny(std::string_view key, uint64_t hash, const Clock& clock)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  // Stores a live entry, replacing whatever the key held. expire_at_unix_ms 0 = no expiry.
  void Set(std::string_view key, uint64_t hash, std::string_view value, const Version& version,
           int64_t expire_at_unix_ms) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  // Replaces the live entry's expiry (0 = persist) and version. Returns false if no live entry.
  bool SetExpireAt(std::string_view key, uint64_t hash, int64_t expire_at_unix_ms,
                   const Version& version, const Clock& clock) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  // Replaces the live entry with a tombstone carrying `version`. Returns false, changing
  // nothing, if the key has no live entry.
  bool Delete(std::string_view key, uint64_t hash, const Version& version, const Clock& clock)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  // Stores `change` (a value or a tombstone) if it supersedes what the key holds, live, expired
  // or tombstone (a newer version, or the expiry of the held write: Supersedes in entry.h), or
  // if the key holds nothing. A live change whose expiry has already passed is stored as the
  // tombstone it would become. Returns true if stored.
  bool ApplyIfNewer(const EntryView& change, uint64_t hash, const Clock& clock)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  // One step of a Dict::Scan (see there) from `cursor`: stops after `count` entries or 10 *
  // `count` buckets. Calls visit for live unexpired entries and, if include_tombstones, for
  // tombstones and for expired entries (shown as tombstones). Changes nothing.
  uint64_t Scan(uint64_t cursor, size_t count, bool include_tombstones, int64_t now_unix_ms,
                absl::FunctionRef<void(const EntryView&)> visit) const
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  // One step of a digest walk over up to `buckets_max` buckets from `cursor`: adds the
  // DigestTerm of each live unexpired entry to *sum and stores the dict's resize_count in
  // *resize_count. Returns the next cursor (0 when done).
  uint64_t DigestStep(uint64_t cursor, size_t buckets_max, int64_t now_unix_ms, uint64_t* sum,
                      uint64_t* resize_count) const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  // Examines up to `keys_max` volatile entries, continuing round-robin from where the last call
  // stopped, and turns the expired ones into tombstones. Adds the number examined to *examined.
  // Returns the number expired.
  size_t ExpireVolatile(size_t keys_max, int64_t now_unix_ms, size_t* examined)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  // Examines up to `tombstones_max` tombstones round-robin and frees those whose stamp's
  // milliseconds are <= purge_before_unix_ms. Adds the number examined to *examined. Returns
  // the number freed.
  size_t PurgeTombstones(size_t tombstones_max, int64_t purge_before_unix_ms, size_t* examined)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  // Frees every entry and gives the tables' memory back.
  void Clear() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  // Statistics; callable without the lock.
  size_t live_count() const { return live_count_.load(std::memory_order_relaxed); }
  size_t volatile_count() const { return volatile_count_.load(std::memory_order_relaxed); }
  size_t tombstone_count() const { return tombstone_count_.load(std::memory_order_relaxed); }
  size_t memory_bytes() const { return memory_bytes_.load(std::memory_order_relaxed); }
  uint64_t expired_total() const { return expired_total_.load(std::memory_order_relaxed); }

 private:
  // The live entry for key after lazy expiry, or nullptr.
  Entry* FindLiveEntry(std::string_view key, uint64_t hash, const Clock& clock)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  // The only ways entries enter, change block or leave the dict: each keeps the side lists and
  // entry_bytes_ in step. Insert and Swap return the entry now in the dict.
  Entry* Insert(EntryPtr entry, uint64_t hash) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  Entry* Swap(Entry* current, EntryPtr replacement, uint64_t hash)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void Erase(Entry* entry, uint64_t hash) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Turns an expired live entry into a tombstone with its version; returns the tombstone.
  Entry* Expire(Entry* entry, uint64_t hash) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  void Attach(Entry* entry) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void Detach(Entry* entry) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void PublishCounters() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  mutable Mutex mu_;
  Dict dict_ ABSL_GUARDED_BY(mu_);
  std::vector<Entry*> volatile_ ABSL_GUARDED_BY(mu_);    // live entries with an expiry
  std::vector<Entry*> tombstones_ ABSL_GUARDED_BY(mu_);  // tombstones
  size_t volatile_cursor_ ABSL_GUARDED_BY(mu_) = 0;      // ExpireVolatile's resume point
  size_t tombstone_cursor_ ABSL_GUARDED_BY(mu_) = 0;     // PurgeTombstones's resume point
  size_t entry_bytes_ ABSL_GUARDED_BY(mu_) = 0;

  std::atomic<size_t> live_count_{0};
  std::atomic<size_t> volatile_count_{0};
  std::atomic<size_t> tombstone_count_{0};
  std::atomic<size_t> memory_bytes_{0};
  std::atomic<uint64_t> expired_total_{0};
};

}  // namespace weft::storage
