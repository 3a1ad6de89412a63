// ImageFetch: the joiner's side of the image (DESIGN.md §5 Phase D), one per join attempt.
//
// It dials the provider's image channel, sends ImageRequest with a credit window, and hands each
// ImageChunk to the image worker (Host::Offload), which applies its entries to the base store
// (newer wins, no events: the event index decides events) off the protocol thread. When a chunk
// is applied its size goes back as credit. ImageDone is passed to the worker too, behind every
// chunk, so the listener hears "complete" only once everything before it is in the store.
//
// The worker runs pieces one at a time in submission order: the attempt's failure can queue the
// clearing of the partial image behind the chunks already submitted, and no chunk of a failed
// attempt is applied after it (Abandon stops submitting; the channel is closed).
//
// Thread safety: the protocol thread only (the worker touches only the store).
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "weft/base/clock.h"
#include "weft/replication/host.h"
#include "weft/replication/messages.h"
#include "weft/storage/store.h"
#include "weft/storage/version.h"

namespace weft::replication {

// An image entry recent enough to matter to a departure repair (recent_changes.h).
struct RecentImageEntry {
  std::string key;
  storage::Version version;
};

class ImageFetchListener {
 public:
  virtual ~ImageFetchListener() = default;
  virtual void OnImageChunkApplied(uint64_t join_id, uint64_t entries, uint64_t bytes,
                                   uint64_t entries_estimate,
                                   std::vector<RecentImageEntry> recent) = 0;
  // Every chunk before ImageDone is applied; `entries_applied` counts them.
  virtual void OnImageComplete(uint64_t join_id, const ImageDone& done,
                               uint64_t entries_applied) = 0;
  // The channel failed, was refused, closed early, or carried a malformed chunk.
  virtual void OnImageFailed(uint64_t join_id, const Status& reason) = 0;
};

class ImageFetch final : public ChannelSession, public std::enable_shared_from_this<ImageFetch> {
 public:
  // `recent_window_ms`: image entries stamped within it of now are reported as recent.
  ImageFetch(Host& host, const Clock& clock, storage::Store& store,
             storage::VersionSource& versions, ImageFetchListener& listener, uint64_t join_id,
             std::string request, int64_t recent_window_ms);

  // Stops: closes the channel, submits nothing more, reports nothing more.
  void Abandon();
  uint64_t join_id() const { return join_id_; }

  // ChannelSession.
  void OnOpened(Channel& channel) override;
  void OnOpenFailed(const Status& reason) override;
  void OnFrame(uint8_t type, std::string_view payload) override;
  void OnClosed(const Status& reason) override;

 private:
  void Fail(const Status& reason);
  void SubmitChunk(std::string_view payload);

  Host& host_;
  const Clock& clock_;
  storage::Store& store_;
  storage::VersionSource& versions_;
  ImageFetchListener& listener_;
  const uint64_t join_id_;
  const std::string request_;
  const int64_t recent_window_ms_;
  Channel* channel_ = nullptr;
  bool done_received_ = false;
  bool over_ = false;  // failed, abandoned or complete: report nothing more
  uint64_t entries_applied_ = 0;
};

}  // namespace weft::replication
