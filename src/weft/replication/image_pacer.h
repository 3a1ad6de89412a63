// ImagePacer: how fast a provider lets its image out (DESIGN.md §5 Phase D: on a busy machine
// the join slows down rather than the writers).
//
// A token bucket enforces a rate: an optional fixed cap (--image-rate-limit) and, when paced, a
// rate that yields to live traffic. Pacing is additive-increase / multiplicative-decrease, as
// TCP's congestion window: every Pace() call (one per protocol tick) halves the rate if live
// changes waited longer than pace_target_us for their acknowledgement since the last call,
// raises it by pace_step_bytes_per_s if they did not, and doubles it if there were none (an idle
// cluster joins at full speed). The bucket holds at most one chunk or 20 ms of the rate, so an
// idle spell is not saved up.
//
// Pure arithmetic over the times it is given: no clock of its own.
// Thread safety: none; the protocol thread owns it.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>

namespace weft::replication {

class ImagePacer {
 public:
  struct Options {
    uint64_t rate_limit_bytes_per_s = 0;  // fixed cap, 0: none
    bool paced = false;
    int64_t pace_target_us = 4'000;  // live acknowledgement latency the image must not push past
    uint64_t pace_start_bytes_per_s = 16 << 20;
    uint64_t pace_min_bytes_per_s = 1 << 20;
    uint64_t pace_step_bytes_per_s = 4 << 20;
    size_t chunk_bytes = 256 * 1024;
  };

  ImagePacer(const Options& options, int64_t now_us);

  // Microseconds until the next chunk may leave: 0 if it may leave now.
  int64_t WaitUs(int64_t now_us);
  // A chunk of `bytes` left.
  void Spend(size_t bytes);
  // The longest acknowledgement latency of live changes since the last call (nullopt: none were
  // acknowledged). No effect unless paced.
  void Pace(std::optional<int64_t> live_ack_latency_us);

  // Bytes/s allowed now; 0: unlimited.
  uint64_t rate_bytes_per_s() const;
  uint64_t paced_rate_bytes_per_s() const { return paced_rate_; }

 private:
  const Options options_;
  double allowance_bytes_ = 0;
  int64_t refilled_us_;
  uint64_t paced_rate_;
};

}  // namespace weft::replication
