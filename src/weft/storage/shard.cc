#include "weft/storage/shard.h"

#include <algorithm>
#include <limits>
#include <utility>

#include "weft/base/check.h"

namespace weft::storage {
namespace {

void AddToSideList(std::vector<Entry*>& list, Entry* entry) {
  WEFT_CHECK(list.size() < std::numeric_limits<uint32_t>::max());
  entry->set_side_slot(static_cast<uint32_t>(list.size()));
  list.push_back(entry);
}

void RemoveFromSideList(std::vector<Entry*>& list, Entry* entry) {
  const uint32_t slot = entry->side_slot();
  WEFT_CHECK(slot < list.size() && list[slot] == entry);
  Entry* last = list.back();
  list[slot] = last;
  last->set_side_slot(slot);
  list.pop_back();
  // Give memory back after a mass expiry or purge; the factor 4 keeps this amortised O(1).
  if (list.capacity() > 64 && list.size() * 4 < list.capacity()) {
    list.shrink_to_fit();
  }
}

EntryView ExpiredAsTombstone(const Entry& entry) {
  return EntryView{entry.key(), std::string_view(), entry.version(), 0, true};
}

}  // namespace

Entry* Shard::FindLiveEntry(std::string_view key, uint64_t hash, const Clock& clock) {
  Entry* entry = dict_.Find(key, hash);
  if (entry == nullptr || entry->is_tombstone()) {
    return nullptr;
  }
  // Read the clock only for volatile keys: most keys have no expiry.
  if (entry->has_expiry() && entry->IsExpiredAt(clock.NowUnixMs())) {
    Expire(entry, hash);
    PublishCounters();
    return nullptr;
  }
  return entry;
}

std::optional<EntryView> Shard::FindLive(std::string_view key, uint64_t hash, const Clock& clock) {
  const Entry* entry = FindLiveEntry(key, hash, clock);
  if (entry == nullptr) {
    return std::nullopt;
  }
  return entry->View();
}

std::optional<EntryView> Shard::FindAny(std::string_view key, uint64_t hash, const Clock& clock) {
  Entry* entry = dict_.Find(key, hash);
  if (entry == nullptr) {
    return std::nullopt;
  }
  if (entry->has_expiry() && entry->IsExpiredAt(clock.NowUnixMs())) {
    entry = Expire(entry, hash);
    PublishCounters();
  }
  return entry->View();
}

void Shard::Set(std::string_view key, uint64_t hash, std::string_view value, const Version& version,
                int64_t expire_at_unix_ms) {
  Entry* current = dict_.Find(key, hash);
  if (current != nullptr && !current->is_tombstone()) {
    // Same shape, same size class: no allocation, and the side lists keep their slots.
    if (current->TryOverwrite(value, version, expire_at_unix_ms)) {
      return;
    }
  }
  EntryPtr replacement = Entry::CreateLive(key, value, version, expire_at_unix_ms);
  if (current != nullptr) {
    Swap(current, std::move(replacement), hash);
  } else {
    Insert(std::move(replacement), hash);
  }
  PublishCounters();
}

bool Shard::SetExpireAt(std::string_view key, uint64_t hash, int64_t expire_at_unix_ms,
                        const Version& version, const Clock& clock) {
  WEFT_CHECK(expire_at_unix_ms >= 0);
  Entry* entry = FindLiveEntry(key, hash, clock);
  if (entry == nullptr) {
    return false;
  }
  if ((expire_at_unix_ms != 0) == entry->has_expiry()) {
    entry->set_version(version);
    if (expire_at_unix_ms != 0) {
      entry->set_expire_at_unix_ms(expire_at_unix_ms);
    }
    return true;
  }
  // Gaining or losing an expiry changes the block's shape. The new block copies key and value
  // from the old one before Swap frees it.
  Swap(entry, Entry::CreateLive(entry->key(), entry->value(), version, expire_at_unix_ms), hash);
  PublishCounters();
  return true;
}

bool Shard::Delete(std::string_view key, uint64_t hash, const Version& version,
                   const Clock& clock) {
  Entry* entry = FindLiveEntry(key, hash, clock);
  if (entry == nullptr) {
    return false;
  }
  Swap(entry, Entry::CreateTombstone(key, version), hash);
  PublishCounters();
  return true;
}

bool Shard::ApplyIfNewer(const EntryView& change, uint64_t hash, const Clock& clock) {
  Entry* current = dict_.Find(change.key, hash);
  if (current != nullptr && !Supersedes(change, current->View())) {
    return false;
  }
  const bool already_expired = !change.tombstone && change.expire_at_unix_ms != 0 &&
                               change.expire_at_unix_ms <= clock.NowUnixMs();
  EntryPtr replacement =
      change.tombstone || already_expired
          ? Entry::CreateTombstone(change.key, change.version)
          : Entry::CreateLive(change.key, change.value, change.version, change.expire_at_unix_ms);
  if (current != nullptr) {
    Swap(current, std::move(replacement), hash);
  } else {
    Insert(std::move(replacement), hash);
  }
  PublishCounters();
  return true;
}

uint64_t Shard::Scan(uint64_t cursor, size_t count, bool include_tombstones, int64_t now_unix_ms,
                     absl::FunctionRef<void(const EntryView&)> visit) const {
  count = std::max<size_t>(count, 1);
  // Like Redis's SCAN, stop after 10 * count buckets even if they were mostly empty.
  const size_t buckets_max = count > std::numeric_limits<size_t>::max() / 10 ? count : count * 10;
  return dict_.Scan(cursor, buckets_max, count, [&](const Entry& entry) {
    if (entry.is_tombstone()) {
      if (include_tombstones) {
        visit(entry.View());
      }
    } else if (entry.IsExpiredAt(now_unix_ms)) {
      if (include_tombstones) {
        visit(ExpiredAsTombstone(entry));
      }
    } else {
      visit(entry.View());
    }
  });
}

uint64_t Shard::DigestStep(uint64_t cursor, size_t buckets_max, int64_t now_unix_ms, uint64_t* sum,
                           uint64_t* resize_count) const {
  *resize_count = dict_.resize_count();
  return dict_.Scan(cursor, buckets_max, std::numeric_limits<size_t>::max(),
                    [&](const Entry& entry) {
                      if (entry.is_tombstone() || entry.IsExpiredAt(now_unix_ms)) {
                        return;
                      }
                      *sum += DigestTerm(entry.View());
                    });
}

size_t Shard::ExpireVolatile(size_t keys_max, int64_t now_unix_ms, size_t* examined) {
  // Bounded by the list's size at entry, so no entry is examined twice in one call; each
  // expiry shrinks the list by one, so it cannot run empty inside the loop.
  const size_t budget = std::min(keys_max, volatile_.size());
  size_t expired = 0;
  for (size_t i = 0; i < budget; ++i) {
    if (volatile_cursor_ >= volatile_.size()) {
      volatile_cursor_ = 0;
    }
    Entry* entry = volatile_[volatile_cursor_];
    if (entry->IsExpiredAt(now_unix_ms)) {
      // The last entry moves into this slot: examine it next, without advancing.
      Expire(entry, Dict::Hash(entry->key()));
      ++expired;
    } else {
      ++volatile_cursor_;
    }
  }
  *examined += budget;
  if (expired != 0) {
    PublishCounters();
  }
  return expired;
}

size_t Shard::PurgeTombstones(size_t tombstones_max, int64_t purge_before_unix_ms,
                              size_t* examined) {
  const size_t budget = std::min(tombstones_max, tombstones_.size());
  size_t purged = 0;
  for (size_t i = 0; i < budget; ++i) {
    if (tombstone_cursor_ >= tombstones_.size()) {
      tombstone_cursor_ = 0;
    }
    Entry* entry = tombstones_[tombstone_cursor_];
    if (StampUnixMs(entry->version().stamp) <= purge_before_unix_ms) {
      Erase(entry, Dict::Hash(entry->key()));
      ++purged;
    } else {
      ++tombstone_cursor_;
    }
  }
  *examined += budget;
  if (purged != 0) {
    PublishCounters();
  }
  return purged;
}

void Shard::Clear() {
  dict_.Clear();
  std::vector<Entry*>().swap(volatile_);
  std::vector<Entry*>().swap(tombstones_);
  volatile_cursor_ = 0;
  tombstone_cursor_ = 0;
  entry_bytes_ = 0;
  PublishCounters();
}

Entry* Shard::Insert(EntryPtr entry, uint64_t hash) {
  Entry* inserted = entry.get();
  dict_.Insert(std::move(entry), hash);
  Attach(inserted);
  return inserted;
}

Entry* Shard::Swap(Entry* current, EntryPtr replacement, uint64_t hash) {
  Entry* installed = replacement.get();
  Detach(current);
  EntryPtr old = dict_.Replace(current, std::move(replacement), hash);
  Attach(installed);
  return installed;  // `old` is freed here, after the replacement copied what it needed
}

void Shard::Erase(Entry* entry, uint64_t hash) {
  Detach(entry);
  dict_.Remove(entry, hash);
}

Entry* Shard::Expire(Entry* entry, uint64_t hash) {
  WEFT_DCHECK(!entry->is_tombstone() && entry->has_expiry());
  expired_total_.store(expired_total_.load(std::memory_order_relaxed) + 1,
                       std::memory_order_relaxed);
  return Swap(entry, Entry::CreateTombstone(entry->key(), entry->version()), hash);
}

void Shard::Attach(Entry* entry) {
  entry_bytes_ += entry->allocated_bytes();
  if (entry->is_tombstone()) {
    AddToSideList(tombstones_, entry);
  } else if (entry->has_expiry()) {
    AddToSideList(volatile_, entry);
  }
}

void Shard::Detach(Entry* entry) {
  entry_bytes_ -= entry->allocated_bytes();
  if (entry->is_tombstone()) {
    RemoveFromSideList(tombstones_, entry);
  } else if (entry->has_expiry()) {
    RemoveFromSideList(volatile_, entry);
  }
}

void Shard::PublishCounters() {
  // Plain stores are enough: only the lock holder writes these.
  live_count_.store(dict_.size() - tombstones_.size(), std::memory_order_relaxed);
  volatile_count_.store(volatile_.size(), std::memory_order_relaxed);
  tombstone_count_.store(tombstones_.size(), std::memory_order_relaxed);
  memory_bytes_.store(entry_bytes_ + dict_.bucket_array_bytes() +
                          (volatile_.capacity() + tombstones_.capacity()) * sizeof(void*),
                      std::memory_order_relaxed);
}

}  // namespace weft::storage
