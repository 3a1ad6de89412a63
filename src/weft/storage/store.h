// Store: the sharded in-memory store of versioned entries that every region of weftd keeps
// (DESIGN.md §3, §4). Storage is sans-I/O: no sockets, threads, wall clock or randomness of its
// own; time comes from the injected Clock.
//
// The keyspace is split into `shard_count` shards (a power of two) by an xxh3 hash of the key;
// each shard has its own lock, hash table, expiry and tombstone lists. There is no global lock:
// a command locks the one shard of its key (WithKey), or the shards of all its keys in ascending
// order (WithKeys, for MSET, RENAME, DEL k1 k2 ...), and works on the entries through
// LockedKeys. Whole-store walks (Scan, Digest, ActiveExpireCycle) lock one shard at a time for a
// short batch, so a writer never waits longer than one batch. docs/design/storage.md explains
// the layout, the scan guarantee and why shards are locked rather than owned by threads.
//
// Entries are live (a value, maybe with an expiry) or tombstones (a deleted key's version, kept
// for tombstone_ttl_ms so that an older change arriving later cannot resurrect the key). A live
// entry whose expiry has come reads as absent and turns into a tombstone carrying its own
// version (shard.h says why).
//
// Thread safety: every public method of Store is safe from any thread. A LockedKeys and the
// EntryViews it returns may be used only inside the callback that received them, on that thread;
// an EntryView is invalidated by any later change to the same key.
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string_view>
#include <utility>

#include "absl/base/thread_annotations.h"
#include "absl/container/inlined_vector.h"
#include "absl/functional/function_ref.h"

#include "weft/base/check.h"
#include "weft/base/clock.h"
#include "weft/base/mutex.h"
#include "weft/storage/entry.h"
#include "weft/storage/shard.h"
#include "weft/storage/version.h"

namespace weft::storage {

struct StoreOptions {
  // Power of two, at most Store::kShardCountMax.
  size_t shard_count = 1024;
  // Tombstones older than this (by their stamp's ms) may be purged.
  int64_t tombstone_ttl_ms = 600'000;
};

class Store;

// What the command making a change tells the store's observer about itself (replication: the
// sync write's ticket, so the reply can wait for acknowledgements). The store never looks inside:
// it hands the pointer given to WithKey/WithKeys to every OnLocalChange of that call. Passing it
// explicitly, rather than through a thread-local, keeps a write's steps separable (the simulator
// runs them as separate events) and visible in the code that makes them.
class ChangeContext {
 protected:
  ~ChangeContext() = default;
};

// Receives every local change made through LockedKeys::Set / SetExpireAt / Delete (not
// ApplyIfNewer, not expiry, not Clear) while the changed key's shard lock is held, just BEFORE
// the change is made, so `before` (the live entry, or null if the key is absent, expired or a
// tombstone) and `after` (what the key becomes; a tombstone for Delete) are both valid views
// for the duration of the call. Replication uses it to ship each change with its pre-image in
// the order the store applies them (DESIGN.md §4 step 2). The observer must not call into the
// store for a key of a shard it does not know to be locked.
class ChangeObserver {
 public:
  virtual ~ChangeObserver() = default;
  // `context` is what the caller passed to WithKey/WithKeys (may be null).
  virtual void OnLocalChange(const EntryView* before, const EntryView& after,
                             const ChangeContext* context) = 0;
};

// Access to the entries of the shards the caller has locked (obtained only through
// Store::WithKey / Store::WithKeys). Every key passed must belong to a locked shard
// (WEFT_DCHECKed). Reads apply lazy expiry: an entry whose expire_at <= clock.NowUnixMs() is
// removed (counted in ExpiredKeysTotal) and reported absent.
class LockedKeys {
 public:
  ~LockedKeys() = default;
  LockedKeys(const LockedKeys&) = delete;
  LockedKeys& operator=(const LockedKeys&) = delete;
  LockedKeys(LockedKeys&&) = delete;
  LockedKeys& operator=(LockedKeys&&) = delete;

  // Live (non-tombstone, unexpired) entry or nullopt.
  std::optional<EntryView> Find(std::string_view key);

  // Set, SetExpireAt and Delete report to the store's ChangeObserver, if any.

