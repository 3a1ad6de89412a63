// Entry: one key of the store as a single heap block, and EntryView, its read-only view.
//
// Memory per key is the store's main cost (DESIGN.md §11: at most Redis 7's ~208 bytes per key
// for 1 M keys of 100-byte values), so an entry is ONE allocation holding a 40-byte header,
// an optional 12-byte expiry extension, then the key bytes and the value bytes:
//
//   offset  size  field
//        0     8  next            chain link of the owning Dict (intrusive, no node allocation)
//        8     8  stamp           Version.stamp
//       16     8  origin          Version.origin
//       24     8  seq             Version.seq
//       32     4  key_len         low 30 bits; bit 31 = tombstone, bit 30 = has_expiry
//       36     4  value_len       live entries: value length. Tombstones: side slot (below)
//       40    12  [has_expiry]    expire_at_unix_ms (8), side slot (4)
//    40|52     k  key bytes
//          v  value bytes (none for tombstones)
//
// A 16-byte key with a 100-byte value needs 156 bytes: jemalloc's 160-byte class. Keys without
// an expiry pay nothing for expiry; volatile keys pay 12 bytes in the block, which is cheaper
// than any side hash table and lets a read check the expiry without a second lookup.
//
// The "side slot" is the entry's position in its shard's list of volatile entries (live with an
// expiry) or of tombstones; those lists let active expiry and tombstone purging find their
// candidates without walking the whole table. Live entries without an expiry have no slot.
//
// Ownership: EntryPtr owns a block; a Dict owns the blocks linked into it.
//
// Thread safety: none of its own. An Entry and every EntryView of it are guarded by the lock of
// the shard that holds it; a view is valid only while that lock is held and the entry is not
// replaced or removed.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string_view>

#include "weft/storage/version.h"

namespace weft::storage {

// A read-only view of one entry, valid only while the shard lock is held (inside callbacks).
struct EntryView {
  std::string_view key;
  std::string_view value;  // empty for tombstones
  Version version;
  int64_t expire_at_unix_ms = 0;  // 0 = no expiry
  bool tombstone = false;
};

// The expiry of a write, as another member may report it: a tombstone under the write's own
// version (an entry whose expiry has come becomes one; shard.h).
inline bool IsExpiryOf(const EntryView& change, const EntryView& held) {
  return change.tombstone && !held.tombstone && change.version == held.version;
}

// The one order in which a member takes entries for a key (ApplyIfNewer, and the replication
// path deciding events): a newer version wins, and at equal versions the write's expiry wins
// over the write. Members notice an expiry on their own clocks, so the first whose clock passes
// it may ship the tombstone (in an image or a repair) to one whose clock has not: the receiver
// takes it, and the write reads as absent there up to a clock skew early. Never the other way
// round (a live copy of the write does not undo its expiry), so every member ends at the same
// entry in whatever order the two reports arrive. docs/design/storage.md, "Expiry".
inline bool Supersedes(const EntryView& change, const EntryView& held) {
  return change.version.NewerThan(held.version) || IsExpiryOf(change, held);
}

class Entry;

struct EntryDeleter {
  void operator()(Entry* entry) const;
};

using EntryPtr = std::unique_ptr<Entry, EntryDeleter>;

class Entry {
 public:
  static constexpr size_t kKeyBytesMax = (size_t{1} << 30) - 1;
  static constexpr size_t kValueBytesMax = UINT32_MAX;
  static constexpr size_t kHeaderBytes = 40;
  static constexpr size_t kExpiryBytes = 12;

  // Allocates a live entry; expire_at_unix_ms 0 means no expiry. `key` and `value` may point
  // into another entry (they are copied before anything is freed).
  // REQUIRES: key.size() <= kKeyBytesMax, value.size() <= kValueBytesMax, expire >= 0.
  static EntryPtr CreateLive(std::string_view key, std::string_view value, const Version& version,
                             int64_t expire_at_unix_ms);

  // Allocates a tombstone: a key with a version and no value. REQUIRES: key.size() <= kKeyBytesMax.
  static EntryPtr CreateTombstone(std::string_view key, const Version& version);

