#include "weft/replication/lane_receiver.h"

#include "weft/base/logging.h"
#include "weft/base/strings.h"

namespace weft::replication {

LaneReceiver::LaneReceiver(Channel& channel, const ChannelOpen& open, InboundLane& lane,
                           RecordSink& sink, const Clock& clock, int64_t silence_timeout_us)
    : channel_(channel),
      from_(open.from),
      lane_index_(open.lane),
      stream_id_(open.stream_id),
      sender_entry_(open.sender_entry),
      lane_(lane),
      sink_(sink),
      clock_(clock),
      silence_timeout_us_(silence_timeout_us),
      last_heard_us_(clock.NowMonotonicUs()) {
  lane_.heard_us = last_heard_us_;
  if (lane_.stream_id != stream_id_) {
    // A new stream (Admit refused older ones): its records are numbered from 1.
    lane_.stream_id = stream_id_;
    lane_.sender_entry = sender_entry_;
    lane_.received = 0;
  }
}

Status LaneReceiver::Admit(const ChannelOpen& open, const InboundLane& lane) {
  if (open.stream_id < lane.stream_id) {
    return absl::FailedPreconditionError(StrCat("lane ", open.lane, " stream ", open.stream_id,
                                                " was superseded by stream ", lane.stream_id));
  }
  return absl::OkStatus();
}

void LaneReceiver::Resume() {
  channel_.Send(static_cast<uint8_t>(FrameType::kChannelResume), EncodeCounter(lane_.received));
}

void LaneReceiver::OnFrame(uint8_t type, std::string_view payload) {
  if (closed_) {
    return;
  }
  last_heard_us_ = clock_.NowMonotonicUs();
  if (lane_.stream_id != stream_id_) {
    Close();  // a newer connection of this lane took over
    return;
  }
  lane_.heard_us = last_heard_us_;
  if (type == static_cast<uint8_t>(FrameType::kLaneItems)) {
    if (Status applied = Apply(payload); !applied.ok()) {
      WEFT_LOG_WARN("closing lane {} from {:016x}: {}", lane_index_, from_,
                    std::string(applied.message()));
      Close();
      return;
    }
  } else if (type != static_cast<uint8_t>(FrameType::kHeartbeat)) {
    WEFT_LOG_WARN("unexpected frame type {} on lane {} from {:016x}", type, lane_index_, from_);
    Close();
    return;
  }
  channel_.Send(static_cast<uint8_t>(FrameType::kAck), EncodeCounter(lane_.received));
}

Status LaneReceiver::Apply(std::string_view payload) {
  RecordReader reader(payload);
  Record record;
  while (true) {
    WEFT_ASSIGN_OR_RETURN(const bool more, reader.Next(&record));
    if (!more) {
      return absl::OkStatus();
    }
    if (record.seq <= lane_.received) {
      continue;  // resent after a reconnect: already applied
    }
    if (record.seq != lane_.received + 1) {
      return absl::DataLossError(StrCat("record ", record.seq, " after ", lane_.received));
    }
    sink_.ApplyRecord(from_, lane_index_, record);
    // Applied, then counted: the reception counter never runs ahead of the store.
    lane_.received = record.seq;
  }
}

void LaneReceiver::OnTick() {
  if (closed_) {
    return;
  }
  if (lane_.stream_id != stream_id_) {
    Close();
  } else if (clock_.NowMonotonicUs() - last_heard_us_ > silence_timeout_us_) {
    WEFT_LOG_WARN("lane {} from {:016x} silent for {} ms; closing", lane_index_, from_,
                  (clock_.NowMonotonicUs() - last_heard_us_) / 1000);
    Close();
  }
}

void LaneReceiver::OnClosed(const Status& reason) {
  closed_ = true;
}

void LaneReceiver::Close() {
  if (!closed_) {
    closed_ = true;
    channel_.Close();
  }
}

}  // namespace weft::replication
