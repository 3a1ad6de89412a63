#include "weft/storage/entry.h"

#include <malloc.h>

#include <cstdlib>
#include <cstring>
#include <new>

#include "weft/base/check.h"
#include "weft/base/hash.h"

namespace weft::storage {

void EntryDeleter::operator()(Entry* entry) const {
  // Entry is trivially destructible; the block came from std::malloc in Entry::Allocate.
  std::free(entry);
}

EntryPtr Entry::Allocate(size_t block_bytes) {
  void* memory = std::malloc(block_bytes);
  WEFT_CHECK(memory != nullptr);
  return EntryPtr(new (memory) Entry());
}

EntryPtr Entry::CreateLive(std::string_view key, std::string_view value, const Version& version,
                           int64_t expire_at_unix_ms) {
  WEFT_CHECK(key.size() <= kKeyBytesMax);
  WEFT_CHECK(value.size() <= kValueBytesMax);
  WEFT_CHECK(expire_at_unix_ms >= 0);
  const bool has_expiry = expire_at_unix_ms != 0;
  EntryPtr entry = Allocate(BlockBytes(key.size(), value.size(), has_expiry));
  entry->set_version(version);
  entry->key_len_ = static_cast<uint32_t>(key.size()) | (has_expiry ? kExpiryBit : 0);
  entry->value_len_ = static_cast<uint32_t>(value.size());
  if (has_expiry) {
    entry->set_expire_at_unix_ms(expire_at_unix_ms);
    entry->set_side_slot(0);
  }
  // Copy, not move: the source may be another live block, never this fresh one.
  if (!key.empty()) {
    std::memcpy(entry->KeyData(), key.data(), key.size());
  }
  if (!value.empty()) {
    std::memcpy(entry->KeyData() + key.size(), value.data(), value.size());
  }
  return entry;
}

EntryPtr Entry::CreateTombstone(std::string_view key, const Version& version) {
  WEFT_CHECK(key.size() <= kKeyBytesMax);
  EntryPtr entry = Allocate(BlockBytes(key.size(), 0, false));
  entry->set_version(version);
  entry->key_len_ = static_cast<uint32_t>(key.size()) | kTombstoneBit;
  entry->value_len_ = 0;
  if (!key.empty()) {
    std::memcpy(entry->KeyData(), key.data(), key.size());
  }
  return entry;
}

int64_t Entry::expire_at_unix_ms() const {
  if (!has_expiry()) {
    return 0;
  }
  int64_t expire_at_unix_ms;
  std::memcpy(&expire_at_unix_ms, Block() + kHeaderBytes, sizeof(expire_at_unix_ms));
  return expire_at_unix_ms;
}

void Entry::set_expire_at_unix_ms(int64_t expire_at_unix_ms) {
  WEFT_DCHECK(has_expiry() && expire_at_unix_ms > 0);
  std::memcpy(Block() + kHeaderBytes, &expire_at_unix_ms, sizeof(expire_at_unix_ms));
}

uint32_t Entry::side_slot() const {
  WEFT_DCHECK(has_expiry() || is_tombstone());
  if (is_tombstone()) {
    return value_len_;
  }
  uint32_t slot;
  std::memcpy(&slot, Block() + kHeaderBytes + sizeof(int64_t), sizeof(slot));
  return slot;
}

void Entry::set_side_slot(uint32_t slot) {
  WEFT_DCHECK(has_expiry() || is_tombstone());
  if (is_tombstone()) {
    value_len_ = slot;
    return;
  }
  std::memcpy(Block() + kHeaderBytes + sizeof(int64_t), &slot, sizeof(slot));
}

void Entry::set_version(const Version& version) {
  stamp_ = version.stamp;
  origin_ = version.origin;
  seq_ = version.seq;
}

size_t Entry::allocated_bytes() const {
  return malloc_usable_size(const_cast<Entry*>(this));
}

bool Entry::TryOverwrite(std::string_view value, const Version& version,
                         int64_t expire_at_unix_ms) {
  WEFT_DCHECK(!is_tombstone());
  WEFT_CHECK(expire_at_unix_ms >= 0);
  if ((expire_at_unix_ms != 0) != has_expiry() || value.size() > kValueBytesMax) {
    return false;
  }
  const size_t needed = BlockBytes(KeyBytes(), value.size(), has_expiry());
  const size_t usable = allocated_bytes();
  if (needed > usable || usable - needed > usable / 4) {
    return false;
  }
  // memmove: `value` may be (part of) this entry's own value.
  if (!value.empty()) {
    std::memmove(KeyData() + KeyBytes(), value.data(), value.size());
  }
  value_len_ = static_cast<uint32_t>(value.size());
  set_version(version);
  if (has_expiry()) {
    set_expire_at_unix_ms(expire_at_unix_ms);
  }
  return true;
}

uint64_t DigestTerm(const EntryView& view) {
  const uint64_t words[6] = {
      Hash64(view.key, kDigestSeed),
      Hash64(view.value, kDigestSeed),
      view.version.stamp,
      view.version.origin,
      view.version.seq,
      static_cast<uint64_t>(view.expire_at_unix_ms),
  };
  unsigned char bytes[sizeof(words)];
  for (size_t i = 0; i < 6; ++i) {
    for (size_t b = 0; b < 8; ++b) {
      bytes[i * 8 + b] = static_cast<unsigned char>(words[i] >> (8 * b));
    }
  }
  return Hash64(std::string_view(reinterpret_cast<const char*>(bytes), sizeof(bytes)), kDigestSeed);
}

}  // namespace weft::storage