  // The size requested from the allocator for a block of this shape.
  static size_t BlockBytes(size_t key_bytes, size_t value_bytes, bool has_expiry) {
    return kHeaderBytes + (has_expiry ? kExpiryBytes : 0) + key_bytes + value_bytes;
  }

  Entry(const Entry&) = delete;
  Entry& operator=(const Entry&) = delete;
  Entry(Entry&&) = delete;
  Entry& operator=(Entry&&) = delete;
  ~Entry() = default;

  std::string_view key() const { return {KeyData(), KeyBytes()}; }
  // Empty for tombstones.
  std::string_view value() const {
    return is_tombstone() ? std::string_view()
                          : std::string_view(KeyData() + KeyBytes(), value_len_);
  }
  Version version() const { return Version{stamp_, origin_, seq_}; }
  bool is_tombstone() const { return (key_len_ & kTombstoneBit) != 0; }
  bool has_expiry() const { return (key_len_ & kExpiryBit) != 0; }
  // 0 when the entry has no expiry.
  int64_t expire_at_unix_ms() const;
  // True for a live entry whose expiry time has come.
  bool IsExpiredAt(int64_t now_unix_ms) const {
    return has_expiry() && expire_at_unix_ms() <= now_unix_ms;
  }

  EntryView View() const {
    return EntryView{key(), value(), version(), expire_at_unix_ms(), is_tombstone()};
  }

  // Bytes the allocator reserved for this block (malloc_usable_size): what memory accounting
  // counts, and the room an in-place overwrite may use.
  size_t allocated_bytes() const;

  // Overwrites a live entry's value, version and expiry inside its block when the new contents
  // keep the block's shape (expiry or not) and fit its allocation without wasting more than a
  // quarter of it. Returns false, changing nothing, otherwise. `value` may alias this entry.
  bool TryOverwrite(std::string_view value, const Version& version, int64_t expire_at_unix_ms);

  void set_version(const Version& version);
  // REQUIRES: has_expiry() and expire_at_unix_ms > 0.
  void set_expire_at_unix_ms(int64_t expire_at_unix_ms);

  // Position in the owning shard's volatile list (live with expiry) or tombstone list.
  // REQUIRES: has_expiry() || is_tombstone().
  uint32_t side_slot() const;
  void set_side_slot(uint32_t slot);

  Entry* next() const { return next_; }
  void set_next(Entry* next) { next_ = next; }
  // The address of the chain link, so a Dict can unlink a successor in place.
  Entry** next_link() { return &next_; }

 private:
  static constexpr uint32_t kTombstoneBit = uint32_t{1} << 31;
  static constexpr uint32_t kExpiryBit = uint32_t{1} << 30;
  static constexpr uint32_t kKeyLenMask = kExpiryBit - 1;

  Entry() = default;

  static EntryPtr Allocate(size_t block_bytes);

  size_t KeyBytes() const { return key_len_ & kKeyLenMask; }
  char* Block() { return reinterpret_cast<char*>(this); }
  const char* Block() const { return reinterpret_cast<const char*>(this); }
  const char* KeyData() const { return Block() + kHeaderBytes + (has_expiry() ? kExpiryBytes : 0); }
  char* KeyData() { return Block() + kHeaderBytes + (has_expiry() ? kExpiryBytes : 0); }

  Entry* next_ = nullptr;
  uint64_t stamp_ = 0;
  uint64_t origin_ = 0;
  uint64_t seq_ = 0;
  uint32_t key_len_ = 0;    // length | flag bits
  uint32_t value_len_ = 0;  // value length, or the side slot of a tombstone
};

static_assert(sizeof(Entry) == Entry::kHeaderBytes,
              "the entry header is part of the memory budget");

// The digest term of one live entry: xxh3 (seed kDigestSeed) of 48 little-endian bytes,
// Hash64(key), Hash64(value), stamp, origin, seq, expire_at_unix_ms (the two inner hashes also
// xxh3 with kDigestSeed). A store's digest is the 64-bit sum of the terms of its live, unexpired
// entries, so it does not depend on insertion order, shard count or iteration order.
inline constexpr uint64_t kDigestSeed = 0xbb67ae8584caa73bULL;
uint64_t DigestTerm(const EntryView& view);

}  // namespace weft::storage
