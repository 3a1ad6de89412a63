#include "weft/storage/store.h"

#include <atomic>
#include <map>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "gtest/gtest.h"

#include "weft/base/clock.h"
#include "weft/base/random.h"

namespace weft::storage {
namespace {

std::string Key(int i) {
  return "key:" + std::to_string(i);
}

class StoreTest : public ::testing::Test {
 protected:
  StoreOptions Options(size_t shard_count = 16) {
    StoreOptions options;
    options.shard_count = shard_count;
    options.tombstone_ttl_ms = 60'000;
    return options;
  }

  void Set(Store& store, std::string_view key, std::string_view value, int64_t expire_at = 0) {
    store.WithKey(key,
                  [&](LockedKeys& keys) { keys.Set(key, value, versions_.Next(), expire_at); });
  }
  std::optional<std::string> Get(Store& store, std::string_view key) {
    return store.WithKey(key, [&](LockedKeys& keys) -> std::optional<std::string> {
      const std::optional<EntryView> entry = keys.Find(key);
      if (!entry) {
        return std::nullopt;
      }
      return std::string(entry->value);
    });
  }
  bool Delete(Store& store, std::string_view key) {
    return store.WithKey(key, [&](LockedKeys& keys) { return keys.Delete(key, versions_.Next()); });
  }
  std::optional<EntryView> FindAnyCopy(Store& store, std::string_view key, std::string* value) {
    return store.WithKey(key, [&](LockedKeys& keys) {
      std::optional<EntryView> entry = keys.FindAny(key);
      if (entry) {
        *value = std::string(entry->value);
      }
      return entry;  // only the version, flags and expiry are used after the lock
    });
  }
  // Every key the store yields over a full Scan, with how often each was seen.
  std::map<std::string, int> ScanAll(Store& store, size_t count, bool include_tombstones) {
    std::map<std::string, int> seen;
    uint64_t cursor = 0;
    do {
      cursor = store.Scan(cursor, count, include_tombstones,
                          [&](const EntryView& entry) { ++seen[std::string(entry.key)]; });
    } while (cursor != 0);
    return seen;
  }

