#include "weft/replication/lane_sender.h"

#include <algorithm>
#include <utility>

#include "weft/base/logging.h"

namespace weft::replication {

LaneSender::LaneSender(Host& host, const Clock& clock, Random& random, const LaneTimings& timings,
                       membership::MemberInfo peer, std::string region, ChannelOpen open,
                       std::shared_ptr<Outbox> outbox)
    : host_(host),
      clock_(clock),
      random_(random),
      timings_(timings),
      peer_(std::move(peer)),
      region_(std::move(region)),
      open_(open),
      outbox_(std::move(outbox)),
      down_since_us_(clock.NowMonotonicUs()),
      created_us_(clock.NowMonotonicUs()) {
  open_.region = region_;
}

void LaneSender::Start() {
  std::weak_ptr<LaneSender> weak = weak_from_this();
  Host& host = host_;
  outbox_->set_waker([weak, &host] {
    host.Post([weak] {
      if (std::shared_ptr<LaneSender> sender = weak.lock()) {
        sender->Wake();
      }
    });
  });
  started_ = true;
  if (open_.sender_entry != 0) {
    Dial();
  }
}

void LaneSender::Enter(int64_t entry) {
  open_.sender_entry = entry;
  if (started_ && state_ == State::kIdle) {
    Dial();
  }
}

void LaneSender::Stop() {
  state_ = State::kStopped;
  outbox_->set_waker(nullptr);
  if (channel_ != nullptr) {
    std::exchange(channel_, nullptr)->Close();
  }
}

void LaneSender::Wake() {
  if (state_ == State::kStreaming) {
    channel_->Wake();
  }
  // Dialing, opening or backing off: the resume pulls whatever waits.
}

void LaneSender::Dial() {
  if (state_ == State::kStopped) {
    return;
  }
  state_ = State::kDialing;
  ++dial_generation_;
  host_.Open(peer_, ChannelKind::kLane, static_cast<uint16_t>(open_.lane), weak_from_this());
}

void LaneSender::OnOpened(Channel& channel) {
  if (state_ != State::kDialing) {
    channel.Close();
    return;
  }
  channel_ = &channel;
  state_ = State::kOpening;
  refusal_ = Status();
  last_heard_us_ = clock_.NowMonotonicUs();
  channel_->Send(static_cast<uint8_t>(FrameType::kChannelOpen), EncodeChannelOpen(open_));
}

void LaneSender::OnOpenFailed(const Status& reason) {
  if (state_ != State::kDialing) {
    return;
  }
  if (failures_ == 0) {
    WEFT_LOG_WARN("region {}: cannot open lane {} to {}: {}", region_, open_.lane, peer_.name,
                  std::string(reason.message()));
  }
  // The host reports a failed handshake as PermissionDenied: not a fault that redialing heals.
  refusal_ = absl::IsPermissionDenied(reason) ? reason : Status();
  Lost("could not open");
}

void LaneSender::OnFrame(uint8_t type, std::string_view payload) {
  last_heard_us_ = clock_.NowMonotonicUs();
  StatusOr<uint64_t> counter = DecodeCounter(payload);
  if (!counter.ok()) {
    WEFT_LOG_WARN("region {}: bad frame on lane {} to {}: {}", region_, open_.lane, peer_.name,
                  std::string(counter.status().message()));
    Lost("bad frame");
    return;
  }
  if (type == static_cast<uint8_t>(FrameType::kChannelResume) && state_ == State::kOpening) {
    if (failures_ > 0) {
      WEFT_LOG_INFO("region {}: lane {} to {} open again after {} failed attempt(s)", region_,
                    open_.lane, peer_.name, failures_);
    }
    failures_ = 0;
    outbox_->Rewind(*counter);
    state_ = State::kStreaming;
    last_sent_us_ = last_heard_us_;  // an idle lane heartbeats an interval after the resume
    channel_->Wake();
  } else if (type == static_cast<uint8_t>(FrameType::kAck) && state_ == State::kStreaming) {
    outbox_->Acknowledge(*counter, clock_.NowMonotonicUs());
  } else {
    WEFT_LOG_WARN("region {}: unexpected frame type {} on lane {} to {}", region_, type, open_.lane,
                  peer_.name);
    Lost("unexpected frame");
  }
}

bool LaneSender::Pull(OutFrame* frame, size_t max_bytes) {
  if (state_ != State::kStreaming) {
    return false;
  }
  payload_.clear();
  if (outbox_->FillPayload(&payload_, std::min(max_bytes, timings_.payload_bytes))) {
    frame->type = static_cast<uint8_t>(FrameType::kLaneItems);
    frame->payload.swap(payload_);
  } else if (heartbeat_due_) {
    frame->type = static_cast<uint8_t>(FrameType::kHeartbeat);
    frame->payload.clear();
  } else {
    return false;
  }
  heartbeat_due_ = false;
  last_sent_us_ = clock_.NowMonotonicUs();
  return true;
}

void LaneSender::OnClosed(const Status& reason) {
  channel_ = nullptr;
  if (state_ == State::kStopped) {
    return;
  }
  if (failures_ == 0) {
    WEFT_LOG_INFO("region {}: lane {} to {} closed: {}", region_, open_.lane, peer_.name,
                  std::string(reason.message()));
  }
  Lost("closed");
}

void LaneSender::OnTick() {
  if (state_ != State::kOpening && state_ != State::kStreaming) {
    return;
  }
  const int64_t now_us = clock_.NowMonotonicUs();
  if (now_us - last_heard_us_ > timings_.silence_timeout_us) {
    WEFT_LOG_WARN("region {}: lane {} to {} silent for {} ms; reconnecting", region_, open_.lane,
                  peer_.name, (now_us - last_heard_us_) / 1000);
    Lost("silent");
    return;
  }
  if (state_ == State::kStreaming && now_us - last_sent_us_ >= timings_.heartbeat_interval_us) {
    heartbeat_due_ = true;
    channel_->Wake();
  }
}

void LaneSender::Lost(std::string_view why) {
  if (channel_ != nullptr) {
    std::exchange(channel_, nullptr)->Close();
  }
  if (state_ == State::kStopped) {
    return;
  }
  if (state_ == State::kStreaming) {
    down_since_us_ = clock_.NowMonotonicUs();
  }
  state_ = State::kBackoff;
  heartbeat_due_ = false;
  if (break_release_tickets_) {
    outbox_->ReleaseTicketsKeepRecords();
  }
  ++failures_;
  const int64_t ceiling =
      std::min(timings_.redial_max_us, timings_.redial_min_us << std::min(failures_ - 1, 20));
  // Half to all of the ceiling: peers that lost each other at once do not redial in lockstep.
  const int64_t delay_us =
      ceiling / 2 + static_cast<int64_t>(random_.Uniform(static_cast<uint64_t>(ceiling / 2) + 1));
  const uint64_t generation = dial_generation_;
  std::weak_ptr<LaneSender> weak = weak_from_this();
  host_.After(delay_us, [weak, generation] {
    std::shared_ptr<LaneSender> sender = weak.lock();
    if (sender != nullptr && sender->state_ == State::kBackoff &&
        sender->dial_generation_ == generation) {
      sender->Dial();
    }
  });
}

}  // namespace weft::replication
