#include "weft/replication/image_pacer.h"

#include <gtest/gtest.h>

namespace weft::replication {
namespace {

ImagePacer::Options PacedOptions() {
  ImagePacer::Options options;
  options.chunk_bytes = 4096;
  options.paced = true;
  options.pace_target_us = 4'000;
  options.pace_start_bytes_per_s = 1 << 20;
  options.pace_min_bytes_per_s = 256 << 10;
  options.pace_step_bytes_per_s = 256 << 10;
  return options;
}

// Bytes let out over `ms` milliseconds in chunks of `chunk`, polled every millisecond.
uint64_t BytesOver(ImagePacer& pacer, int64_t* now_us, int ms, size_t chunk) {
  uint64_t bytes = 0;
  for (int i = 0; i < ms; ++i) {
    *now_us += 1000;
    while (pacer.WaitUs(*now_us) == 0) {
      pacer.Spend(chunk);
      bytes += chunk;
    }
  }
  return bytes;
}

TEST(ImagePacerTest, HalvesWhenLiveChangesWaitAndGrowsWhenTheyDoNot) {
  ImagePacer pacer(PacedOptions(), 0);
  EXPECT_EQ(pacer.rate_bytes_per_s(), uint64_t{1} << 20);
  pacer.Pace(10'000);  // live changes waited 10 ms: back off
  EXPECT_EQ(pacer.rate_bytes_per_s(), uint64_t{512} << 10);
  pacer.Pace(10'000);
  pacer.Pace(10'000);  // never below the floor
  EXPECT_EQ(pacer.rate_bytes_per_s(), uint64_t{256} << 10);
  pacer.Pace(1'000);  // under the target: additive increase
  EXPECT_EQ(pacer.rate_bytes_per_s(), uint64_t{512} << 10);
  pacer.Pace(std::nullopt);  // no live traffic at all: double
  EXPECT_EQ(pacer.rate_bytes_per_s(), uint64_t{1} << 20);
}

TEST(ImagePacerTest, LetsOutThePacedRate) {
  ImagePacer pacer(PacedOptions(), 0);
  int64_t now_us = 0;
  // 1 MiB/s for 200 ms is ~205 KiB, give or take one chunk and the 20 ms burst.
  const uint64_t fast = BytesOver(pacer, &now_us, 200, 4096);
  EXPECT_GT(fast, 180u << 10);
  EXPECT_LT(fast, 240u << 10);
  pacer.Pace(10'000);
  pacer.Pace(10'000);  // 256 KiB/s
  const uint64_t slow = BytesOver(pacer, &now_us, 200, 4096);
  EXPECT_GT(slow, 35u << 10);
  EXPECT_LT(slow, 70u << 10);
}

TEST(ImagePacerTest, SaysHowLongToWait) {
  ImagePacer::Options options;
  options.rate_limit_bytes_per_s = 1'000'000;  // a byte per microsecond
  options.chunk_bytes = 1000;
  ImagePacer pacer(options, 0);
  EXPECT_EQ(pacer.WaitUs(0), 1);  // nothing saved up yet
  EXPECT_EQ(pacer.WaitUs(10), 0);
  pacer.Spend(1000);
  EXPECT_EQ(pacer.WaitUs(10), 990);
  EXPECT_EQ(pacer.WaitUs(1000), 1);
  EXPECT_EQ(pacer.WaitUs(1001), 0);
}

TEST(ImagePacerTest, UnpacedWithoutACapIsUnlimited) {
  ImagePacer::Options options;
  ImagePacer pacer(options, 0);
  EXPECT_EQ(pacer.rate_bytes_per_s(), 0u);
  pacer.Spend(1 << 30);
  EXPECT_EQ(pacer.WaitUs(0), 0);
}

}  // namespace
}  // namespace weft::replication
