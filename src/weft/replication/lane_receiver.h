// LaneReceiver: the receiving end of one lane (peer -> this member, lane), and InboundLane, the
// lane's reception state that outlives its connections.
//
// The sender opens with ChannelOpen; the receiver answers ChannelResume with its reception
// counter for the sender's stream, then applies LaneItems records strictly in order: a record
// numbered at or below `received` is a resend and is skipped, a gap closes the connection (TCP
// cannot make one; a broken sender can). `received` counts records applied (DESIGN §2), so it
// never runs ahead of the store. Every LaneItems and Heartbeat frame is answered with an Ack
// carrying the counter; a connection that stays silent past silence_timeout is closed (the
// sender heartbeats an idle lane).
//
// Streams: a lane the sender re-created for the same member starts a new stream, numbered from 1
// again (ChannelOpen::stream_id; ids of one sender and lane only grow). A newer stream resets
// the counter; a connection of an older stream than the lane's current one is refused or closed.
//
// Thread safety: the protocol thread only.
#pragma once

#include <cstdint>
#include <memory>
#include <string_view>

#include "weft/base/clock.h"
#include "weft/base/status.h"
#include "weft/replication/host.h"
#include "weft/replication/messages.h"

namespace weft::replication {

// What a lane's records are applied to (the region's replicator).
class RecordSink {
 public:
  virtual ~RecordSink() = default;
  virtual void ApplyRecord(uint64_t from, uint32_t lane, const Record& record) = 0;
};

// One inbound lane's reception state: the stream it belongs to and the records applied from it.
struct InboundLane {
  uint64_t stream_id = 0;
  uint64_t received = 0;
  // When a connection of the stream last opened or brought a frame: the sender still counts
  // this member in its group (the read guard, docs/design/replication.md).
  int64_t heard_us = 0;
  int64_t sender_entry = 0;  // the sender's entry the stream was made for (ChannelOpen)
};

class LaneReceiver final : public ChannelSession {
 public:
  // Takes `lane`'s stream as of `open`: resets it for a newer stream. REQUIRES: `open` passed
  // Admit. `lane` outlives the receiver's use of it (the replicator keeps both).
  LaneReceiver(Channel& channel, const ChannelOpen& open, InboundLane& lane, RecordSink& sink,
               const Clock& clock, int64_t silence_timeout_us);

  // Whether a connection opening `open` may take `lane`: not for a stream older than its own.
  static Status Admit(const ChannelOpen& open, const InboundLane& lane);

  // Sends ChannelResume. Call once, right after construction.
  void Resume();
  // Closes a connection that has been silent too long, or whose stream was superseded.
  void OnTick();
  // Closes the connection; nothing more is applied from it.
  void Close();
  bool closed() const { return closed_; }
  uint64_t from() const { return from_; }
  // The sender's entry its stream was made for (ChannelOpen::sender_entry).
  int64_t sender_entry() const { return sender_entry_; }
  uint32_t lane() const { return lane_index_; }

  // ChannelSession.
  void OnFrame(uint8_t type, std::string_view payload) override;
  void OnClosed(const Status& reason) override;

 private:
  // Applies a LaneItems payload; an error means: close the connection.
  Status Apply(std::string_view payload);

  Channel& channel_;
  const uint64_t from_;
  const uint32_t lane_index_;
  const uint64_t stream_id_;
  const int64_t sender_entry_;
  InboundLane& lane_;
  RecordSink& sink_;
  const Clock& clock_;
  const int64_t silence_timeout_us_;
  int64_t last_heard_us_ = 0;
  bool closed_ = false;
};

}  // namespace weft::replication
