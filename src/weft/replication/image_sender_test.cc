#include "weft/replication/image_sender.h"

#include <gtest/gtest.h>

namespace weft::replication {
namespace {

// A store big enough for many chunks of 4 KiB.
class ImageSenderPacingTest : public ::testing::Test {
 protected:
  ImageSenderPacingTest() : store_(storage::StoreOptions{.shard_count = 16}, clock_) {
    storage::VersionSource versions(clock_, /*origin=*/1);
    for (int i = 0; i < 4000; ++i) {
      const std::string key = "key" + std::to_string(i);
      store_.WithKey(key, [&](storage::LockedKeys& keys) {
        keys.ApplyIfNewer(
            storage::EntryView{key, std::string(100, 'v'), versions.Next(), 0, false});
      });
    }
  }

  ImageSender::Options PacedOptions() {
    ImageSender::Options options;
    options.chunk_bytes = 4096;
    options.paced = true;
    options.pace_target_us = 4'000;
    options.pace_start_bytes_per_s = 1 << 20;
    options.pace_min_bytes_per_s = 256 << 10;
    options.pace_step_bytes_per_s = 256 << 10;
    return options;
  }

  // Bytes the sender lets out over `ms` milliseconds, polled every millisecond.
  uint64_t BytesOver(ImageSender& sender, int ms) {
    const uint64_t before = sender.bytes_sent();
    FrameType type;
    std::string payload;
    for (int i = 0; i < ms; ++i) {
      clock_.AdvanceMs(1);
      while (sender.Next(&type, &payload) == ImageSender::Fill::kChunk) {
      }
    }
    return sender.bytes_sent() - before;
  }

  ManualClock clock_;
  storage::Store store_;
};

TEST_F(ImageSenderPacingTest, HalvesWhenLiveChangesWaitAndGrowsWhenTheyDoNot) {
  ImageSender sender(store_, clock_, /*credit_bytes=*/uint64_t{1} << 30, PacedOptions());
  EXPECT_EQ(sender.paced_rate_bytes_per_s(), uint64_t{1} << 20);
  sender.Pace(10'000);  // live changes waited 10 ms: back off
  EXPECT_EQ(sender.paced_rate_bytes_per_s(), uint64_t{512} << 10);
  sender.Pace(10'000);
  sender.Pace(10'000);  // never below the floor
  EXPECT_EQ(sender.paced_rate_bytes_per_s(), uint64_t{256} << 10);
  sender.Pace(1'000);  // under the target: additive increase
  EXPECT_EQ(sender.paced_rate_bytes_per_s(), uint64_t{512} << 10);
  sender.Pace(std::nullopt);  // no live traffic at all: double
  EXPECT_EQ(sender.paced_rate_bytes_per_s(), uint64_t{1} << 20);
}

TEST_F(ImageSenderPacingTest, SendsAtThePacedRate) {
  ImageSender sender(store_, clock_, /*credit_bytes=*/uint64_t{1} << 30, PacedOptions());
  // 1 MiB/s for 200 ms is ~205 KiB, give or take one chunk and the 20 ms burst.
  const uint64_t fast = BytesOver(sender, 200);
  EXPECT_GT(fast, 180u << 10);
  EXPECT_LT(fast, 240u << 10);
  sender.Pace(10'000);
  sender.Pace(10'000);  // 256 KiB/s
  const uint64_t slow = BytesOver(sender, 200);
  EXPECT_GT(slow, 35u << 10);
  EXPECT_LT(slow, 70u << 10);
}

TEST_F(ImageSenderPacingTest, UnpacedWithoutACapIsUnlimited) {
  ImageSender::Options options;
  options.chunk_bytes = 4096;
  ImageSender sender(store_, clock_, /*credit_bytes=*/uint64_t{1} << 30, options);
  FrameType type;
  std::string payload;
  while (sender.Next(&type, &payload) == ImageSender::Fill::kChunk) {
  }
  EXPECT_EQ(sender.entries_sent(), 4000u);
}

}  // namespace
}  // namespace weft::replication
