// ImageSender: the provider's side of the image (DESIGN.md §5 Phase D).
//
// It walks the region's store shard by shard with Store::Scan (tombstones included), a short
// batch per lock hold, and encodes entries into ImageChunk payloads of about chunk_bytes. It
// only produces while the joiner has granted credit (flow control: the joiner grants bytes as it
// applies them), and under a rate: an optional fixed cap and, when paced, a rate that yields to
// live traffic (DESIGN §5: on a busy machine the join slows down rather than the writers).
// Pacing is additive-increase / multiplicative-decrease, as TCP's congestion window: every
// Pace() call (one per tick) halves the rate if live changes waited longer than
// pace_target_us for their acknowledgement since the last call, raises it by
// pace_step_bytes_per_s if they did not, and doubles it if there were none. After the last shard it
// produces ImageDone.
//
// The transport pulls (Fill) on the image connection's own thread, one chunk per call, so the
// image runs in short slices between client commands and live changes on that thread.
//
// Thread safety: Fill and AddCredit may be called from different threads.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>

#include "absl/base/thread_annotations.h"

#include "weft/base/clock.h"
#include "weft/base/mutex.h"
#include "weft/replication/messages.h"
#include "weft/storage/store.h"

namespace weft::replication {

class ImageSender {
 public:
  struct Options {
    size_t chunk_bytes = 256 * 1024;
    uint64_t rate_limit_bytes_per_s = 0;  // fixed cap, 0: none
    bool paced = false;
    int64_t pace_target_us = 4'000;  // live acknowledgement latency the image must not push past
    uint64_t pace_start_bytes_per_s = 16 << 20;
    uint64_t pace_min_bytes_per_s = 1 << 20;
    uint64_t pace_step_bytes_per_s = 4 << 20;
  };

  ImageSender(storage::Store& store, const Clock& clock, uint64_t credit_bytes, Options options);

  enum class Fill { kChunk, kDone, kBlocked, kFinished };
  // Produces the next frame's type and payload: a chunk, then ImageDone once, then kFinished.
  // kBlocked: no credit (or over the rate cap) — call again after AddCredit / a moment later.
  Fill Next(FrameType* type, std::string* payload);

  void AddCredit(uint64_t bytes);
  // The longest acknowledgement latency of live changes since the last call (nullopt: none were
  // acknowledged). No effect unless Options::paced.
  void Pace(std::optional<int64_t> live_ack_latency_us);
  uint64_t paced_rate_bytes_per_s() const;

  uint64_t entries_sent() const;
  uint64_t bytes_sent() const;

 private:
  // Bytes/s allowed now; 0: unlimited.
  uint64_t Rate() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mutex_);

  storage::Store& store_;
  const Clock& clock_;
  const Options options_;
  mutable Mutex mutex_;
  // Token bucket for the rate: bytes that may leave now, refilled at Rate() since refilled_us_.
  double allowance_bytes_ ABSL_GUARDED_BY(mutex_) = 0;
  int64_t refilled_us_ ABSL_GUARDED_BY(mutex_);
  uint64_t paced_rate_ ABSL_GUARDED_BY(mutex_);
  int64_t credit_ ABSL_GUARDED_BY(mutex_);
  uint64_t cursor_ ABSL_GUARDED_BY(mutex_) = 0;
  bool scanned_ ABSL_GUARDED_BY(mutex_) = false;
  bool done_sent_ ABSL_GUARDED_BY(mutex_) = false;
  uint64_t entries_ ABSL_GUARDED_BY(mutex_) = 0;
  uint64_t bytes_ ABSL_GUARDED_BY(mutex_) = 0;
};

}  // namespace weft::replication
