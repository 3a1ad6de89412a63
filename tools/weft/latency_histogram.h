// LatencyHistogram: a fixed-size log-linear histogram of latencies in microseconds.
//
// Like HdrHistogram with two significant digits: values below 128 µs are counted exactly;
// above, every power-of-two range [2^e, 2^(e+1)) is split into 128 equal buckets, so a bucket
// is at most 1/128 of its values wide and a reported percentile (the bucket's midpoint, clamped
// to the observed min and max) is within 0.4 % of the true one. Values from 0 to
// kValueUsMax (2^37 µs, about 38 hours) are tracked; larger ones are clamped into the top bucket
// (Max() still reports them exactly). Memory is fixed: kBucketCount counters, about 31 KiB.
//
// Used by the write-load generator (write_load.h) for per-phase and per-window latencies.
//
// Thread safety: none; callers that record from several threads merge per-thread histograms
// or hold a lock.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

namespace weft::tools {

class LatencyHistogram {
 public:
  // Values below this are stored exactly; each octave above is split into this many buckets.
  static constexpr int kSubBucketBits = 7;
  static constexpr int64_t kSubBucketCount = int64_t{1} << kSubBucketBits;
  // Largest value stored without clamping: 2^kTopBit - 1.
  static constexpr int kTopBit = 37;
  static constexpr int64_t kValueUsMax = (int64_t{1} << kTopBit) - 1;
  static constexpr size_t kBucketCount =
      static_cast<size_t>(kSubBucketCount * (kTopBit - kSubBucketBits + 1));

  LatencyHistogram();

  // Counts one latency. Negative values count as 0 (a clock step must not break a report).
  void Record(int64_t latency_us) { RecordMany(latency_us, 1); }
  // Counts `count` latencies of the same value. REQUIRES: count >= 0.
  void RecordMany(int64_t latency_us, int64_t count);

  // Adds every value counted by `other`.
  void Merge(const LatencyHistogram& other);

  // Forgets every value.
  void Reset();

  // The nearest-rank percentile: the value v such that at least p % of the values are <= v
  // (within the precision above). p is clamped to [0, 100]; Percentile(100) == Max(),
  // Percentile(0) == Min(). Returns 0 when empty.
  int64_t Percentile(double p) const;

  int64_t Count() const { return count_; }
  // Exact smallest and largest values recorded (0 when empty).
  int64_t Min() const { return count_ == 0 ? 0 : min_us_; }
  int64_t Max() const { return max_us_; }
  // Exact mean of the values (clamped ones counted at their true value). 0 when empty.
  double Mean() const;

  // Bucket arithmetic, exposed for tests: the bucket of a value and the range it covers.
  static size_t BucketOf(int64_t value_us);
  static int64_t BucketLowest(size_t bucket);
  static int64_t BucketWidth(size_t bucket);

 private:
  std::vector<int64_t> counts_;  // kBucketCount entries
  int64_t count_ = 0;
  int64_t min_us_ = 0;
  int64_t max_us_ = 0;
  // Sum of all values; 2^63 µs of total latency is far beyond any bounded run.
  int64_t sum_us_ = 0;
};

}  // namespace weft::tools
