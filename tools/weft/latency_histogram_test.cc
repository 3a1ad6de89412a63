#include "tools/weft/latency_histogram.h"

#include <algorithm>
#include <cmath>
#include <vector>

#include <gtest/gtest.h>

#include "weft/base/random.h"

namespace weft::tools {
namespace {

// The nearest-rank percentile of sorted values: what Percentile() approximates.
int64_t ReferencePercentile(const std::vector<int64_t>& sorted, double p) {
  if (p <= 0)
    return sorted.front();
  const size_t rank =
      static_cast<size_t>(std::ceil(p / 100.0 * static_cast<double>(sorted.size())));
  return sorted[std::max<size_t>(rank, 1) - 1];
}

void ExpectWithinOnePercent(int64_t actual, int64_t expected, double p) {
  const double tolerance = std::max(1.0, 0.01 * static_cast<double>(expected));
  EXPECT_NEAR(static_cast<double>(actual), static_cast<double>(expected), tolerance) << "p" << p;
}

TEST(LatencyHistogramTest, BucketsTileTheRangeWithoutGaps) {
  int64_t next = 0;
  for (size_t bucket = 0; bucket < LatencyHistogram::kBucketCount; ++bucket) {
    const int64_t lowest = LatencyHistogram::BucketLowest(bucket);
    const int64_t width = LatencyHistogram::BucketWidth(bucket);
    ASSERT_EQ(lowest, next) << bucket;
    ASSERT_EQ(LatencyHistogram::BucketOf(lowest), bucket);
    ASSERT_EQ(LatencyHistogram::BucketOf(lowest + width - 1), bucket);
    // The precision promise: a bucket is at most 1/128 of its values wide.
    ASSERT_LE(width * LatencyHistogram::kSubBucketCount, std::max<int64_t>(lowest, 128));
    next = lowest + width;
  }
  EXPECT_EQ(next - 1, LatencyHistogram::kValueUsMax);
}

TEST(LatencyHistogramTest, SmallValuesAreExact) {
  LatencyHistogram histogram;
  for (int64_t v = 1; v <= 100; ++v)
    histogram.Record(v);
  EXPECT_EQ(histogram.Count(), 100);
  EXPECT_EQ(histogram.Percentile(50), 50);
  EXPECT_EQ(histogram.Percentile(99), 99);
  EXPECT_EQ(histogram.Percentile(100), 100);
  EXPECT_EQ(histogram.Percentile(0), 1);
  EXPECT_EQ(histogram.Min(), 1);
  EXPECT_EQ(histogram.Max(), 100);
  EXPECT_DOUBLE_EQ(histogram.Mean(), 50.5);
}

TEST(LatencyHistogramTest, PercentilesMatchSortedReferenceOnRandomData) {
  Random random(20261128);
  for (int trial = 0; trial < 20; ++trial) {
    LatencyHistogram histogram;
    std::vector<int64_t> values;
    const int count = 1 + static_cast<int>(random.Uniform(20'000));
    for (int i = 0; i < count; ++i) {
      // Log-uniform from 1 µs to 100 s, the range the demo measures.
      const double exponent = static_cast<double>(random.Uniform(1'000'000)) / 1e6 * 8.0;
      const int64_t value = static_cast<int64_t>(std::pow(10.0, exponent));
      values.push_back(value);
      histogram.Record(value);
    }
    std::sort(values.begin(), values.end());
    for (double p : {0.0, 1.0, 50.0, 90.0, 99.0, 99.9, 99.99, 100.0})
      ExpectWithinOnePercent(histogram.Percentile(p), ReferencePercentile(values, p), p);
    EXPECT_EQ(histogram.Max(), values.back());
    EXPECT_EQ(histogram.Min(), values.front());
    EXPECT_EQ(histogram.Count(), count);
  }
}

TEST(LatencyHistogramTest, NarrowDistributionKeepsItsShape) {
  Random random(7);
  LatencyHistogram histogram;
  std::vector<int64_t> values;
  for (int i = 0; i < 50'000; ++i) {
    const int64_t value = 900 + static_cast<int64_t>(random.Uniform(200));
    values.push_back(value);
    histogram.Record(value);
  }
  std::sort(values.begin(), values.end());
  for (double p : {50.0, 99.0, 99.9})
    ExpectWithinOnePercent(histogram.Percentile(p), ReferencePercentile(values, p), p);
}

TEST(LatencyHistogramTest, MergeEqualsRecordingEverything) {
  Random random(3);
  LatencyHistogram a;
  LatencyHistogram b;
  LatencyHistogram both;
  for (int i = 0; i < 10'000; ++i) {
    const int64_t value = static_cast<int64_t>(random.Uniform(5'000'000));
    (i % 3 == 0 ? a : b).Record(value);
    both.Record(value);
  }
  a.Merge(b);
  EXPECT_EQ(a.Count(), both.Count());
  EXPECT_EQ(a.Min(), both.Min());
  EXPECT_EQ(a.Max(), both.Max());
  EXPECT_DOUBLE_EQ(a.Mean(), both.Mean());
  for (double p : {1.0, 50.0, 99.0, 99.9})
    EXPECT_EQ(a.Percentile(p), both.Percentile(p));
  LatencyHistogram empty;
  a.Merge(empty);
  EXPECT_EQ(a.Count(), both.Count());
  empty.Merge(both);
  EXPECT_EQ(empty.Min(), both.Min());
}

TEST(LatencyHistogramTest, ResetForgetsEverything) {
  LatencyHistogram histogram;
  histogram.Record(12345);
  histogram.Reset();
  EXPECT_EQ(histogram.Count(), 0);
  EXPECT_EQ(histogram.Max(), 0);
  EXPECT_EQ(histogram.Percentile(99), 0);
  histogram.Record(7);
  EXPECT_EQ(histogram.Min(), 7);
}

TEST(LatencyHistogramTest, OutOfRangeValuesAreClampedButMaxStaysExact) {
  LatencyHistogram histogram;
  histogram.Record(-5);
  EXPECT_EQ(histogram.Min(), 0);
  const int64_t huge = LatencyHistogram::kValueUsMax * 4;
  histogram.Record(huge);
  EXPECT_EQ(histogram.Max(), huge);
  EXPECT_EQ(histogram.Percentile(100), huge);
  EXPECT_GE(histogram.Percentile(99), LatencyHistogram::kValueUsMax / 2);
}

TEST(LatencyHistogramTest, RecordManyCountsEachValue) {
  LatencyHistogram histogram;
  histogram.RecordMany(10, 99);
  histogram.RecordMany(1'000'000, 1);
  EXPECT_EQ(histogram.Count(), 100);
  EXPECT_EQ(histogram.Percentile(99), 10);
  EXPECT_NEAR(static_cast<double>(histogram.Percentile(99.5)), 1e6, 1e4);
}

}  // namespace
}  // namespace weft::tools
