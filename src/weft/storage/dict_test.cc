#include "weft/storage/dict.h"

#include <bit>
#include <functional>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "gtest/gtest.h"

namespace weft::storage {
namespace {

const Version kVersion{1, 1, 1};

std::string Key(int i) {
  return "key:" + std::to_string(i);
}

void Add(Dict& dict, const std::string& key) {
  dict.Insert(Entry::CreateLive(key, "v" + key, kVersion, 0), Dict::Hash(key));
}

void Drop(Dict& dict, const std::string& key) {
  const uint64_t hash = Dict::Hash(key);
  Entry* entry = dict.Find(key, hash);
  ASSERT_NE(entry, nullptr) << key;
  dict.Remove(entry, hash);
}

// Runs a full scan, calling `between` after every step; returns how often each key was seen.
std::map<std::string, int> FullScan(const Dict& dict, size_t buckets_per_step,
                                    const std::function<void(int step)>& between) {
  std::map<std::string, int> seen;
  uint64_t cursor = 0;
  int step = 0;
  do {
    cursor = dict.Scan(cursor, buckets_per_step, SIZE_MAX,
                       [&](const Entry& entry) { ++seen[std::string(entry.key())]; });
    between(step++);
  } while (cursor != 0);
  return seen;
}

TEST(DictTest, EmptyDictOwnsNoBuckets) {
  Dict dict;
  EXPECT_EQ(dict.size(), 0u);
  EXPECT_EQ(dict.bucket_count(), 0u);
  EXPECT_EQ(dict.bucket_array_bytes(), 0u);
  EXPECT_EQ(dict.Find("x", Dict::Hash("x")), nullptr);
  EXPECT_EQ(dict.Scan(0, 10, 10, [](const Entry&) { FAIL(); }), 0u);
}

TEST(DictTest, InsertFindRemove) {
  Dict dict;
  for (int i = 0; i < 100; ++i) {
    Add(dict, Key(i));
  }
  EXPECT_EQ(dict.size(), 100u);
  for (int i = 0; i < 100; ++i) {
    const Entry* entry = dict.Find(Key(i), Dict::Hash(Key(i)));
    ASSERT_NE(entry, nullptr);
    EXPECT_EQ(entry->value(), "v" + Key(i));
  }
  EXPECT_EQ(dict.Find("missing", Dict::Hash("missing")), nullptr);
  for (int i = 0; i < 100; i += 2) {
    Drop(dict, Key(i));
  }
  EXPECT_EQ(dict.size(), 50u);
  for (int i = 0; i < 100; ++i) {
    EXPECT_EQ(dict.Find(Key(i), Dict::Hash(Key(i))) != nullptr, i % 2 == 1) << i;
  }
}

TEST(DictTest, LoadStaysAtMostOneAsItGrows) {
  Dict dict;
  uint64_t resizes = dict.resize_count();
  for (int i = 0; i < 5000; ++i) {
    Add(dict, Key(i));
    EXPECT_LE(dict.size(), dict.bucket_count());
    EXPECT_TRUE(std::has_single_bit(dict.bucket_count()));
  }
  EXPECT_EQ(dict.bucket_count(), 8192u);
  EXPECT_GT(dict.resize_count(), resizes);
}

TEST(DictTest, ShrinksWhenSparse) {
  Dict dict;
  for (int i = 0; i < 4096; ++i) {
    Add(dict, Key(i));
  }
  const size_t full = dict.bucket_count();
  for (int i = 0; i < 4090; ++i) {
    Drop(dict, Key(i));
  }
  EXPECT_LT(dict.bucket_count(), full / 64);
  EXPECT_GE(dict.bucket_count(), Dict::kBucketCountMin);
  for (int i = 4090; i < 4096; ++i) {
    EXPECT_NE(dict.Find(Key(i), Dict::Hash(Key(i))), nullptr);
  }
  for (int i = 4090; i < 4096; ++i) {
    Drop(dict, Key(i));
  }
  EXPECT_EQ(dict.size(), 0u);
  EXPECT_EQ(dict.bucket_count(), Dict::kBucketCountMin);
}

TEST(DictTest, ReplaceKeepsTheChainIntact) {
  Dict dict;
  // Few buckets, many keys per chain before the first growth.
  for (int i = 0; i < 4; ++i) {
    Add(dict, Key(i));
  }
  for (int i = 0; i < 4; ++i) {
    const uint64_t hash = Dict::Hash(Key(i));
    Entry* current = dict.Find(Key(i), hash);
    EntryPtr old = dict.Replace(current, Entry::CreateLive(Key(i), "new", kVersion, 0), hash);
    EXPECT_EQ(old.get(), current);
    EXPECT_EQ(old->next(), nullptr);
  }
  EXPECT_EQ(dict.size(), 4u);
  for (int i = 0; i < 4; ++i) {
    EXPECT_EQ(dict.Find(Key(i), Dict::Hash(Key(i)))->value(), "new");
  }
}

TEST(DictTest, ClearFreesEverything) {
  Dict dict;
  for (int i = 0; i < 1000; ++i) {
    Add(dict, Key(i));
  }
  const uint64_t resizes = dict.resize_count();
  dict.Clear();
  EXPECT_EQ(dict.size(), 0u);
  EXPECT_EQ(dict.bucket_count(), 0u);
  EXPECT_GT(dict.resize_count(), resizes);
  Add(dict, "again");
  EXPECT_EQ(dict.size(), 1u);
}

TEST(DictTest, ScanWithoutResizeVisitsEachEntryExactlyOnce) {
  Dict dict;
  for (int i = 0; i < 3000; ++i) {
    Add(dict, Key(i));
  }
  for (size_t step : {size_t{1}, size_t{7}, size_t{1} << 20}) {
    const auto seen = FullScan(dict, step, [](int) {});
    ASSERT_EQ(seen.size(), 3000u);
    for (const auto& [key, times] : seen) {
      EXPECT_EQ(times, 1) << key;
    }
  }
}

TEST(DictTest, ScanStopsAtTheEntryLimit) {
  Dict dict;
  for (int i = 0; i < 1000; ++i) {
    Add(dict, Key(i));
  }
  size_t visited = 0;
  const uint64_t cursor = dict.Scan(0, SIZE_MAX, 10, [&](const Entry&) { ++visited; });
  EXPECT_NE(cursor, 0u);
  EXPECT_GE(visited, 10u);
  EXPECT_LT(visited, 20u);  // stops at the end of the bucket that reached the limit
}

TEST(DictTest, ScanVisitsEveryEntryAcrossGrowth) {
  Dict dict;
  for (int i = 0; i < 100; ++i) {
    Add(dict, Key(i));
  }
  int next = 100;
  const auto seen = FullScan(dict, 3, [&](int) {
    // Several doublings mid-scan; bounded, or the table would outgrow the scan forever.
    for (int i = 0; i < 50 && next < 3000; ++i) {
      Add(dict, Key(next++));
    }
  });
  EXPECT_GE(dict.bucket_count(), 1024u);
  for (int i = 0; i < 100; ++i) {
    EXPECT_GE(seen.count(Key(i)), 1u) << Key(i);
  }
}

TEST(DictTest, ScanVisitsEveryEntryAcrossShrink) {
  Dict dict;
  for (int i = 0; i < 4000; ++i) {
    Add(dict, Key(i));
  }
  // Keys 0..49 stay; the rest disappear while the scan runs, shrinking the table.
  int removed = 50;
  const auto seen = FullScan(dict, 5, [&](int) {
    for (int i = 0; i < 400 && removed < 4000; ++i) {
      Drop(dict, Key(removed++));
    }
  });
  EXPECT_LT(dict.bucket_count(), 256u);
  for (int i = 0; i < 50; ++i) {
    EXPECT_GE(seen.count(Key(i)), 1u) << Key(i);
  }
}

TEST(DictTest, ScanSurvivesGrowAndShrinkBackAndForth) {
  Dict dict;
  for (int i = 0; i < 64; ++i) {
    Add(dict, Key(i));
  }
  int extra = 0;
  const auto seen = FullScan(dict, 2, [&](int step) {
    if (step % 2 == 0) {
      for (int i = 0; i < 500; ++i) {
        Add(dict, "extra:" + std::to_string(extra + i));
      }
    } else {
      for (int i = 0; i < 500; ++i) {
        Drop(dict, "extra:" + std::to_string(extra + i));
      }
      extra += 500;
    }
  });
  for (int i = 0; i < 64; ++i) {
    EXPECT_GE(seen.count(Key(i)), 1u) << Key(i);
  }
}

}  // namespace
}  // namespace weft::storage
