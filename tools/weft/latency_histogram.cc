#include "tools/weft/latency_histogram.h"

#include <algorithm>
#include <bit>
#include <cmath>

#include "weft/base/check.h"

namespace weft::tools {

LatencyHistogram::LatencyHistogram() : counts_(kBucketCount, 0) {}

size_t LatencyHistogram::BucketOf(int64_t value_us) {
  const uint64_t value = static_cast<uint64_t>(std::clamp<int64_t>(value_us, 0, kValueUsMax));
  if (value < static_cast<uint64_t>(kSubBucketCount))
    return static_cast<size_t>(value);
  // Octave e holds [2^e, 2^(e+1)); its top kSubBucketBits bits below the leading one pick the
  // sub-bucket. Octave kSubBucketBits starts right after the exact range.
  const int octave = std::bit_width(value) - 1;
  const int shift = octave - kSubBucketBits;
  const uint64_t sub = (value >> shift) - static_cast<uint64_t>(kSubBucketCount);
  return static_cast<size_t>(kSubBucketCount * (octave - kSubBucketBits + 1) +
                             static_cast<int64_t>(sub));
}

int64_t LatencyHistogram::BucketLowest(size_t bucket) {
  const int64_t index = static_cast<int64_t>(bucket);
  if (index < kSubBucketCount)
    return index;
  const int64_t octave_index = index / kSubBucketCount;  // >= 1
  const int64_t sub = index % kSubBucketCount;
  const int shift = static_cast<int>(octave_index - 1);
  return (kSubBucketCount + sub) << shift;
}

int64_t LatencyHistogram::BucketWidth(size_t bucket) {
  const int64_t index = static_cast<int64_t>(bucket);
  if (index < kSubBucketCount)
    return 1;
  return int64_t{1} << (index / kSubBucketCount - 1);
}

void LatencyHistogram::RecordMany(int64_t latency_us, int64_t count) {
  WEFT_DCHECK(count >= 0);
  if (count <= 0)
    return;
  const int64_t value = std::max<int64_t>(latency_us, 0);
  counts_[BucketOf(value)] += count;
  min_us_ = count_ == 0 ? value : std::min(min_us_, value);
  max_us_ = std::max(max_us_, value);
  count_ += count;
  sum_us_ += value * count;
}

void LatencyHistogram::Merge(const LatencyHistogram& other) {
  if (other.count_ == 0)
    return;
  for (size_t i = 0; i < kBucketCount; ++i)
    counts_[i] += other.counts_[i];
  min_us_ = count_ == 0 ? other.min_us_ : std::min(min_us_, other.min_us_);
  max_us_ = std::max(max_us_, other.max_us_);
  count_ += other.count_;
  sum_us_ += other.sum_us_;
}

void LatencyHistogram::Reset() {
  std::fill(counts_.begin(), counts_.end(), 0);
  count_ = 0;
  min_us_ = 0;
  max_us_ = 0;
  sum_us_ = 0;
}

int64_t LatencyHistogram::Percentile(double p) const {
  if (count_ == 0)
    return 0;
  p = std::clamp(p, 0.0, 100.0);
  if (p >= 100.0)
    return max_us_;
  if (p <= 0.0)
    return min_us_;
  // Nearest rank: the ceil(p/100 * n)-th smallest value, at least the first.
  const int64_t rank = std::max<int64_t>(
      1, static_cast<int64_t>(std::ceil(p / 100.0 * static_cast<double>(count_))));
  int64_t seen = 0;
  for (size_t i = 0; i < kBucketCount; ++i) {
    seen += counts_[i];
    if (seen >= rank) {
      const int64_t midpoint = BucketLowest(i) + BucketWidth(i) / 2;
      return std::clamp(midpoint, min_us_, max_us_);
    }
  }
  return max_us_;
}

double LatencyHistogram::Mean() const {
  return count_ == 0 ? 0.0 : static_cast<double>(sum_us_) / static_cast<double>(count_);
}

}  // namespace weft::tools