  ManualClock clock_;
  VersionSource versions_{clock_, 1};
};

TEST_F(StoreTest, SetFindDelete) {
  Store store(Options(), clock_);
  EXPECT_EQ(Get(store, "a"), std::nullopt);
  Set(store, "a", "1");
  Set(store, "b", "2");
  EXPECT_EQ(Get(store, "a"), "1");
  EXPECT_EQ(store.KeyCount(), 2u);
  EXPECT_TRUE(Delete(store, "a"));
  EXPECT_EQ(Get(store, "a"), std::nullopt);
  EXPECT_FALSE(Delete(store, "a"));
  EXPECT_EQ(store.KeyCount(), 1u);
  EXPECT_EQ(store.TombstoneCount(), 1u);
}

TEST_F(StoreTest, FindReturnsTheStoredVersionAndExpiry) {
  Store store(Options(), clock_);
  const Version version = versions_.Next();
  const int64_t expire_at = clock_.NowUnixMs() + 1000;
  store.WithKey("k", [&](LockedKeys& keys) {
    keys.Set("k", "v", version, expire_at);
    const std::optional<EntryView> entry = keys.Find("k");
    ASSERT_TRUE(entry.has_value());
    EXPECT_EQ(entry->key, "k");
    EXPECT_EQ(entry->version, version);
    EXPECT_EQ(entry->expire_at_unix_ms, expire_at);
    EXPECT_FALSE(entry->tombstone);
  });
}

TEST_F(StoreTest, DeleteOfAMissingKeyLeavesNoTombstone) {
  Store store(Options(), clock_);
  EXPECT_FALSE(Delete(store, "never"));
  EXPECT_EQ(store.TombstoneCount(), 0u);
  std::string value;
  EXPECT_FALSE(FindAnyCopy(store, "never", &value).has_value());
}

TEST_F(StoreTest, TombstoneKeepsTheDeleteVersionAndASetReplacesIt) {
  Store store(Options(), clock_);
  Set(store, "k", "v");
  Version delete_version;
  store.WithKey("k", [&](LockedKeys& keys) {
    delete_version = versions_.Next();
    EXPECT_TRUE(keys.Delete("k", delete_version));
    const std::optional<EntryView> tombstone = keys.FindAny("k");
    ASSERT_TRUE(tombstone.has_value());
    EXPECT_TRUE(tombstone->tombstone);
    EXPECT_EQ(tombstone->value, "");
    EXPECT_EQ(tombstone->version, delete_version);
  });
  Set(store, "k", "again");
  EXPECT_EQ(Get(store, "k"), "again");
  EXPECT_EQ(store.TombstoneCount(), 0u);
  EXPECT_EQ(store.KeyCount(), 1u);
}

TEST_F(StoreTest, OverwriteOfAnyShapeKeepsCountsRight) {
  Store store(Options(1), clock_);
  const int64_t later = clock_.NowUnixMs() + 100'000;
  Set(store, "k", "1234");
  Set(store, "k", "5678");                 // in place
  Set(store, "k", std::string(500, 'x'));  // new block
  Set(store, "k", "tiny", later);          // gains an expiry
  EXPECT_EQ(store.VolatileKeyCount(), 1u);
  Set(store, "k", "tinz", later + 1);  // in place, expiry moves
  EXPECT_EQ(store.VolatileKeyCount(), 1u);
  Set(store, "k", "plain");  // expiry 0 clears it
  EXPECT_EQ(store.VolatileKeyCount(), 0u);
  EXPECT_EQ(Get(store, "k"), "plain");
  EXPECT_EQ(store.KeyCount(), 1u);
  EXPECT_EQ(store.TombstoneCount(), 0u);
}

TEST_F(StoreTest, SetAcceptsAValueThatPointsIntoTheEntryItReplaces) {
  Store store(Options(), clock_);
  Set(store, "k", "hello world, this value is long enough to move");
  store.WithKey("k", [&](LockedKeys& keys) {
    const std::optional<EntryView> entry = keys.Find("k");
    keys.Set(entry->key, entry->value.substr(6), versions_.Next(), 0);  // shrinks: new block
  });
  EXPECT_EQ(Get(store, "k"), "world, this value is long enough to move");
  store.WithKey("k", [&](LockedKeys& keys) {
    const std::optional<EntryView> entry = keys.Find("k");
    keys.Set("k", entry->value.substr(1), versions_.Next(), clock_.NowUnixMs() + 5000);
  });
  EXPECT_EQ(Get(store, "k"), "orld, this value is long enough to move");
}

TEST_F(StoreTest, LazyExpiryHidesTheKeyAndLeavesATombstoneWithItsVersion) {
  Store store(Options(), clock_);
  Version version;
  store.WithKey("k", [&](LockedKeys& keys) {
    version = versions_.Next();
    keys.Set("k", "v", version, clock_.NowUnixMs() + 1000);
  });
  EXPECT_EQ(store.VolatileKeyCount(), 1u);
  clock_.AdvanceMs(999);
  EXPECT_EQ(Get(store, "k"), "v");
  clock_.AdvanceMs(1);
  EXPECT_EQ(store.KeyCount(), 1u);  // not yet noticed, like Redis's DBSIZE
  EXPECT_EQ(Get(store, "k"), std::nullopt);
  EXPECT_EQ(store.KeyCount(), 0u);
  EXPECT_EQ(store.VolatileKeyCount(), 0u);
  EXPECT_EQ(store.ExpiredKeysTotal(), 1u);
  EXPECT_EQ(store.TombstoneCount(), 1u);
  std::string value;
  const std::optional<EntryView> tombstone = FindAnyCopy(store, "k", &value);
  ASSERT_TRUE(tombstone.has_value());
  EXPECT_TRUE(tombstone->tombstone);
  EXPECT_EQ(tombstone->version, version);
}

TEST_F(StoreTest, ExpiredKeyCannotBeDeletedOrReExpired) {
  Store store(Options(), clock_);
  Set(store, "a", "v", clock_.NowUnixMs() + 10);
  Set(store, "b", "v", clock_.NowUnixMs() + 10);
  clock_.AdvanceMs(10);
  EXPECT_FALSE(Delete(store, "a"));
  EXPECT_FALSE(store.WithKey("b", [&](LockedKeys& keys) {
    return keys.SetExpireAt("b", clock_.NowUnixMs() + 1000, versions_.Next());
  }));
  EXPECT_EQ(store.ExpiredKeysTotal(), 2u);
  EXPECT_EQ(store.KeyCount(), 0u);
}

TEST_F(StoreTest, SetExpireAtAddsMovesAndRemovesTheExpiry) {
  Store store(Options(), clock_);
  Set(store, "k", "value");
  const int64_t first = clock_.NowUnixMs() + 1000;
  store.WithKey("k", [&](LockedKeys& keys) {
    const Version version = versions_.Next();
    EXPECT_TRUE(keys.SetExpireAt("k", first, version));
    EXPECT_EQ(keys.Find("k")->expire_at_unix_ms, first);
    EXPECT_EQ(keys.Find("k")->version, version);
    EXPECT_EQ(keys.Find("k")->value, "value");
  });
  EXPECT_EQ(store.VolatileKeyCount(), 1u);
  store.WithKey("k", [&](LockedKeys& keys) {
    EXPECT_TRUE(keys.SetExpireAt("k", first + 500, versions_.Next()));
    EXPECT_EQ(keys.Find("k")->expire_at_unix_ms, first + 500);
    EXPECT_TRUE(keys.SetExpireAt("k", 0, versions_.Next()));
    EXPECT_EQ(keys.Find("k")->expire_at_unix_ms, 0);
    EXPECT_EQ(keys.Find("k")->value, "value");
  });
  EXPECT_FALSE(store.WithKey("missing", [&](LockedKeys& keys) {
    return keys.SetExpireAt("missing", first, versions_.Next());
  }));
  EXPECT_EQ(store.VolatileKeyCount(), 0u);
  clock_.AdvanceMs(10'000);
  EXPECT_EQ(Get(store, "k"), "value");
}

TEST_F(StoreTest, ApplyIfNewerKeepsTheHighestVersion) {
  Store store(Options(), clock_);
  const uint64_t now_stamp = StampAtUnixMs(clock_.NowUnixMs());
  const Version v1{now_stamp + 1, 2, 1};
  const Version v2{now_stamp + 2, 1, 1};
  const Version v2_higher_origin{now_stamp + 2, 3, 1};
  store.WithKey("k", [&](LockedKeys& keys) {
    EXPECT_TRUE(keys.ApplyIfNewer(EntryView{"k", "two", v2, 0, false}));
    EXPECT_FALSE(keys.ApplyIfNewer(EntryView{"k", "one", v1, 0, false}));
    EXPECT_FALSE(keys.ApplyIfNewer(EntryView{"k", "again", v2, 0, false}));  // duplicate
    EXPECT_EQ(keys.Find("k")->value, "two");
    // Same stamp: the higher origin wins; a tombstone is a change like any other.
    EXPECT_TRUE(keys.ApplyIfNewer(EntryView{"k", "", v2_higher_origin, 0, true}));
    EXPECT_FALSE(keys.Find("k").has_value());
    EXPECT_FALSE(keys.ApplyIfNewer(EntryView{"k", "late", v2, 0, false}));
    EXPECT_FALSE(keys.Find("k").has_value());
  });
  EXPECT_EQ(store.TombstoneCount(), 1u);
}

TEST_F(StoreTest, AnExpiredEntryStillBeatsOlderChanges) {
  // Two members must converge whether or not they noticed the expiry before an older change
  // arrived: the expired entry's version still decides.
  Store store(Options(), clock_);
  const uint64_t now_stamp = StampAtUnixMs(clock_.NowUnixMs());
  const Version newer{now_stamp + 10, 1, 1};
  const Version older{now_stamp + 5, 2, 1};
  store.WithKey(
      "k", [&](LockedKeys& keys) { keys.Set("k", "expiring", newer, clock_.NowUnixMs() + 1); });
  clock_.AdvanceMs(1);
  EXPECT_FALSE(store.WithKey("k", [&](LockedKeys& keys) {
    return keys.ApplyIfNewer(EntryView{"k", "older", older, 0, false});
  }));
  EXPECT_EQ(Get(store, "k"), std::nullopt);  // now noticed: a tombstone with `newer`
  EXPECT_FALSE(store.WithKey("k", [&](LockedKeys& keys) {
    return keys.ApplyIfNewer(EntryView{"k", "older", older, 0, false});
  }));
  EXPECT_EQ(Get(store, "k"), std::nullopt);
}

TEST_F(StoreTest, AWritesExpiryReportedElsewhereSupersedesTheWriteNeverTheReverse) {
  // A member whose clock is ahead ships a write it has expired as a tombstone under the write's
  // own version. Both members must end at that tombstone whichever copy comes first.
  const Version version{StampAtUnixMs(clock_.NowUnixMs()), 4, 7};
  const int64_t expire_at = clock_.NowUnixMs() + 60'000;  // still live on this clock
  const EntryView write{"k", "v", version, expire_at, false};
  const EntryView expiry{"k", "", version, 0, true};

  Store write_first(Options(), clock_);
  write_first.WithKey("k", [&](LockedKeys& keys) {
    EXPECT_TRUE(keys.ApplyIfNewer(write));
    EXPECT_TRUE(keys.ApplyIfNewer(expiry));
    EXPECT_FALSE(keys.ApplyIfNewer(expiry));  // a duplicate
    EXPECT_FALSE(keys.Find("k").has_value());
  });
  Store expiry_first(Options(), clock_);
  expiry_first.WithKey("k", [&](LockedKeys& keys) {
    EXPECT_TRUE(keys.ApplyIfNewer(expiry));
    EXPECT_FALSE(keys.ApplyIfNewer(write));  // the live copy does not undo the expiry
    EXPECT_FALSE(keys.Find("k").has_value());
  });
  EXPECT_EQ(write_first.VolatileKeyCount(), 0u);
  EXPECT_EQ(write_first.TombstoneCount(), 1u);
  EXPECT_EQ(write_first.Digest(), expiry_first.Digest());
  // A delete is a change of its own, with its own version: it never shares the write's.
  EXPECT_TRUE(Supersedes(expiry, write));
  EXPECT_FALSE(Supersedes(write, expiry));
  EXPECT_FALSE(Supersedes(expiry, expiry));
}

TEST_F(StoreTest, ApplyingAnAlreadyExpiredChangeStoresATombstone) {
  Store store(Options(), clock_);
  const Version version{StampAtUnixMs(clock_.NowUnixMs()), 9, 1};
  store.WithKey("k", [&](LockedKeys& keys) {
    EXPECT_TRUE(keys.ApplyIfNewer(EntryView{"k", "v", version, clock_.NowUnixMs(), false}));
    const std::optional<EntryView> entry = keys.FindAny("k");
    ASSERT_TRUE(entry.has_value());
    EXPECT_TRUE(entry->tombstone);
    EXPECT_EQ(entry->version, version);
  });
  EXPECT_EQ(store.KeyCount(), 0u);
  EXPECT_EQ(store.TombstoneCount(), 1u);
}

TEST_F(StoreTest, WithKeyAndWithKeysReturnTheCallbackResult) {
  Store store(Options(), clock_);
  EXPECT_EQ(store.WithKey("k", [](LockedKeys&) { return 42; }), 42);
  const std::string_view keys[] = {"a", "b"};
  EXPECT_EQ(store.WithKeys(keys, [](LockedKeys&) { return std::string("done"); }), "done");
}

TEST_F(StoreTest, WithKeysSeesAllKeysEvenWhenShardsRepeat) {
  Store store(Options(4), clock_);  // 40 keys over 4 shards: every shard many times
  std::vector<std::string> owned;
  owned.reserve(41);
  for (int i = 0; i < 40; ++i) {
    owned.push_back(Key(i));
  }
  owned.push_back(Key(0));  // a duplicate key too
  std::vector<std::string_view> keys(owned.begin(), owned.end());
  store.WithKeys(keys, [&](LockedKeys& locked) {
    for (std::string_view key : keys) {
      locked.Set(key, key, versions_.Next(), 0);
    }
  });
  EXPECT_EQ(store.KeyCount(), 40u);
  int deleted = 0;
  store.WithKeys(keys, [&](LockedKeys& locked) {
    for (std::string_view key : keys) {
      deleted += locked.Delete(key, versions_.Next()) ? 1 : 0;
    }
  });
  EXPECT_EQ(deleted, 40);
  EXPECT_EQ(store.KeyCount(), 0u);
}

TEST_F(StoreTest, RenameLikeMoveAcrossShards) {
  Store store(Options(64), clock_);
  const int64_t expire_at = clock_.NowUnixMs() + 5000;
  Set(store, "source", "payload", expire_at);
  const std::string_view both[] = {"source", "target"};
  store.WithKeys(both, [&](LockedKeys& keys) {
    const std::optional<EntryView> entry = keys.Find("source");
    ASSERT_TRUE(entry.has_value());
    keys.Set("target", entry->value, versions_.Next(), entry->expire_at_unix_ms);
    keys.Delete("source", versions_.Next());
    EXPECT_EQ(keys.Find("target")->expire_at_unix_ms, expire_at);
  });
  EXPECT_EQ(Get(store, "target"), "payload");
  EXPECT_EQ(Get(store, "source"), std::nullopt);
}

TEST_F(StoreTest, ShardIndexIsStableAndSpread) {
  Store store(Options(64), clock_);
  std::set<uint32_t> used;
  for (int i = 0; i < 2000; ++i) {
    const uint32_t index = store.ShardIndexOf(Key(i));
    EXPECT_LT(index, 64u);
    EXPECT_EQ(index, store.ShardIndexOf(Key(i)));
    used.insert(index);
  }
  EXPECT_EQ(used.size(), 64u);
}

TEST_F(StoreTest, ScanVisitsEachLiveEntryOnceWhenNothingChanges) {
  Store store(Options(32), clock_);
  for (int i = 0; i < 5000; ++i) {
    Set(store, Key(i), "v");
  }
  for (size_t count : {size_t{1}, size_t{10}, size_t{1000}}) {
    const auto seen = ScanAll(store, count, false);
    ASSERT_EQ(seen.size(), 5000u) << count;
    for (const auto& [key, times] : seen) {
      ASSERT_EQ(times, 1) << key;
    }
  }
}

TEST_F(StoreTest, ScanOfAnEmptyStoreEnds) {
  Store store(Options(8), clock_);
  EXPECT_TRUE(ScanAll(store, 10, true).empty());
  Store single(Options(1), clock_);
  EXPECT_EQ(single.Scan(0, 10, true, [](const EntryView&) {}), 0u);
}

TEST_F(StoreTest, ScanCallsCoverOneShardEach) {
  Store store(Options(8), clock_);
  for (int i = 0; i < 800; ++i) {
    Set(store, Key(i), "v");
  }
  uint64_t cursor = 0;
  do {
    std::set<uint32_t> shards;
    cursor = store.Scan(cursor, 16, false, [&](const EntryView& entry) {
      shards.insert(store.ShardIndexOf(entry.key));
    });
    EXPECT_LE(shards.size(), 1u);
  } while (cursor != 0);
}

TEST_F(StoreTest, ScanShowsTombstonesOnlyWhenAskedAndSkipsExpiredEntries) {
  Store store(Options(4), clock_);
  Set(store, "live", "v");
  Set(store, "deleted", "v");
  Delete(store, "deleted");
  Set(store, "expiring", "v", clock_.NowUnixMs() + 10);
  clock_.AdvanceMs(10);
  EXPECT_EQ(ScanAll(store, 10, false), (std::map<std::string, int>{{"live", 1}}));
  std::map<std::string, bool> tombstones;
  uint64_t cursor = 0;
  do {
    cursor = store.Scan(cursor, 10, true, [&](const EntryView& entry) {
      tombstones[std::string(entry.key)] = entry.tombstone;
      if (entry.tombstone) {
        EXPECT_EQ(entry.value, "");
      }
    });
  } while (cursor != 0);
  EXPECT_EQ(tombstones,
            (std::map<std::string, bool>{{"live", false}, {"deleted", true}, {"expiring", true}}));
  EXPECT_EQ(store.ExpiredKeysTotal(), 0u);  // Scan does not remove
}

TEST_F(StoreTest, ScanVisitsEveryEntryAcrossGrowth) {
  Store store(Options(4), clock_);
  for (int i = 0; i < 200; ++i) {
    Set(store, Key(i), "stable");
  }
  std::set<std::string> seen;
  int next = 1000;
  uint64_t cursor = 0;
  do {
    cursor = store.Scan(cursor, 5, false, [&](const EntryView& entry) { seen.emplace(entry.key); });
    // Tables double repeatedly; bounded, or they would outgrow the scan forever.
    for (int i = 0; i < 100 && next < 20'000; ++i) {
      Set(store, Key(next++), "new");
    }
  } while (cursor != 0);
  for (int i = 0; i < 200; ++i) {
    EXPECT_EQ(seen.count(Key(i)), 1u) << Key(i);
  }
}

TEST_F(StoreTest, ScanVisitsEveryEntryAcrossShrink) {
  Store store(Options(4), clock_);
  for (int i = 0; i < 100; ++i) {
    Set(store, Key(i), "stable");
  }
  for (int i = 100; i < 8000; ++i) {
    Set(store, Key(i), "doomed");
  }
  // Tombstones stay in the tables; purge them so that the tables actually shrink.
  int next_doomed = 100;
  std::set<std::string> seen;
  uint64_t cursor = 0;
  do {
    cursor = store.Scan(cursor, 5, false, [&](const EntryView& entry) { seen.emplace(entry.key); });
    for (int i = 0; i < 300 && next_doomed < 8000; ++i) {
      Delete(store, Key(next_doomed++));
    }
    clock_.AdvanceMs(61'000);
    store.ActiveExpireCycle(100'000);
  } while (cursor != 0);
  EXPECT_EQ(store.TombstoneCount(), 0u);
  for (int i = 0; i < 100; ++i) {
    EXPECT_EQ(seen.count(Key(i)), 1u) << Key(i);
  }
}

TEST_F(StoreTest, ScanAcceptsAGarbageCursor) {
  Store store(Options(4), clock_);
  for (int i = 0; i < 100; ++i) {
    Set(store, Key(i), "v");
  }
  uint64_t cursor = ~uint64_t{0};
  int calls = 0;
  do {
    cursor = store.Scan(cursor, 10, false, [](const EntryView&) {});
    ASSERT_LT(++calls, 10'000);
  } while (cursor != 0);
}

TEST_F(StoreTest, DigestIgnoresInsertionOrderAndShardCount) {
  ManualClock clock;
  std::vector<std::pair<std::string, Version>> writes;
  writes.reserve(3000);
  for (int i = 0; i < 3000; ++i) {
    writes.emplace_back(Key(i), Version{uint64_t(i) + 1, 1, uint64_t(i) + 1});
  }
  Store forward(Options(1), clock);
  Store backward(Options(256), clock);
  for (const auto& write : writes) {
    forward.WithKey(write.first, [&](LockedKeys& keys) {
      keys.Set(write.first, "v" + write.first, write.second, 0);
    });
  }
  for (auto it = writes.rbegin(); it != writes.rend(); ++it) {
    backward.WithKey(
        it->first, [&](LockedKeys& keys) { keys.Set(it->first, "v" + it->first, it->second, 0); });
  }
  EXPECT_EQ(forward.Digest(), backward.Digest());
  EXPECT_NE(forward.Digest(), 0u);
  // Any difference in one entry changes it.
  backward.WithKey(Key(7), [&](LockedKeys& keys) {
    keys.Set(Key(7), "v" + Key(7), Version{8, 1, 9}, 0);
  });
  EXPECT_NE(forward.Digest(), backward.Digest());
}

TEST_F(StoreTest, DigestCountsOnlyLiveUnexpiredEntries) {
  Store store(Options(8), clock_);
  Store expected(Options(8), clock_);
  const Version version{StampAtUnixMs(clock_.NowUnixMs()), 1, 1};
  for (Store* target : {&store, &expected}) {
    target->WithKey("live", [&](LockedKeys& keys) { keys.Set("live", "v", version, 0); });
  }
  EXPECT_EQ(store.Digest(), expected.Digest());
  store.WithKey("dead", [&](LockedKeys& keys) {
    keys.Set("dead", "v", version, 0);
    keys.Delete("dead", Version{version.stamp + 1, 1, 2});
  });
  store.WithKey("brief",
                [&](LockedKeys& keys) { keys.Set("brief", "v", version, clock_.NowUnixMs() + 5); });
  EXPECT_NE(store.Digest(), expected.Digest());
  clock_.AdvanceMs(5);
  EXPECT_EQ(store.Digest(), expected.Digest());
  EXPECT_EQ(Store(Options(8), clock_).Digest(), 0u);
}

TEST_F(StoreTest, ActiveExpireCycleIsBoundedAndEventuallyExpiresEverything) {
  Store store(Options(16), clock_);
  for (int i = 0; i < 1000; ++i) {
    Set(store, Key(i), "v", clock_.NowUnixMs() + 100);
  }
  for (int i = 1000; i < 1100; ++i) {
    Set(store, Key(i), "v", clock_.NowUnixMs() + 1'000'000);
  }
  for (int i = 1100; i < 1200; ++i) {
    Set(store, Key(i), "v");
  }
  EXPECT_EQ(store.ActiveExpireCycle(1000), 0u);  // nothing due yet
  clock_.AdvanceMs(100);
  const size_t first = store.ActiveExpireCycle(50);
  EXPECT_GT(first, 0u);
  EXPECT_LE(first, 50u);
  size_t total = first;
  for (int round = 0; round < 100 && total < 1000; ++round) {
    total += store.ActiveExpireCycle(50);
  }
  EXPECT_EQ(total, 1000u);
  EXPECT_EQ(store.ExpiredKeysTotal(), 1000u);
  EXPECT_EQ(store.KeyCount(), 200u);
  EXPECT_EQ(store.VolatileKeyCount(), 100u);
  // Expired keys left tombstones; they are younger than the TTL, so they stay.
  EXPECT_EQ(store.TombstoneCount(), 1000u);
  for (int i = 1000; i < 1200; ++i) {
    EXPECT_EQ(Get(store, Key(i)), "v");
  }
}

TEST_F(StoreTest, ActiveExpireCyclePurgesOldTombstonesUnlessPaused) {
  Store store(Options(4), clock_);
  for (int i = 0; i < 500; ++i) {
    Set(store, Key(i), "v");
  }
  for (int i = 0; i < 500; ++i) {
    Delete(store, Key(i));
  }
  EXPECT_EQ(store.TombstoneCount(), 500u);
  clock_.AdvanceMs(59'999);
  store.ActiveExpireCycle(10'000);
  EXPECT_EQ(store.TombstoneCount(), 500u);  // younger than tombstone_ttl_ms
  clock_.AdvanceMs(1);
  store.PauseTombstonePurge();
  store.PauseTombstonePurge();
  store.ActiveExpireCycle(10'000);
  store.ResumeTombstonePurge();
  store.ActiveExpireCycle(10'000);
  EXPECT_EQ(store.TombstoneCount(), 500u);  // one pause still outstanding
  store.ResumeTombstonePurge();
  for (int round = 0; round < 100 && store.TombstoneCount() > 0; ++round) {
    store.ActiveExpireCycle(64);
  }
  EXPECT_EQ(store.TombstoneCount(), 0u);
  std::string value;
  EXPECT_FALSE(FindAnyCopy(store, Key(1), &value).has_value());
}

TEST_F(StoreTest, MemoryIsAccountedAndClearGivesItBack) {
  Store store(Options(64), clock_);
  const size_t empty = store.MemoryBytes();
  EXPECT_GT(empty, 64 * sizeof(Shard) - 1);
  const std::string value(100, 'v');
  constexpr int kKeys = 20'000;
  for (int i = 0; i < kKeys; ++i) {
    char key[17];
    std::snprintf(key, sizeof(key), "key:%012d", i);  // 16-byte keys
    Set(store, key, value);
  }
  const double per_key = static_cast<double>(store.MemoryBytes() - empty) / kKeys;
  // 156-byte blocks (up to 168 usable under glibc) plus 8-16 bytes of buckets.
  EXPECT_GE(per_key, 156.0);
  EXPECT_LE(per_key, 190.0);
  for (int i = 0; i < kKeys; i += 2) {
    char key[17];
    std::snprintf(key, sizeof(key), "key:%012d", i);
    Set(store, key, value, clock_.NowUnixMs() + 1000);
  }
  EXPECT_EQ(store.VolatileKeyCount(), size_t{kKeys} / 2);
  store.Clear();
  EXPECT_EQ(store.MemoryBytes(), empty);
  EXPECT_EQ(store.KeyCount(), 0u);
  EXPECT_EQ(store.VolatileKeyCount(), 0u);
  EXPECT_EQ(store.Digest(), 0u);
  EXPECT_TRUE(ScanAll(store, 100, true).empty());
}

TEST_F(StoreTest, ClearRemovesTombstonesButKeepsTheExpiredTotal) {
  Store store(Options(4), clock_);
  Set(store, "a", "v", clock_.NowUnixMs() + 1);
  Set(store, "b", "v");
  Delete(store, "b");
  clock_.AdvanceMs(1);
  EXPECT_EQ(Get(store, "a"), std::nullopt);
  store.Clear();
  EXPECT_EQ(store.TombstoneCount(), 0u);
  EXPECT_EQ(store.ExpiredKeysTotal(), 1u);
  Set(store, "a", "back");
  EXPECT_EQ(Get(store, "a"), "back");
}

// Many writers on disjoint key ranges, a scanner, active expiry and statistics readers, all at
// once. Checks the scan guarantee for keys nobody touches, and at the end that the store holds
// exactly what each writer's own model says.
TEST_F(StoreTest, ConcurrentWritersScannerAndExpiry) {
  Store store(Options(64), clock_);
  constexpr int kStable = 500;
  constexpr int kWriters = 4;
  constexpr int kKeysPerWriter = 300;
  constexpr int kOpsPerWriter = 20'000;
  for (int i = 0; i < kStable; ++i) {
    Set(store, "stable:" + std::to_string(i), "s");
  }

  std::atomic<int> writers_left{kWriters};
  std::vector<std::map<std::string, std::string>> models(kWriters);
  std::vector<std::thread> threads;
  threads.reserve(kWriters + 2);
  for (int w = 0; w < kWriters; ++w) {
    threads.emplace_back([&, w] {
      Random random(static_cast<uint64_t>(w) + 1);
      std::map<std::string, std::string>& model = models[w];
      for (int op = 0; op < kOpsPerWriter; ++op) {
        const std::string key =
            "w" + std::to_string(w) + ":" + std::to_string(random.Uniform(kKeysPerWriter));
        const uint64_t choice = random.Uniform(10);
        if (choice < 6) {
          const std::string value(random.Uniform(200), static_cast<char>('a' + w));
          store.WithKey(key, [&](LockedKeys& keys) { keys.Set(key, value, versions_.Next(), 0); });
          model[key] = value;
        } else if (choice < 8) {
          store.WithKey(key, [&](LockedKeys& keys) { keys.Delete(key, versions_.Next()); });
          model.erase(key);
        } else if (choice < 9) {
          // A far-future expiry: exercises the volatile lists without racing the clock.
          store.WithKey(key, [&](LockedKeys& keys) {
            keys.SetExpireAt(key, clock_.NowUnixMs() + 1'000'000'000, versions_.Next());
          });
        } else {
          const std::string other = key + "x";
          const std::string_view both[] = {key, other};
          store.WithKeys(both, [&](LockedKeys& keys) {
            keys.Set(key, "pair", versions_.Next(), 0);
            keys.Set(other, "pair", versions_.Next(), 0);
          });
          model[key] = "pair";
          model[other] = "pair";
        }
      }
      writers_left.fetch_sub(1);
    });
  }
  std::atomic<int> full_scans{0};
  threads.emplace_back([&] {
    while (writers_left.load() > 0 || full_scans.load() == 0) {
      std::set<std::string> seen;
      uint64_t cursor = 0;
      do {
        cursor = store.Scan(cursor, 8, full_scans.load() % 2 == 1, [&](const EntryView& entry) {
          if (entry.key.starts_with("stable:")) {
            seen.emplace(entry.key);
          }
        });
      } while (cursor != 0);
      ASSERT_EQ(seen.size(), size_t{kStable});
      full_scans.fetch_add(1);
    }
  });
  threads.emplace_back([&] {
    while (writers_left.load() > 0) {
      store.ActiveExpireCycle(100);
      EXPECT_LE(store.VolatileKeyCount(), store.KeyCount() + 1000);  // racy but sane
      (void)store.MemoryBytes();
      (void)store.TombstoneCount();
      clock_.AdvanceMs(1);
    }
  });
  for (std::thread& thread : threads) {
    thread.join();
  }

  EXPECT_GT(full_scans.load(), 0);
  size_t expected_keys = kStable;
  for (const auto& model : models) {
    expected_keys += model.size();
    for (const auto& [key, value] : model) {
      ASSERT_EQ(Get(store, key), value) << key;
    }
  }
  EXPECT_EQ(store.KeyCount(), expected_keys);
  EXPECT_EQ(ScanAll(store, 100, false).size(), expected_keys);
  EXPECT_EQ(store.ExpiredKeysTotal(), 0u);
}

}  // namespace
}  // namespace weft::storage
