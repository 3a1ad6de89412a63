#include "weft/storage/entry.h"

#include <string>

#include "gtest/gtest.h"

namespace weft::storage {
namespace {

const Version kVersion{StampAtUnixMs(1'800'000'000'000) | 3, 11, 17};

TEST(EntryTest, LiveEntryHoldsKeyValueAndVersion) {
  EntryPtr entry = Entry::CreateLive("key", "value", kVersion, 0);
  EXPECT_EQ(entry->key(), "key");
  EXPECT_EQ(entry->value(), "value");
  EXPECT_EQ(entry->version(), kVersion);
  EXPECT_FALSE(entry->is_tombstone());
  EXPECT_FALSE(entry->has_expiry());
  EXPECT_EQ(entry->expire_at_unix_ms(), 0);
  EXPECT_FALSE(entry->IsExpiredAt(INT64_MAX));
  EXPECT_EQ(entry->next(), nullptr);
  const EntryView view = entry->View();
  EXPECT_EQ(view.key, "key");
  EXPECT_EQ(view.value, "value");
  EXPECT_EQ(view.version, kVersion);
  EXPECT_FALSE(view.tombstone);
}

TEST(EntryTest, ExpiryLivesInTheBlockWithTheSideSlot) {
  EntryPtr entry = Entry::CreateLive("k", "v", kVersion, 5000);
  EXPECT_TRUE(entry->has_expiry());
  EXPECT_EQ(entry->expire_at_unix_ms(), 5000);
  EXPECT_FALSE(entry->IsExpiredAt(4999));
  EXPECT_TRUE(entry->IsExpiredAt(5000));
  entry->set_side_slot(123456);
  entry->set_expire_at_unix_ms(7000);
  EXPECT_EQ(entry->side_slot(), 123456u);
  EXPECT_EQ(entry->expire_at_unix_ms(), 7000);
  EXPECT_EQ(entry->key(), "k");
  EXPECT_EQ(entry->value(), "v");
  EXPECT_EQ(entry->View().expire_at_unix_ms, 7000);
}

TEST(EntryTest, TombstoneHasNoValueAndKeepsItsSlotInTheValueLength) {
  EntryPtr entry = Entry::CreateTombstone("gone", kVersion);
  EXPECT_TRUE(entry->is_tombstone());
  EXPECT_FALSE(entry->has_expiry());
  EXPECT_EQ(entry->key(), "gone");
  entry->set_side_slot(99);
  EXPECT_EQ(entry->side_slot(), 99u);
  EXPECT_EQ(entry->value(), "");
  EXPECT_TRUE(entry->View().tombstone);
  EXPECT_EQ(entry->View().version, kVersion);
}

TEST(EntryTest, EmptyKeyAndValueAreAllowed) {
  EntryPtr entry = Entry::CreateLive("", "", kVersion, 0);
  EXPECT_EQ(entry->key(), "");
  EXPECT_EQ(entry->value(), "");
}

TEST(EntryTest, BinaryBytesRoundTrip) {
  const std::string key("a\0b", 3);
  const std::string value("\0\xff\x01", 3);
  EntryPtr entry = Entry::CreateLive(key, value, kVersion, 1);
  EXPECT_EQ(entry->key(), key);
  EXPECT_EQ(entry->value(), value);
}

TEST(EntryTest, TypicalEntryFitsTheJemalloc160ByteClass) {
  // The budget of DESIGN.md §11: a 16-byte key and a 100-byte value in one 160-byte block.
  EXPECT_EQ(Entry::BlockBytes(16, 100, false), 156u);
  EXPECT_LE(Entry::BlockBytes(16, 100, false), 160u);
  EXPECT_EQ(Entry::BlockBytes(16, 100, true), 168u);
  EntryPtr entry = Entry::CreateLive(std::string(16, 'k'), std::string(100, 'v'), kVersion, 0);
  EXPECT_GE(entry->allocated_bytes(), 156u);
}

TEST(EntryTest, TryOverwriteReusesTheBlockForASameSizedValue) {
  EntryPtr entry = Entry::CreateLive("counter", "1000", kVersion, 0);
  const Entry* block = entry.get();
  const Version next{kVersion.stamp + 1, 11, 18};
  ASSERT_TRUE(entry->TryOverwrite("1001", next, 0));
  EXPECT_EQ(entry.get(), block);
  EXPECT_EQ(entry->value(), "1001");
  EXPECT_EQ(entry->version(), next);
  EXPECT_EQ(entry->key(), "counter");
}

TEST(EntryTest, TryOverwriteUpdatesTheExpiryOfAVolatileEntry) {
  EntryPtr entry = Entry::CreateLive("k", "abc", kVersion, 100);
  entry->set_side_slot(5);
  ASSERT_TRUE(entry->TryOverwrite("xyz", kVersion, 200));
  EXPECT_EQ(entry->expire_at_unix_ms(), 200);
  EXPECT_EQ(entry->side_slot(), 5u);
  EXPECT_EQ(entry->value(), "xyz");
}

TEST(EntryTest, TryOverwriteRefusesAShapeChangeOrAValueThatDoesNotFit) {
  EntryPtr entry = Entry::CreateLive("k", "abc", kVersion, 0);
  EXPECT_FALSE(entry->TryOverwrite("abc", kVersion, 100));  // would gain an expiry
  EXPECT_FALSE(entry->TryOverwrite(std::string(4096, 'x'), kVersion, 0));
  EXPECT_EQ(entry->value(), "abc");
  EntryPtr large = Entry::CreateLive("k", std::string(4096, 'x'), kVersion, 0);
  EXPECT_FALSE(large->TryOverwrite("tiny", kVersion, 0));  // would waste most of the block
  EXPECT_EQ(large->value().size(), 4096u);
}

TEST(EntryTest, TryOverwriteAcceptsItsOwnValueAsTheSource) {
  EntryPtr entry = Entry::CreateLive("k", "abcdefgh", kVersion, 0);
  const std::string_view own = entry->value();
  ASSERT_TRUE(entry->TryOverwrite(own.substr(1, 7), kVersion, 0));
  EXPECT_EQ(entry->value(), "bcdefgh");
}

TEST(EntryTest, DigestTermDependsOnEveryField) {
  const EntryView base{"key", "value", kVersion, 0, false};
  const uint64_t term = DigestTerm(base);
  EXPECT_EQ(term, DigestTerm(base));
  EntryView changed = base;
  changed.key = "kez";
  EXPECT_NE(DigestTerm(changed), term);
  changed = base;
  changed.value = "valuf";
  EXPECT_NE(DigestTerm(changed), term);
  changed = base;
  changed.version.stamp += 1;
  EXPECT_NE(DigestTerm(changed), term);
  changed = base;
  changed.version.origin += 1;
  EXPECT_NE(DigestTerm(changed), term);
  changed = base;
  changed.version.seq += 1;
  EXPECT_NE(DigestTerm(changed), term);
  changed = base;
  changed.expire_at_unix_ms = 1;
  EXPECT_NE(DigestTerm(changed), term);
  // Key and value boundaries are not ambiguous.
  EXPECT_NE(DigestTerm(EntryView{"ab", "c", kVersion, 0, false}),
            DigestTerm(EntryView{"a", "bc", kVersion, 0, false}));
}

}  // namespace
}  // namespace weft::storage
