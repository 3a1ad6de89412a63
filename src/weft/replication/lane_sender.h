// LaneSender: the sending end of one lane (region, this member -> peer, lane): the life of the
// channel that carries the lane's Outbox (docs/design/replication.md, "Lanes").
//
//   kIdle --Start, entry known--> kDialing
//
//   kDialing --opened--> kOpening --ChannelResume(received)--> kStreaming
//      ^  |                 |                                      |
//      |  +--open failed----+------------closed, or silent---------+--> kBackoff --timer--+
//      +------------------------------------------------------------------------------------+
//
// On ChannelResume the outbox rewinds to the receiver's reception counter: everything after it
// goes again, and the receiver drops duplicates by number. Acks drop acknowledged records and
// release their tickets. While streaming, an idle lane sends a Heartbeat every
// heartbeat_interval; the receiver answers every frame with an Ack, so a lane that hears nothing
// for silence_timeout is closed as suspect and redialed: a silent partition is noticed in
// seconds, not by TCP's timeouts. Redials back off exponentially (with seeded jitter) between
// redial_min and redial_max while the peer stays in the group; Stop ends them.
//
// Thread safety: the protocol thread only. The outbox's waker posts Wake from writers' threads.
#pragma once

#include <algorithm>
#include <cstdint>
#include <memory>
#include <string>

#include "weft/base/clock.h"
#include "weft/base/random.h"
#include "weft/membership/registry.h"
#include "weft/replication/host.h"
#include "weft/replication/messages.h"
#include "weft/replication/outbox.h"

namespace weft::replication {

struct LaneTimings {
  int64_t heartbeat_interval_us = 500'000;
  int64_t silence_timeout_us = 3'000'000;
  int64_t redial_min_us = 50'000;
  int64_t redial_max_us = 2'000'000;
  size_t payload_bytes = 256 * 1024;  // per LaneItems frame (at least one record)
};

class LaneSender final : public ChannelSession, public std::enable_shared_from_this<LaneSender> {
 public:
  enum class State { kIdle, kDialing, kOpening, kStreaming, kBackoff, kStopped };

  // `open` names the lane (region, from, to, lane, lanes, stream id).
  LaneSender(Host& host, const Clock& clock, Random& random, const LaneTimings& timings,
             membership::MemberInfo peer, std::string region, ChannelOpen open,
             std::shared_ptr<Outbox> outbox);
  // The simulator's release_tickets_on_close break.
  void set_break_release_tickets_on_close(bool on) { break_release_tickets_ = on; }
  LaneSender(const LaneSender&) = delete;
  LaneSender& operator=(const LaneSender&) = delete;

  // Installs the outbox's waker, and dials if the sender's entry is known (Enter).
  void Start();
  // This member's entry in the group (ChannelOpen::sender_entry) is `entry`: the streams dial
  // only once it is known, since a receiver tells a dropped entry's late streams by it.
  void Enter(int64_t entry);
  // Closes the channel; no redial. The outbox stays with whoever holds it.
  void Stop();
  // Records wait in the outbox (posted by its waker).
  void Wake();
  // Heartbeats and silence: call every tick.
  void OnTick();

  State state() const { return state_; }
  bool connected() const { return state_ == State::kStreaming; }
  // When the lane last stopped streaming (its creation if it never streamed); 0 while it
  // streams.
  int64_t down_since_us() const { return state_ == State::kStreaming ? 0 : down_since_us_; }
  // When the peer last answered on this lane (its creation if it never did).
  int64_t heard_us() const { return std::max(last_heard_us_, created_us_); }
  const membership::MemberInfo& peer() const { return peer_; }
  // Why the last dial was refused by the handshake (the two ends do not share the cluster's
  // secret and name); OK once a dial succeeds, or if the last one failed for another reason.
  const Status& refusal() const { return refusal_; }
  uint32_t lane() const { return open_.lane; }
  Outbox& outbox() { return *outbox_; }

  // ChannelSession.
  void OnOpened(Channel& channel) override;
  void OnOpenFailed(const Status& reason) override;
  void OnFrame(uint8_t type, std::string_view payload) override;
  bool Pull(OutFrame* frame, size_t max_bytes) override;
  void OnClosed(const Status& reason) override;

 private:
  void Dial();
  // The channel is gone (or suspect): close it if open, and redial after a backoff.
  void Lost(std::string_view why);

  Host& host_;
  const Clock& clock_;
  Random& random_;
  const LaneTimings timings_;
  const membership::MemberInfo peer_;
  const std::string region_;
  ChannelOpen open_;  // region points into region_
  const std::shared_ptr<Outbox> outbox_;

  State state_ = State::kIdle;
  bool started_ = false;
  Channel* channel_ = nullptr;
  int failures_ = 0;  // consecutive, for the backoff
  Status refusal_;
  uint64_t dial_generation_ = 0;
  int64_t last_heard_us_ = 0;
  int64_t down_since_us_ = 0;
  int64_t created_us_ = 0;
  int64_t last_sent_us_ = 0;
  bool heartbeat_due_ = false;
  bool break_release_tickets_ = false;
  std::string payload_;  // reused between pulls
};

}  // namespace weft::replication
