#include "weft/replication/image_serve.h"

#include <algorithm>
#include <utility>

#include "weft/base/logging.h"

namespace weft::replication {
namespace {

// Entries per Scan call: one short lock hold of one shard (microseconds).
constexpr size_t kScanBatch = 16;

}  // namespace

uint64_t ImageScanner::Next(std::string* payload, size_t limit, bool* done) {
  payload->clear();
  BeginImageChunk(payload, store_.KeyCount() + store_.TombstoneCount());
  limit = std::min(limit, chunk_bytes_);
  uint64_t entries = 0;
  *done = false;
  do {
    cursor_ = store_.Scan(cursor_, kScanBatch, /*include_tombstones=*/true,
                          [&](const storage::EntryView& entry) {
                            AppendImageEntry(payload, entry);
                            ++entries;
                          });
    *done = cursor_ == 0;
  } while (!*done && payload->size() < limit);
  return entries;
}

ImageServe::ImageServe(Host& host, const Clock& clock, storage::Store& store, Channel& channel,
                       uint64_t joiner, uint64_t join_id, uint64_t credit_bytes,
                       const Options& options)
    : host_(host),
      clock_(clock),
      channel_(channel),
      joiner_(joiner),
      join_id_(join_id),
      options_(options),
      scanner_(std::make_shared<ImageScanner>(store, options.chunk_bytes)),
      pacer_(options.pacer, clock.NowMonotonicUs()),
      credit_(static_cast<int64_t>(credit_bytes)) {}

void ImageServe::Start() {
  Produce();
}

void ImageServe::Produce() {
  if (producing_ || waiting_for_pace_ || finished_ || closed_ || credit_ <= 0) {
    return;  // a chunk is being made, the pace or the credit will call again, or it is over
  }
  if (const int64_t wait_us = pacer_.WaitUs(clock_.NowMonotonicUs()); wait_us > 0) {
    waiting_for_pace_ = true;
    std::weak_ptr<ImageServe> weak = weak_from_this();
    host_.After(wait_us, [weak] {
      if (std::shared_ptr<ImageServe> serve = weak.lock()) {
        serve->waiting_for_pace_ = false;
        serve->Produce();
      }
    });
    return;
  }
  producing_ = true;
  const size_t limit = std::min<size_t>(options_.chunk_bytes, static_cast<size_t>(credit_));
  auto payload = std::make_shared<std::string>();
  auto entries = std::make_shared<uint64_t>(0);
  auto done = std::make_shared<bool>(false);
  std::weak_ptr<ImageServe> weak = weak_from_this();
  host_.Offload([scanner = scanner_, payload, entries, done,
                 limit] { *entries = scanner->Next(payload.get(), limit, done.get()); },
                [weak, payload, entries, done] {
                  if (std::shared_ptr<ImageServe> serve = weak.lock()) {
                    serve->Produced(payload, *entries, *done);
                  }
                });
}

void ImageServe::Produced(std::shared_ptr<std::string> payload, uint64_t entries, bool done) {
  producing_ = false;
  if (closed_) {
    return;
  }
  channel_.Send(static_cast<uint8_t>(FrameType::kImageChunk), *payload);
  entries_ += entries;
  bytes_ += payload->size();
  credit_ -= static_cast<int64_t>(payload->size());
  pacer_.Spend(payload->size());
  if (done) {
    channel_.Send(static_cast<uint8_t>(FrameType::kImageDone), EncodeImageDone({entries_, bytes_}));
    finished_ = true;
    return;
  }
  Produce();
}

void ImageServe::OnFrame(uint8_t type, std::string_view payload) {
  StatusOr<uint64_t> credit = DecodeCounter(payload);
  if (type != static_cast<uint8_t>(FrameType::kImageCredit) || !credit.ok()) {
    WEFT_LOG_WARN("image to {:016x}: unexpected frame type {}; closing", joiner_, type);
    closed_ = true;
    channel_.Close();
    return;
  }
  credit_ += static_cast<int64_t>(std::min<uint64_t>(*credit, uint64_t{1} << 40));
  Produce();
}

void ImageServe::Abandon() {
  if (!closed_) {
    closed_ = true;
    channel_.Close();
  }
}

void ImageServe::OnClosed(const Status& reason) {
  closed_ = true;
}

}  // namespace weft::replication
