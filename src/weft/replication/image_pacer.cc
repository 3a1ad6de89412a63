#include "weft/replication/image_pacer.h"

#include <algorithm>
#include <cmath>

namespace weft::replication {

ImagePacer::ImagePacer(const Options& options, int64_t now_us)
    : options_(options), refilled_us_(now_us), paced_rate_(options.pace_start_bytes_per_s) {}

uint64_t ImagePacer::rate_bytes_per_s() const {
  if (!options_.paced) {
    return options_.rate_limit_bytes_per_s;
  }
  return options_.rate_limit_bytes_per_s > 0
             ? std::min(options_.rate_limit_bytes_per_s, paced_rate_)
             : paced_rate_;
}

int64_t ImagePacer::WaitUs(int64_t now_us) {
  const uint64_t rate = rate_bytes_per_s();
  if (rate == 0) {
    return 0;
  }
  const double rate_per_us = static_cast<double>(rate) / 1e6;
  const double burst_max =
      std::max(static_cast<double>(options_.chunk_bytes), rate_per_us * 20'000.0);
  allowance_bytes_ = std::min(
      burst_max, allowance_bytes_ + rate_per_us * static_cast<double>(now_us - refilled_us_));
  refilled_us_ = now_us;
  if (allowance_bytes_ > 0) {
    return 0;
  }
  return std::max<int64_t>(1, static_cast<int64_t>(std::ceil(-allowance_bytes_ / rate_per_us)));
}

void ImagePacer::Spend(size_t bytes) {
  allowance_bytes_ -= static_cast<double>(bytes);
}

void ImagePacer::Pace(std::optional<int64_t> live_ack_latency_us) {
  if (!options_.paced) {
    return;
  }
  // Far above any loopback or LAN rate: growth stops mattering there.
  constexpr uint64_t kPacedRateMax = uint64_t{16} << 30;
  if (!live_ack_latency_us) {
    paced_rate_ = std::min(kPacedRateMax, paced_rate_ * 2);  // no live traffic to yield to
  } else if (*live_ack_latency_us > options_.pace_target_us) {
    paced_rate_ = std::max(options_.pace_min_bytes_per_s, paced_rate_ / 2);
  } else {
    paced_rate_ = std::min(kPacedRateMax, paced_rate_ + options_.pace_step_bytes_per_s);
  }
}

}  // namespace weft::replication
