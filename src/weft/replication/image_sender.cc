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
      refilled_us_(clock.NowMonotonicUs()),
      paced_rate_(options.pace_start_bytes_per_s),
      credit_(static_cast<int64_t>(credit_bytes)) {}

uint64_t ImageSender::Rate() const {
  if (!options_.paced) {
    return options_.rate_limit_bytes_per_s;
  }
  return options_.rate_limit_bytes_per_s > 0
             ? std::min(options_.rate_limit_bytes_per_s, paced_rate_)
             : paced_rate_;
}

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
  if (const uint64_t rate = Rate(); rate > 0) {
    const int64_t now_us = clock_.NowMonotonicUs();
    const double rate_per_us = static_cast<double>(rate) / 1e6;
    // A burst of at most one chunk or 20 ms of the rate, so that an idle spell is not saved up.
    const double burst_max =
        std::max(static_cast<double>(options_.chunk_bytes), rate_per_us * 20'000.0);
    allowance_bytes_ = std::min(
        burst_max, allowance_bytes_ + rate_per_us * static_cast<double>(now_us - refilled_us_));
    refilled_us_ = now_us;
    if (allowance_bytes_ <= 0) {
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
  allowance_bytes_ -= static_cast<double>(payload->size());
  return Fill::kChunk;
}

void ImageSender::AddCredit(uint64_t bytes) {
  MutexLock lock(&mutex_);
  credit_ += static_cast<int64_t>(bytes);
}

void ImageSender::Pace(std::optional<int64_t> live_ack_latency_us) {
  if (!options_.paced) {
    return;
  }
  // Far above any loopback or LAN rate: growth stops mattering there.
  constexpr uint64_t kPacedRateMax = uint64_t{16} << 30;
  MutexLock lock(&mutex_);
  if (!live_ack_latency_us) {
    paced_rate_ = std::min(kPacedRateMax, paced_rate_ * 2);  // no live traffic to yield to
  } else if (*live_ack_latency_us > options_.pace_target_us) {
    paced_rate_ = std::max(options_.pace_min_bytes_per_s, paced_rate_ / 2);
  } else {
    paced_rate_ = std::min(kPacedRateMax, paced_rate_ + options_.pace_step_bytes_per_s);
  }
}

uint64_t ImageSender::paced_rate_bytes_per_s() const {
  MutexLock lock(&mutex_);
  return paced_rate_;
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
