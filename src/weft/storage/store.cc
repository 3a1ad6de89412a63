#include "weft/storage/store.h"

#include <bit>
#include <limits>

#include "weft/base/hash.h"

namespace weft::storage {
namespace {

size_t CheckedShardCount(const StoreOptions& options) {
  WEFT_CHECK(std::has_single_bit(options.shard_count));
  WEFT_CHECK(options.shard_count <= Store::kShardCountMax);
  WEFT_CHECK(options.tombstone_ttl_ms >= 0);
  return options.shard_count;
}

}  // namespace

Shard& LockedKeys::ShardOf(std::string_view key) {
  uint32_t index;
  if (shards_.size() == 1) {
    // WithKey: the shard is known; skip rehashing the key outside debug builds.
    index = shards_[0];
    WEFT_DCHECK(store_.ShardIndexOf(key) == index);
  } else {
    index = store_.ShardIndexOf(key);
    WEFT_DCHECK(std::binary_search(shards_.begin(), shards_.end(), index));
  }
  Shard& shard = store_.shards_[index];
  shard.mutex().AssertHeld();
  return shard;
}

std::optional<EntryView> LockedKeys::Find(std::string_view key) {
  Shard& shard = ShardOf(key);
  shard.mutex().AssertHeld();
  return shard.FindLive(key, Dict::Hash(key), store_.clock_);
}

std::optional<EntryView> LockedKeys::FindAny(std::string_view key) {
  Shard& shard = ShardOf(key);
  shard.mutex().AssertHeld();
  return shard.FindAny(key, Dict::Hash(key), store_.clock_);
}

void LockedKeys::Set(std::string_view key, std::string_view value, const Version& version,
                     int64_t expire_at_unix_ms) {
  Shard& shard = ShardOf(key);
  shard.mutex().AssertHeld();
  const uint64_t hash = Dict::Hash(key);
  if (store_.observer_ != nullptr) {
    const std::optional<EntryView> before = shard.FindLive(key, hash, store_.clock_);
    const EntryView after{key, value, version, expire_at_unix_ms, false};
    store_.observer_->OnLocalChange(before ? &*before : nullptr, after, context_);
  }
  shard.Set(key, hash, value, version, expire_at_unix_ms);
}

bool LockedKeys::SetExpireAt(std::string_view key, int64_t expire_at_unix_ms,
                             const Version& version) {
  Shard& shard = ShardOf(key);
  shard.mutex().AssertHeld();
  const uint64_t hash = Dict::Hash(key);
  if (store_.observer_ != nullptr) {
    const std::optional<EntryView> before = shard.FindLive(key, hash, store_.clock_);
    if (!before) {
      return false;
    }
    const EntryView after{key, before->value, version, expire_at_unix_ms, false};
    store_.observer_->OnLocalChange(&*before, after, context_);
  }
  return shard.SetExpireAt(key, hash, expire_at_unix_ms, version, store_.clock_);
}

bool LockedKeys::Delete(std::string_view key, const Version& version) {
  Shard& shard = ShardOf(key);
  shard.mutex().AssertHeld();
  const uint64_t hash = Dict::Hash(key);
  if (store_.observer_ != nullptr) {
    const std::optional<EntryView> before = shard.FindLive(key, hash, store_.clock_);
    if (!before) {
      return false;
    }
    const EntryView after{key, {}, version, 0, true};
    store_.observer_->OnLocalChange(&*before, after, context_);
  }
  return shard.Delete(key, hash, version, store_.clock_);
}

bool LockedKeys::ApplyIfNewer(const EntryView& change) {
  Shard& shard = ShardOf(change.key);
  shard.mutex().AssertHeld();
  return shard.ApplyIfNewer(change, Dict::Hash(change.key), store_.clock_);
}

Store::Store(StoreOptions options, const Clock& clock)
    : options_(options),
      clock_(clock),
      shard_count_(CheckedShardCount(options)),
      shard_bits_(std::countr_zero(shard_count_)),
      shards_(std::make_unique<Shard[]>(shard_count_)) {}

Store::~Store() = default;

uint32_t Store::ShardIndexOf(std::string_view key) const {
  return static_cast<uint32_t>(Hash64(key, kShardSeed) & (shard_count_ - 1));
}

uint64_t Store::Scan(uint64_t cursor, size_t count, bool include_tombstones,
                     absl::FunctionRef<void(const EntryView&)> visit) {
  const uint64_t shard_mask = shard_count_ - 1;
  const size_t index = cursor & shard_mask;
  const uint64_t bucket_cursor = cursor >> shard_bits_;
  const int64_t now_unix_ms = clock_.NowUnixMs();
  Shard& shard = shards_[index];
  uint64_t next;
  {
    MutexLock lock(&shard.mutex());
    next = shard.Scan(bucket_cursor, count, include_tombstones, now_unix_ms, visit);
  }
  if (next != 0) {
    return (next << shard_bits_) | index;
  }
  // This shard is done: the next shard starts at bucket cursor 0. Past the last shard, the
  // whole iteration is done.
  return index + 1 < shard_count_ ? index + 1 : 0;
}

size_t Store::KeyCount() const {
  size_t total = 0;
  for (size_t i = 0; i < shard_count_; ++i) {
    total += shards_[i].live_count();
  }
  return total;
}

size_t Store::VolatileKeyCount() const {
  size_t total = 0;
  for (size_t i = 0; i < shard_count_; ++i) {
    total += shards_[i].volatile_count();
  }
  return total;
}

size_t Store::TombstoneCount() const {
  size_t total = 0;
  for (size_t i = 0; i < shard_count_; ++i) {
    total += shards_[i].tombstone_count();
  }
  return total;
}

size_t Store::MemoryBytes() const {
  size_t total = sizeof(Store) + shard_count_ * sizeof(Shard);
  for (size_t i = 0; i < shard_count_; ++i) {
    total += shards_[i].memory_bytes();
  }
  return total;
}

uint64_t Store::ExpiredKeysTotal() const {
  uint64_t total = 0;
  for (size_t i = 0; i < shard_count_; ++i) {
    total += shards_[i].expired_total();
  }
  return total;
}

uint64_t Store::DigestShard(Shard& shard, int64_t now_unix_ms) {
  constexpr int kBatchedAttempts = 3;
  for (int attempt = 0;; ++attempt) {
    // After a few resized-under-us attempts, walk the shard in one lock hold: it always ends.
    const size_t batch =
        attempt < kBatchedAttempts ? kDigestBucketBatch : std::numeric_limits<size_t>::max();
    uint64_t sum = 0;
    uint64_t cursor = 0;
    uint64_t first_resize_count = 0;
    bool consistent = true;
    bool first = true;
    do {
      uint64_t resize_count;
      {
        MutexLock lock(&shard.mutex());
        cursor = shard.DigestStep(cursor, batch, now_unix_ms, &sum, &resize_count);
      }
      if (first) {
        first_resize_count = resize_count;
        first = false;
      } else if (resize_count != first_resize_count) {
        consistent = false;  // buckets may have been split or merged: terms could repeat
        break;
      }
    } while (cursor != 0);
    if (consistent) {
      return sum;
    }
  }
}

uint64_t Store::Digest() {
  const int64_t now_unix_ms = clock_.NowUnixMs();
  uint64_t digest = 0;
  for (size_t i = 0; i < shard_count_; ++i) {
    digest += DigestShard(shards_[i], now_unix_ms);
  }
  return digest;
}

size_t Store::ActiveExpireCycle(size_t keys_max) {
  const int64_t now_unix_ms = clock_.NowUnixMs();
  const bool purge = purge_pause_count_.load(std::memory_order_acquire) == 0;
  const int64_t purge_before_unix_ms = now_unix_ms - options_.tombstone_ttl_ms;
  size_t keys_examined = 0;
  size_t tombstones_examined = 0;
  size_t expired = 0;
  for (size_t visited = 0; visited < shard_count_; ++visited) {
    const bool keys_left = keys_examined < keys_max;
    const bool tombstones_left = purge && tombstones_examined < keys_max;
    if (!keys_left && !tombstones_left) {
      break;
    }
    Shard& shard =
        shards_[expire_cursor_.fetch_add(1, std::memory_order_relaxed) & (shard_count_ - 1)];
    // Skip shards with nothing to do without taking their locks.
    const bool has_volatile = keys_left && shard.volatile_count() != 0;
    const bool has_tombstones = tombstones_left && shard.tombstone_count() != 0;
    if (!has_volatile && !has_tombstones) {
      continue;
    }
    MutexLock lock(&shard.mutex());
    if (has_volatile) {
      const size_t batch = std::min(keys_max - keys_examined, kExpireBatchPerShard);
      expired += shard.ExpireVolatile(batch, now_unix_ms, &keys_examined);
    }
    if (tombstones_left) {
      // After expiry, so that keys expired just now are purged at once if already old.
      const size_t batch = std::min(keys_max - tombstones_examined, kExpireBatchPerShard);
      shard.PurgeTombstones(batch, purge_before_unix_ms, &tombstones_examined);
    }
  }
  return expired;
}

void Store::PauseTombstonePurge() {
  purge_pause_count_.fetch_add(1, std::memory_order_acq_rel);
}

void Store::ResumeTombstonePurge() {
  const int previous = purge_pause_count_.fetch_sub(1, std::memory_order_acq_rel);
  WEFT_CHECK(previous > 0);
}

void Store::Clear() {
  for (size_t i = 0; i < shard_count_; ++i) {
    MutexLock lock(&shards_[i].mutex());
    shards_[i].Clear();
  }
}

}  // namespace weft::storage