  // Inserts or replaces the value; expire_at_unix_ms 0 = no expiry (clears any previous
  // expiry). `key` and `value` may point into an entry of this store.
  // REQUIRES: key.size() <= Entry::kKeyBytesMax, value.size() <= Entry::kValueBytesMax.
  void Set(std::string_view key, std::string_view value, const Version& version,
           int64_t expire_at_unix_ms);

  // Replaces the live entry's expiry (0 = persist) and version. Returns false if no live entry.
  bool SetExpireAt(std::string_view key, int64_t expire_at_unix_ms, const Version& version);

  // Replaces a live entry with a tombstone carrying `version`. Returns true if a live entry was
  // removed; a key without a live entry is left as it is.
  bool Delete(std::string_view key, const Version& version);

  // The entry held for key, tombstones included (an expired entry is reported as the tombstone
  // it becomes), or nullopt: what a replicated change is compared against.
  std::optional<EntryView> FindAny(std::string_view key);

  // Replication and image path: stores `change` (value or tombstone, with its version and
  // expiry) only if nothing is held for change.key or `change` supersedes it (a newer version,
  // or the held write's expiry noticed on another member's clock: Supersedes). Returns true if
  // stored.
  bool ApplyIfNewer(const EntryView& change);

 private:
  friend class Store;
  // `shards` lists the locked shard indexes in ascending order.
  LockedKeys(Store& store, std::span<const uint32_t> shards, const ChangeContext* context)
      : store_(store), shards_(shards), context_(context) {}

  // The locked shard that owns key; asserts that its lock is held.
  Shard& ShardOf(std::string_view key);

  Store& store_;
  const std::span<const uint32_t> shards_;
  const ChangeContext* const context_;
};

class Store {
 public:
  static constexpr uint64_t kShardSeed = 0x3c6ef372fe94f82bULL;
  static constexpr size_t kShardCountMax = size_t{1} << 20;
  // Buckets per lock hold in Digest: a few microseconds of work.
  static constexpr size_t kDigestBucketBatch = 256;
  // Per shard visited by ActiveExpireCycle: volatile keys examined and tombstones examined.
  static constexpr size_t kExpireBatchPerShard = 64;

  // REQUIRES: options.shard_count is a power of two in [1, kShardCountMax];
  // options.tombstone_ttl_ms >= 0. `clock` must outlive the store.
  Store(StoreOptions options, const Clock& clock);
  ~Store();  // frees everything
  Store(const Store&) = delete;
  Store& operator=(const Store&) = delete;
  Store(Store&&) = delete;
  Store& operator=(Store&&) = delete;

  // Runs fn(LockedKeys&) holding the lock of the shard that owns key; returns fn's result.
  // `context` (may be null) reaches the ChangeObserver with every local change fn makes.
  template <typename Fn>
  decltype(auto) WithKey(std::string_view key, Fn&& fn, const ChangeContext* context = nullptr) {
    const uint32_t index[1] = {ShardIndexOf(key)};
    MutexLock lock(&shards_[index[0]].mutex());
    LockedKeys keys(*this, index, context);
    return std::forward<Fn>(fn)(keys);
  }

  // Locks every shard owning any of `keys` (each once, ascending shard index: deadlock-free),
  // runs fn(LockedKeys&), unlocks. Used for MSET, MSETNX, RENAME, DEL k1 k2 ... atomicity.
  template <typename Fn>
  decltype(auto) WithKeys(std::span<const std::string_view> keys, Fn&& fn,
                          const ChangeContext* context = nullptr) {
    absl::InlinedVector<uint32_t, 8> indexes;
    indexes.reserve(keys.size());
    for (std::string_view key : keys) {
      indexes.push_back(ShardIndexOf(key));
    }
    std::sort(indexes.begin(), indexes.end());
    indexes.erase(std::unique(indexes.begin(), indexes.end()), indexes.end());
    ShardLocks locks(*this, indexes);
    LockedKeys locked(*this, indexes, context);
    return std::forward<Fn>(fn)(locked);
  }

  // Redis-SCAN-like iteration over all shards. cursor 0 starts; returns the next cursor, 0 when
  // done. Visits about `count` entries (stopping early after 10 * count buckets, and at least one
  // bucket) of ONE shard per call, holding that shard's lock only during the call, and calls
  // visit(const EntryView&) for each entry (tombstones only when include_tombstones, expired
  // entries then shown as tombstones; otherwise expired entries are skipped, not removed).
  // Guarantee: an entry present for the whole iteration is visited at least once; an entry may
  // be visited more than once. `visit` runs under the shard lock and must not call into the
  // store. The cursor is (bucket_cursor << log2(shard_count)) | shard_index.
  uint64_t Scan(uint64_t cursor, size_t count, bool include_tombstones,
                absl::FunctionRef<void(const EntryView&)> visit);

