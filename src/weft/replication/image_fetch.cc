#include "weft/replication/image_fetch.h"

#include <algorithm>
#include <utility>

#include "weft/base/strings.h"

namespace weft::replication {

ImageFetch::ImageFetch(Host& host, const Clock& clock, storage::Store& store,
                       storage::VersionSource& versions, ImageFetchListener& listener,
                       uint64_t join_id, std::string request, int64_t recent_window_ms)
    : host_(host),
      clock_(clock),
      store_(store),
      versions_(versions),
      listener_(listener),
      join_id_(join_id),
      request_(std::move(request)),
      recent_window_ms_(recent_window_ms) {}

void ImageFetch::Abandon() {
  over_ = true;
  if (channel_ != nullptr) {
    std::exchange(channel_, nullptr)->Close();
  }
}

void ImageFetch::OnOpened(Channel& channel) {
  if (over_) {
    channel.Close();
    return;
  }
  channel_ = &channel;
  channel_->Send(static_cast<uint8_t>(FrameType::kImageRequest), request_);
}

void ImageFetch::OnOpenFailed(const Status& reason) {
  Fail(reason);
}

void ImageFetch::OnFrame(uint8_t type, std::string_view payload) {
  if (over_ || done_received_) {
    return;
  }
  switch (static_cast<FrameType>(type)) {
    case FrameType::kImageChunk:
      SubmitChunk(payload);
      return;
    case FrameType::kImageDone: {
      StatusOr<ImageDone> done = DecodeImageDone(payload);
      if (!done.ok()) {
        Fail(done.status());
        return;
      }
      done_received_ = true;
      // Behind every chunk on the worker: complete once they are all in the store.
      std::weak_ptr<ImageFetch> weak = weak_from_this();
      host_.Offload([] {},
                    [weak, done = *done] {
                      std::shared_ptr<ImageFetch> fetch = weak.lock();
                      if (fetch == nullptr || fetch->over_) {
                        return;
                      }
                      fetch->over_ = true;
                      if (fetch->channel_ != nullptr) {
                        std::exchange(fetch->channel_, nullptr)->Close();
                      }
                      fetch->listener_.OnImageComplete(fetch->join_id_, done,
                                                       fetch->entries_applied_);
                    });
      return;
    }
    case FrameType::kImageRefused:
      Fail(absl::UnavailableError(StrCat("the provider refused the image: ", payload)));
      return;
    default:
      Fail(absl::InvalidArgumentError(StrCat("unexpected frame type ", type, " on the image")));
      return;
  }
}

void ImageFetch::SubmitChunk(std::string_view payload) {
  struct Applied {
    Status status;
    uint64_t entries = 0;
    uint64_t estimate = 0;
    uint64_t max_stamp = 0;
    std::vector<RecentImageEntry> recent;
  };
  auto chunk = std::make_shared<std::string>(payload);
  auto applied = std::make_shared<Applied>();
  const uint64_t recent_from_stamp =
      storage::StampAtUnixMs(std::max<int64_t>(0, clock_.NowUnixMs() - recent_window_ms_));
  storage::Store& store = store_;
  std::weak_ptr<ImageFetch> weak = weak_from_this();
  host_.Offload(
      [&store, chunk, applied, recent_from_stamp] {
        StatusOr<ImageChunk> decoded = DecodeImageChunk(*chunk);
        if (!decoded.ok()) {
          applied->status = decoded.status();
          return;
        }
        applied->estimate = decoded->entries_estimate;
        ImageEntryReader reader(decoded->entries);
        storage::EntryView entry;
        while (true) {
          StatusOr<bool> more = reader.Next(&entry);
          if (!more.ok()) {
            applied->status = more.status();
            return;
          }
          if (!*more) {
            return;
          }
          // Into the base store, newer wins, no event (the event index decides events).
          store.WithKey(entry.key, [&](storage::LockedKeys& keys) { keys.ApplyIfNewer(entry); });
          applied->max_stamp = std::max(applied->max_stamp, entry.version.stamp);
          if (entry.version.stamp >= recent_from_stamp) {
            applied->recent.push_back(RecentImageEntry{std::string(entry.key), entry.version});
          }
          ++applied->entries;
        }
      },
      [weak, chunk, applied] {
        std::shared_ptr<ImageFetch> fetch = weak.lock();
        if (fetch == nullptr || fetch->over_) {
          return;
        }
        if (!applied->status.ok()) {
          fetch->Fail(applied->status);
          return;
        }
        fetch->versions_.Observe(applied->max_stamp);
        fetch->entries_applied_ += applied->entries;
        if (fetch->channel_ != nullptr) {
          fetch->channel_->Send(static_cast<uint8_t>(FrameType::kImageCredit),
                                EncodeCounter(chunk->size()));
        }
        fetch->listener_.OnImageChunkApplied(fetch->join_id_, applied->entries, chunk->size(),
                                             applied->estimate, std::move(applied->recent));
      });
}

void ImageFetch::OnClosed(const Status& reason) {
  channel_ = nullptr;
  if (!done_received_) {
    Fail(reason.ok() ? absl::UnavailableError("the image channel closed") : reason);
  }
}

void ImageFetch::Fail(const Status& reason) {
  if (over_) {
    return;
  }
  over_ = true;
  if (channel_ != nullptr) {
    std::exchange(channel_, nullptr)->Close();
  }
  listener_.OnImageFailed(join_id_, reason);
}

}  // namespace weft::replication
