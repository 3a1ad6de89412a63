// The provider's side of the image (DESIGN.md §5 Phase D): ImageScanner walks the store, and
// ImageServe is the image channel's session that decides when the next chunk may be made.
//
// ImageScanner runs off the protocol thread (Host::Offload, the image worker): it walks the
// region's store with Store::Scan (tombstones included), a short batch per shard lock hold, and
// encodes entries into ImageChunk payloads of about chunk_bytes.
//
// ImageServe runs on the protocol thread. It asks the worker for the next chunk only while the
// joiner has granted credit (flow control: the joiner grants bytes as it applies them) and the
// ImagePacer lets a chunk out; at most one chunk is being made at a time. After the last chunk
// it sends ImageDone{entries, bytes} and is finished; the joiner closes the channel.
//
// Thread safety: ImageScanner is used by one thread at a time (the worker); ImageServe is the
// protocol thread's.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>

#include "weft/base/clock.h"
#include "weft/replication/host.h"
#include "weft/replication/image_pacer.h"
#include "weft/replication/messages.h"
#include "weft/storage/store.h"

namespace weft::replication {

class ImageScanner {
 public:
  ImageScanner(storage::Store& store, size_t chunk_bytes)
      : store_(store), chunk_bytes_(chunk_bytes) {}
  // Encodes the next chunk into *payload (replacing it), at most about `limit` bytes; returns
  // the entries in it. *done: the store has been walked (the chunk may still hold entries).
  uint64_t Next(std::string* payload, size_t limit, bool* done);

 private:
  storage::Store& store_;
  const size_t chunk_bytes_;
  uint64_t cursor_ = 0;
};

class ImageServe final : public ChannelSession, public std::enable_shared_from_this<ImageServe> {
 public:
  struct Options {
    size_t chunk_bytes = 256 * 1024;
    ImagePacer::Options pacer;
  };

  // Serves join `join_id` to `joiner` on `channel`, starting with `credit_bytes` of credit.
  ImageServe(Host& host, const Clock& clock, storage::Store& store, Channel& channel,
             uint64_t joiner, uint64_t join_id, uint64_t credit_bytes, const Options& options);

  // Starts producing. Call once, right after construction.
  void Start();
  // Stops serving and closes the channel (this member is leaving the group).
  void Abandon();
  // Feeds the live acknowledgement latency to the pacer (every protocol tick).
  void Pace(std::optional<int64_t> live_ack_latency_us) { pacer_.Pace(live_ack_latency_us); }

  bool finished() const { return finished_ || closed_; }
  uint64_t joiner() const { return joiner_; }
  uint64_t join_id() const { return join_id_; }
  uint64_t entries_sent() const { return entries_; }
  uint64_t bytes_sent() const { return bytes_; }
  uint64_t paced_rate_bytes_per_s() const { return pacer_.paced_rate_bytes_per_s(); }

  // ChannelSession.
  void OnFrame(uint8_t type, std::string_view payload) override;
  void OnClosed(const Status& reason) override;

 private:
  // Asks the worker for the next chunk if credit, pace and state allow.
  void Produce();
  void Produced(std::shared_ptr<std::string> payload, uint64_t entries, bool done);

  Host& host_;
  const Clock& clock_;
  Channel& channel_;
  const uint64_t joiner_;
  const uint64_t join_id_;
  const Options options_;
  const std::shared_ptr<ImageScanner> scanner_;
  ImagePacer pacer_;
  int64_t credit_;
  bool producing_ = false;
  bool waiting_for_pace_ = false;
  bool finished_ = false;
  bool closed_ = false;
  uint64_t entries_ = 0;
  uint64_t bytes_ = 0;
};

}  // namespace weft::replication