  // Live keys (not tombstones), O(shards) over relaxed counters; may include not-yet-removed
  // expired keys, like Redis's DBSIZE.
  size_t KeyCount() const;
  // Live keys with an expiry (INFO keyspace "expires=").
  size_t VolatileKeyCount() const;
  size_t TombstoneCount() const;
  // Our accounting: entry blocks (allocator usable size), bucket arrays, side lists and the
  // shard array. Excludes allocator overhead outside the blocks.
  size_t MemoryBytes() const;
  // Keys expired (lazily or actively) since the store was made.
  uint64_t ExpiredKeysTotal() const;

  // Order-independent content digest of live, unexpired entries: the 64-bit sum of DigestTerm
  // (entry.h) over them, so identical contents give identical digests regardless of insertion
  // order or shard count. Walks every shard in batches of kDigestBucketBatch buckets under its
  // lock; a shard whose table is resized between batches is walked again from its start (after
  // three tries, in one lock hold), so no entry is counted twice. Exact when no writes run
  // concurrently; with concurrent writers it reflects no single moment.
  uint64_t Digest();

  // Bounded active expiry (Redis's activeExpireCycle idea): examines at most `keys_max`
  // volatile keys, round-robin over shards (kExpireBatchPerShard per shard visited, resuming
  // where the last call stopped), expiring those whose time has come; also purges up to
  // `keys_max` tombstones older than tombstone_ttl_ms in the shards it visits, unless purging is
  // paused. Visits each shard at most once per call. Returns the number of keys expired.
  size_t ActiveExpireCycle(size_t keys_max);

  // While any pause is outstanding, ActiveExpireCycle purges no tombstones (DESIGN.md §4.6: never
  // while a join of the region is in progress). Pauses nest; each Pause needs one Resume.
  void PauseTombstonePurge();
  void ResumeTombstonePurge();

  // FLUSHALL: removes everything (entries and tombstones) and returns the memory. Shard by shard:
  // a write that runs concurrently on a shard already cleared survives.
  void Clear();

  // Installs the observer of local changes (nullptr removes it). Call before the store is used
  // concurrently; `observer` must outlive the store's use.
  void set_change_observer(ChangeObserver* observer) { observer_ = observer; }

  size_t shard_count() const { return shard_count_; }
  // The shard that owns key (also a stable key -> lane mapping for replication).
  uint32_t ShardIndexOf(std::string_view key) const;

 private:
  friend class LockedKeys;

  // Holds the locks of a sorted, duplicate-free list of shards: locks in ascending order,
  // unlocks in descending order. The analysis cannot follow a variable set of locks;
  // LockedKeys::ShardOf re-establishes it with AssertHeld.
  class ShardLocks {
   public:
    ShardLocks(Store& store, std::span<const uint32_t> indexes) ABSL_NO_THREAD_SAFETY_ANALYSIS
        : store_(store),
          indexes_(indexes) {
      for (uint32_t index : indexes_) {
        store_.shards_[index].mutex().Lock();
      }
    }
    ~ShardLocks() ABSL_NO_THREAD_SAFETY_ANALYSIS {
      for (auto it = indexes_.rbegin(); it != indexes_.rend(); ++it) {
        store_.shards_[*it].mutex().Unlock();
      }
    }
    ShardLocks(const ShardLocks&) = delete;
    ShardLocks& operator=(const ShardLocks&) = delete;
    ShardLocks(ShardLocks&&) = delete;
    ShardLocks& operator=(ShardLocks&&) = delete;

   private:
    Store& store_;
    const std::span<const uint32_t> indexes_;
  };

  uint64_t DigestShard(Shard& shard, int64_t now_unix_ms);

  const StoreOptions options_;
  const Clock& clock_;
  const size_t shard_count_;
  const int shard_bits_;
  const std::unique_ptr<Shard[]> shards_;
  std::atomic<size_t> expire_cursor_{0};  // next shard for ActiveExpireCycle
  std::atomic<int> purge_pause_count_{0};
  ChangeObserver* observer_ = nullptr;
};

}  // namespace weft::storage
