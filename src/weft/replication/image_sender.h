// ImageSender: the provider's side of the image (DESIGN.md §5 Phase D).
//
// It walks the region's store shard by shard with Store::Scan (tombstones included), a short
// batch per lock hold, and encodes entries into ImageChunk payloads of about chunk_bytes. It
// only produces while the joiner has granted credit (flow control: the joiner grants bytes as it
// applies them), and under an optional rate cap. After the last shard it produces ImageDone.
//
// The transport pulls (Fill) on the image connection's own thread, one chunk per call, so the
// image runs in short slices between client commands and live changes on that thread.
//
// Thread safety: Fill and AddCredit may be called from different threads.
#pragma once

#include <cstddef>
#include <cstdint>
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
    uint64_t rate_limit_bytes_per_s = 0;  // 0: unlimited
  };

  ImageSender(storage::Store& store, const Clock& clock, uint64_t credit_bytes, Options options);

  enum class Fill { kChunk, kDone, kBlocked, kFinished };
  // Produces the next frame's type and payload: a chunk, then ImageDone once, then kFinished.
  // kBlocked: no credit (or over the rate cap) — call again after AddCredit / a moment later.
  Fill Next(FrameType* type, std::string* payload);

  void AddCredit(uint64_t bytes);

  uint64_t entries_sent() const;
  uint64_t bytes_sent() const;

 private:
  storage::Store& store_;
  const Clock& clock_;
  const Options options_;
  const int64_t started_us_;
  mutable Mutex mutex_;
  int64_t credit_ ABSL_GUARDED_BY(mutex_);
  uint64_t cursor_ ABSL_GUARDED_BY(mutex_) = 0;
  bool scanned_ ABSL_GUARDED_BY(mutex_) = false;
  bool done_sent_ ABSL_GUARDED_BY(mutex_) = false;
  uint64_t entries_ ABSL_GUARDED_BY(mutex_) = 0;
  uint64_t bytes_ ABSL_GUARDED_BY(mutex_) = 0;
};

}  // namespace weft::replication
