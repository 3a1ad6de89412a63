#include "weft/storage/version.h"

#include <algorithm>
#include <thread>
#include <vector>

#include "gtest/gtest.h"

#include "weft/base/clock.h"

namespace weft::storage {
namespace {

TEST(VersionTest, NewerThanComparesStampThenOrigin) {
  const Version base{100, 5, 1};
  EXPECT_TRUE((Version{101, 1, 1}).NewerThan(base));
  EXPECT_FALSE((Version{99, 9, 9}).NewerThan(base));
  EXPECT_TRUE((Version{100, 6, 1}).NewerThan(base));
  EXPECT_FALSE((Version{100, 4, 7}).NewerThan(base));
  // seq does not decide conflicts, and nothing is newer than itself.
  EXPECT_FALSE((Version{100, 5, 99}).NewerThan(base));
  EXPECT_FALSE(base.NewerThan(base));
}

TEST(VersionTest, StampSplitsIntoMillisecondsAndCounter) {
  const uint64_t stamp = StampAtUnixMs(1'800'000'000'123) | 7;
  EXPECT_EQ(StampUnixMs(stamp), 1'800'000'000'123);
  EXPECT_EQ(stamp & 0xffff, 7u);
}

TEST(VersionSourceTest, NextIsStrictlyIncreasingWithDenseSeq) {
  ManualClock clock;
  VersionSource source(clock, 42);
  Version previous = source.Next();
  EXPECT_EQ(previous.seq, 1u);
  EXPECT_EQ(previous.origin, 42u);
  EXPECT_EQ(StampUnixMs(previous.stamp), clock.NowUnixMs());
  for (uint64_t i = 2; i < 1000; ++i) {
    const Version next = source.Next();
    EXPECT_GT(next.stamp, previous.stamp);
    EXPECT_TRUE(next.NewerThan(previous));
    EXPECT_EQ(next.seq, i);
    previous = next;
  }
}

TEST(VersionSourceTest, NextFollowsTheClock) {
  ManualClock clock;
  VersionSource source(clock, 1);
  source.Next();
  source.Next();
  clock.AdvanceMs(5);
  const Version version = source.Next();
  EXPECT_EQ(version.stamp, StampAtUnixMs(clock.NowUnixMs()));
}

TEST(VersionSourceTest, NextStaysMonotoneWhenTheClockStepsBack) {
  ManualClock clock;
  VersionSource source(clock, 1);
  const Version before = source.Next();
  clock.AdvanceMs(-10'000);
  const Version after = source.Next();
  EXPECT_EQ(after.stamp, before.stamp + 1);
}

TEST(VersionSourceTest, ObserveMovesPastARemoteStamp) {
  ManualClock clock;
  VersionSource source(clock, 1);
  const uint64_t remote = StampAtUnixMs(clock.NowUnixMs() + 60'000) + 3;
  source.Observe(remote);
  EXPECT_EQ(source.last_stamp(), remote);
  const Version next = source.Next();
  EXPECT_EQ(next.stamp, remote + 1);
  EXPECT_TRUE(next.NewerThan(Version{remote, 999, 1}));
  // An older stamp does not move the clock back.
  source.Observe(1);
  EXPECT_EQ(source.Next().stamp, remote + 2);
}

TEST(VersionSourceTest, ConcurrentCallersGetDistinctOrderedVersions) {
  ManualClock clock;
  VersionSource source(clock, 7);
  constexpr int kThreads = 4;
  constexpr int kPerThread = 5000;
  std::vector<std::vector<Version>> seen(kThreads);
  std::vector<std::thread> threads;
  threads.reserve(kThreads);
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < kPerThread; ++i) {
        seen[t].push_back(source.Next());
      }
    });
  }
  for (std::thread& thread : threads) {
    thread.join();
  }
  std::vector<Version> all;
  for (const auto& versions : seen) {
    // Each thread sees its own versions increasing in both stamp and seq.
    for (size_t i = 1; i < versions.size(); ++i) {
      EXPECT_GT(versions[i].stamp, versions[i - 1].stamp);
      EXPECT_GT(versions[i].seq, versions[i - 1].seq);
    }
    all.insert(all.end(), versions.begin(), versions.end());
  }
  std::sort(all.begin(), all.end(),
            [](const Version& a, const Version& b) { return a.seq < b.seq; });
  for (size_t i = 0; i < all.size(); ++i) {
    ASSERT_EQ(all[i].seq, i + 1);  // dense
    if (i > 0) {
      ASSERT_GT(all[i].stamp, all[i - 1].stamp);  // seq order is stamp order
    }
  }
}

}  // namespace
}  // namespace weft::storage
