// Dict: the hash table of one shard — a chained table of Entry blocks linked through their
// intrusive `next` field, over a power-of-two bucket array.
//
// Invariants: every entry is in bucket `Hash(key) & (bucket_count - 1)`; keys are unique;
// bucket_count is 0 (nothing allocated) or a power of two >= kBucketCountMin; after an insert the
// load (size / bucket_count) is at most 1, because the table doubles when an insert takes it
// past 1, and it halves down to fit when a removal leaves it below 1/8. Resizing rehashes the whole
// table at once: a shard holds a small slice of the keyspace (1 M keys over 1024 shards is ~1000
// entries, a few microseconds), so incremental rehashing would buy little and cost a second table.
//
// Scan uses Redis's reverse-binary cursor (dictScan): the cursor's bits are incremented from
// the most significant end of the mask, so buckets that a grow splits or a shrink merges are
// visited next to each other. Every entry present for the whole of a scan is returned at least
// once even if the table grows or shrinks between calls; entries may be returned more than once
// when it shrinks.
//
// Bucket hashes are xxh3 with kHashSeed, unrelated to the seed that picks a key's shard, so the
// keys of one shard still spread over all of its buckets.
//
// Thread safety: not thread-safe; the owning shard's lock guards it.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string_view>

#include "absl/functional/function_ref.h"

#include "weft/storage/entry.h"

namespace weft::storage {

class Dict {
 public:
  static constexpr uint64_t kHashSeed = 0x6a09e667f3bcc909ULL;
  static constexpr size_t kBucketCountMin = 4;

  Dict() = default;
  ~Dict() { Clear(); }
  Dict(const Dict&) = delete;
  Dict& operator=(const Dict&) = delete;
  Dict(Dict&&) = delete;
  Dict& operator=(Dict&&) = delete;

  // The bucket hash of a key; callers compute it once and pass it to the calls below.
  static uint64_t Hash(std::string_view key);

  // Returns the entry holding `key`, or nullptr. REQUIRES: hash == Hash(key).
  Entry* Find(std::string_view key, uint64_t hash) const;

  // Adds an entry and takes ownership of it. May grow the table.
  // REQUIRES: hash == Hash(entry->key()); no entry with that key is present.
  void Insert(EntryPtr entry, uint64_t hash);

  // Puts `replacement` in the place of `current` (same key) and hands `current` back.
  // Never resizes. REQUIRES: current is in this dict; replacement->key() == current->key().
  EntryPtr Replace(Entry* current, EntryPtr replacement, uint64_t hash);

  // Unlinks `entry` and hands it back. May shrink the table. REQUIRES: entry is in this dict.
  EntryPtr Remove(Entry* entry, uint64_t hash);

  // Frees every entry and the bucket array.
  void Clear();

  // Visits the entries of the bucket at `cursor` and of the buckets after it in reverse-binary
  // order, stopping after `buckets_max` buckets (at least one) or once `entries_max` entries have
  // been visited, whichever comes first. Returns the next cursor; 0 when the scan is complete.
  // Start with cursor 0. `visit` must not change the dict.
  uint64_t Scan(uint64_t cursor, size_t buckets_max, size_t entries_max,
                absl::FunctionRef<void(const Entry&)> visit) const;

  size_t size() const { return size_; }
  size_t bucket_count() const { return bucket_count_; }
  // One pointer per bucket.
  size_t bucket_array_bytes() const { return bucket_count_ * sizeof(void*); }
  // Increments whenever the bucket array is replaced (resize or Clear): a scan whose calls all
  // saw one resize_count visited every bucket exactly once.
  uint64_t resize_count() const { return resize_count_; }

 private:
  // The link (a bucket head or a predecessor's next field) that points at `entry`.
  Entry** LinkTo(const Entry* entry, uint64_t hash);
  void Resize(size_t bucket_count);

  std::unique_ptr<Entry*[]> buckets_;
  size_t bucket_count_ = 0;
  size_t size_ = 0;
  uint64_t resize_count_ = 0;
};

}  // namespace weft::storage
