#include "weft/replication/image_sender.h"

#include <algorithm>

#include "weft/replication/wire.h"

namespace weft::replication {
namespace {

// Entries per Scan call: one short lock hold of one shard (microseconds).
constexpr size_t kScanBatch = 16;

}  // namespace

ImageSender::ImageSender(storage::Store& store, const Clock& clock, uint64_t credit_bytes,
                         Options options)
    : store_(store),
      clock_(clock),
      options_(options),
      started_us_(clock.NowMonotonicUs()),
      credit_(static_cast<int64_t>(credit_bytes)) {}

ImageSender::Fill ImageSender::Next(FrameType* type, std::string* payload) {
  MutexLock lock(&mutex_);
  if (done_sent_) {
    return Fill::kFinished;
  }
  if (scanned_) {
    *type = FrameType::kImageDone;
    *payload = EncodeImageDone({entries_, bytes_});
    done_sent_ = true;
    return Fill::kDone;
  }
  if (credit_ <= 0) {
    return Fill::kBlocked;
  }
  if (options_.rate_limit_bytes_per_s > 0) {
    const int64_t elapsed_us = std::max<int64_t>(clock_.NowMonotonicUs() - started_us_, 1);
    const double allowed = static_cast<double>(options_.rate_limit_bytes_per_s) *
                           static_cast<double>(elapsed_us) / 1e6;
    if (static_cast<double>(bytes_) > allowed) {
      return Fill::kBlocked;
    }
  }
  *type = FrameType::kImageChunk;
  payload->clear();
  BeginImageChunk(payload, store_.KeyCount() + store_.TombstoneCount());
  const size_t limit = std::min<size_t>(options_.chunk_bytes, static_cast<size_t>(credit_));
  uint64_t entries = 0;
  do {
    cursor_ = store_.Scan(cursor_, kScanBatch, /*include_tombstones=*/true,
                          [&](const storage::EntryView& entry) {
                            AppendImageEntry(payload, entry);
                            ++entries;
                          });
    if (cursor_ == 0) {
      scanned_ = true;
    }
  } while (!scanned_ && payload->size() < limit);
  entries_ += entries;
  bytes_ += payload->size();
  credit_ -= static_cast<int64_t>(payload->size());
  return Fill::kChunk;
}

void ImageSender::AddCredit(uint64_t bytes) {
  MutexLock lock(&mutex_);
  credit_ += static_cast<int64_t>(bytes);
}

uint64_t ImageSender::entries_sent() const {
  MutexLock lock(&mutex_);
  return entries_;
}

uint64_t ImageSender::bytes_sent() const {
  MutexLock lock(&mutex_);
  return bytes_;
}

}  // namespace weft::replication
