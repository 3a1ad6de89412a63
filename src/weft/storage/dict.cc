#include "weft/storage/dict.h"

#include <algorithm>
#include <bit>

#include "weft/base/check.h"
#include "weft/base/hash.h"

namespace weft::storage {
namespace {

uint64_t ReverseBits(uint64_t v) {
  v = ((v >> 1) & 0x5555555555555555ULL) | ((v & 0x5555555555555555ULL) << 1);
  v = ((v >> 2) & 0x3333333333333333ULL) | ((v & 0x3333333333333333ULL) << 2);
  v = ((v >> 4) & 0x0f0f0f0f0f0f0f0fULL) | ((v & 0x0f0f0f0f0f0f0f0fULL) << 4);
  return __builtin_bswap64(v);
}

}  // namespace

uint64_t Dict::Hash(std::string_view key) {
  return Hash64(key, kHashSeed);
}

Entry* Dict::Find(std::string_view key, uint64_t hash) const {
  if (bucket_count_ == 0) {
    return nullptr;
  }
  for (Entry* entry = buckets_[hash & (bucket_count_ - 1)]; entry != nullptr;
       entry = entry->next()) {
    if (entry->key() == key) {
      return entry;
    }
  }
  return nullptr;
}

void Dict::Insert(EntryPtr entry, uint64_t hash) {
  WEFT_DCHECK(hash == Hash(entry->key()));
  WEFT_DCHECK(Find(entry->key(), hash) == nullptr);
  if (bucket_count_ == 0) {
    Resize(kBucketCountMin);
  } else if (size_ + 1 > bucket_count_) {
    Resize(bucket_count_ * 2);
  }
  Entry*& head = buckets_[hash & (bucket_count_ - 1)];
  entry->set_next(head);
  head = entry.release();
  ++size_;
}

Entry** Dict::LinkTo(const Entry* entry, uint64_t hash) {
  WEFT_DCHECK(bucket_count_ != 0);
  Entry** link = &buckets_[hash & (bucket_count_ - 1)];
  while (*link != entry) {
    WEFT_CHECK(*link != nullptr);  // the entry must be in this dict
    link = (*link)->next_link();
  }
  return link;
}

EntryPtr Dict::Replace(Entry* current, EntryPtr replacement, uint64_t hash) {
  WEFT_DCHECK(replacement->key() == current->key());
  Entry** link = LinkTo(current, hash);
  replacement->set_next(current->next());
  current->set_next(nullptr);
  *link = replacement.release();
  return EntryPtr(current);
}

EntryPtr Dict::Remove(Entry* entry, uint64_t hash) {
  Entry** link = LinkTo(entry, hash);
  *link = entry->next();
  entry->set_next(nullptr);
  --size_;
  if (bucket_count_ > kBucketCountMin && size_ * 8 < bucket_count_) {
    Resize(std::max(kBucketCountMin, std::bit_ceil(size_)));
  }
  return EntryPtr(entry);
}

void Dict::Clear() {
  for (size_t i = 0; i < bucket_count_; ++i) {
    Entry* entry = buckets_[i];
    while (entry != nullptr) {
      Entry* next = entry->next();
      EntryPtr owned(entry);
      entry = next;
    }
  }
  buckets_.reset();
  bucket_count_ = 0;
  size_ = 0;
  ++resize_count_;
}

void Dict::Resize(size_t bucket_count) {
  WEFT_DCHECK(std::has_single_bit(bucket_count));
  auto buckets = std::make_unique<Entry*[]>(bucket_count);
  const uint64_t mask = bucket_count - 1;
  for (size_t i = 0; i < bucket_count_; ++i) {
    Entry* entry = buckets_[i];
    while (entry != nullptr) {
      Entry* next = entry->next();
      Entry*& head = buckets[Hash(entry->key()) & mask];
      entry->set_next(head);
      head = entry;
      entry = next;
    }
  }
  buckets_ = std::move(buckets);
  bucket_count_ = bucket_count;
  ++resize_count_;
}

uint64_t Dict::Scan(uint64_t cursor, size_t buckets_max, size_t entries_max,
                    absl::FunctionRef<void(const Entry&)> visit) const {
  if (bucket_count_ == 0) {
    return 0;
  }
  const uint64_t mask = bucket_count_ - 1;
  size_t buckets_visited = 0;
  size_t entries_visited = 0;
  do {
    for (const Entry* entry = buckets_[cursor & mask]; entry != nullptr; entry = entry->next()) {
      visit(*entry);
      ++entries_visited;
    }
    // Increment the reversed cursor: set the bits above the mask so the carry runs off the top,
    // then add one at the most significant bit of the mask (dictScan's trick).
    cursor |= ~mask;
    cursor = ReverseBits(ReverseBits(cursor) + 1);
    ++buckets_visited;
  } while (cursor != 0 && buckets_visited < buckets_max && entries_visited < entries_max);
  return cursor;
}

}  // namespace weft::storage
