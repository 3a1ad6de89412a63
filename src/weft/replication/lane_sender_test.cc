#include "weft/replication/lane_sender.h"

#include <algorithm>
#include <memory>
#include <string>
#include <vector>

#include "gtest/gtest.h"

#include "weft/base/clock.h"
#include "weft/base/random.h"
#include "weft/replication/messages.h"
#include "weft/replication/outbox.h"
#include "weft/replication/testing_host.h"
#include "weft/replication/write_ticket.h"

namespace weft::replication {
namespace {

using testing::FakeChannel;
using testing::FakeHost;

constexpr uint64_t kSelf = 1;
constexpr uint64_t kPeer = 2;
constexpr uint32_t kLane = 1;
constexpr uint64_t kStream = 7;
constexpr int64_t kEntry = 12;  // the sender's entry in the group

constexpr uint8_t Type(FrameType type) {
  return static_cast<uint8_t>(type);
}

// The record numbers in a LaneItems payload.
std::vector<uint64_t> SeqsIn(std::string_view payload) {
  std::vector<uint64_t> seqs;
  RecordReader reader(payload);
  Record record;
  while (true) {
    StatusOr<bool> more = reader.Next(&record);
    EXPECT_TRUE(more.ok()) << more.status();
    if (!more.ok() || !*more) {
      return seqs;
    }
    seqs.push_back(record.seq);
  }
}

class LaneSenderTest : public ::testing::Test {
 protected:
  LaneSenderTest() {
    peer_.member_id = kPeer;
    peer_.name = "m2";
    peer_.peer_address = "127.0.0.1:7002";
    sender_ = std::make_shared<LaneSender>(host_, clock_, random_, timings_, peer_, "r",
                                           OpenFor(kEntry), outbox_);
  }

  // The lane's ChannelOpen, made for the sender's entry `entry` (0: not known yet).
  static ChannelOpen OpenFor(int64_t entry) {
    ChannelOpen open;
    open.from = kSelf;
    open.to = kPeer;
    open.lane = kLane;
    open.lanes = 2;
    open.stream_id = kStream;
    open.sender_entry = entry;
    return open;
  }

  // Appends one change record; `ticket` (may be null) waits for its acknowledgement.
  void Append(std::shared_ptr<WriteTicket> ticket = nullptr) {
    auto body = std::make_shared<std::string>();
    const std::string key = "k" + std::to_string(++appended_);
    EncodeChangeBody(body.get(), storage::EntryView{key, "v", {appended_, kSelf, appended_}},
                     nullptr, false);
    outbox_->Append(RecordKind::kChange, std::move(body), ticket ? &ticket : nullptr);
  }

  // Start, open on `channel` and resume at `received`: the lane streams.
  void Connect(FakeChannel& channel, uint64_t received = 0) {
    if (sender_->state() == LaneSender::State::kIdle) {
      sender_->Start();
    }
    ASSERT_EQ(sender_->state(), LaneSender::State::kDialing);
    sender_->OnOpened(channel);
    sender_->OnFrame(Type(FrameType::kChannelResume), EncodeCounter(received));
    ASSERT_EQ(sender_->state(), LaneSender::State::kStreaming);
  }

  // What the channel would carry now, one pulled frame after another.
  std::vector<OutFrame> PullAll() {
    std::vector<OutFrame> frames;
    OutFrame frame;
    while (sender_->Pull(&frame, size_t{1} << 20)) {
      frames.push_back(frame);
    }
    return frames;
  }

  ManualClock clock_;
  FakeHost host_{clock_};
  Random random_{42};
  LaneTimings timings_;
  membership::MemberInfo peer_;
  std::shared_ptr<Outbox> outbox_ = std::make_shared<Outbox>(size_t{1} << 20, kStream);
  std::shared_ptr<LaneSender> sender_;
  uint64_t appended_ = 0;
};

TEST_F(LaneSenderTest, StartDialsThePeer) {
  sender_->Start();
  EXPECT_EQ(sender_->state(), LaneSender::State::kDialing);
  ASSERT_EQ(host_.opens().size(), 1u);
  const FakeHost::OpenRequest& open = host_.opens()[0];
  EXPECT_EQ(open.peer, peer_);
  EXPECT_EQ(open.kind, ChannelKind::kLane);
  EXPECT_EQ(open.index, kLane);
  EXPECT_EQ(open.session.lock(), sender_);
}

TEST_F(LaneSenderTest, DialsOnlyOnceItsEntryIsKnown) {
  auto sender = std::make_shared<LaneSender>(host_, clock_, random_, timings_, peer_, "r",
                                             OpenFor(0), outbox_);
  sender->Start();
  EXPECT_EQ(sender->state(), LaneSender::State::kIdle);
  EXPECT_TRUE(host_.opens().empty());

  sender->Enter(kEntry + 1);
  EXPECT_EQ(sender->state(), LaneSender::State::kDialing);
  ASSERT_EQ(host_.opens().size(), 1u);
  FakeChannel channel;
  sender->OnOpened(channel);
  ASSERT_EQ(channel.frames().size(), 1u);
  StatusOr<ChannelOpen> sent = DecodeChannelOpen(channel.frames()[0].payload);
  ASSERT_TRUE(sent.ok()) << sent.status();
  EXPECT_EQ(sent->sender_entry, kEntry + 1);
  sender->Stop();
}

TEST_F(LaneSenderTest, OpenedChannelCarriesChannelOpenFirst) {
  sender_->Start();
  FakeChannel channel;
  sender_->OnOpened(channel);
  EXPECT_EQ(sender_->state(), LaneSender::State::kOpening);
  ASSERT_EQ(channel.frames().size(), 1u);
  ASSERT_EQ(channel.frames()[0].type, Type(FrameType::kChannelOpen));
  StatusOr<ChannelOpen> open = DecodeChannelOpen(channel.frames()[0].payload);
  ASSERT_TRUE(open.ok()) << open.status();
  EXPECT_EQ(open->region, "r");
  EXPECT_EQ(open->from, kSelf);
  EXPECT_EQ(open->to, kPeer);
  EXPECT_EQ(open->lane, kLane);
  EXPECT_EQ(open->lanes, 2u);
  EXPECT_EQ(open->stream_id, kStream);
  EXPECT_EQ(open->sender_entry, kEntry);

  // Nothing streams before the receiver said where to resume.
  Append();
  host_.RunDue();
  EXPECT_TRUE(PullAll().empty());
}

TEST_F(LaneSenderTest, ChannelResumeRewindsToTheReceiversCounter) {
  Append();
  Append();
  Append();
  FakeChannel channel;
  Connect(channel, /*received=*/1);
  EXPECT_GE(channel.wakes(), 1);  // the resume pulls at once
  EXPECT_EQ(outbox_->acked(), 1u);

  const std::vector<OutFrame> frames = PullAll();
  ASSERT_EQ(frames.size(), 1u);
  EXPECT_EQ(frames[0].type, Type(FrameType::kLaneItems));
  EXPECT_EQ(SeqsIn(frames[0].payload), (std::vector<uint64_t>{2, 3}));
}

TEST_F(LaneSenderTest, ResumeAfterAReconnectSendsOnlyWhatTheReceiverLacks) {
  FakeChannel first;
  Connect(first);
  Append();
  Append();
  Append();
  ASSERT_EQ(PullAll().size(), 1u);  // 1..3 went out; the connection drops before the acks
  sender_->OnClosed(absl::UnavailableError("reset"));
  EXPECT_EQ(sender_->state(), LaneSender::State::kBackoff);
  host_.RunAll();  // the redial timer
  ASSERT_EQ(host_.opens().size(), 2u);

  FakeChannel second;
  Connect(second, /*received=*/2);
  const std::vector<OutFrame> frames = PullAll();
  ASSERT_EQ(frames.size(), 1u);
  EXPECT_EQ(SeqsIn(frames[0].payload), std::vector<uint64_t>{3});
}

TEST_F(LaneSenderTest, AckDropsAcknowledgedRecordsAndReleasesTheirTickets) {
  FakeChannel channel;
  Connect(channel);
  bool done = false;
  auto ticket = std::make_shared<WriteTicket>([&](bool) { done = true; });
  Append(ticket);
  Append(ticket);
  Append(ticket);
  EXPECT_FALSE(ticket->Arm());
  EXPECT_EQ(ticket->pending(), 3);
  ASSERT_EQ(PullAll().size(), 1u);

  sender_->OnFrame(Type(FrameType::kAck), EncodeCounter(2));
  EXPECT_EQ(outbox_->acked(), 2u);
  EXPECT_EQ(ticket->pending(), 1);
  EXPECT_FALSE(done);
  sender_->OnFrame(Type(FrameType::kAck), EncodeCounter(3));
  EXPECT_EQ(ticket->pending(), 0);
  EXPECT_TRUE(done);

  // Nothing acknowledged is sent again on a resume.
  sender_->OnClosed(absl::UnavailableError("reset"));
  host_.RunAll();
  FakeChannel second;
  Connect(second, /*received=*/0);
  EXPECT_EQ(outbox_->acked(), 3u);
  EXPECT_TRUE(PullAll().empty());
}

TEST_F(LaneSenderTest, BrokenChannelReleasesNoTickets) {
  FakeChannel first;
  Connect(first);
  bool done = false;
  auto ticket = std::make_shared<WriteTicket>([&](bool) { done = true; });
  Append(ticket);
  EXPECT_FALSE(ticket->Arm());
  ASSERT_EQ(PullAll().size(), 1u);

  // The sync contract: only the receiver's acknowledgement releases a write, never a close.
  sender_->OnClosed(absl::UnavailableError("reset"));
  EXPECT_EQ(ticket->pending(), 1);
  host_.RunAll();
  FakeChannel second;
  Connect(second, /*received=*/0);
  EXPECT_EQ(ticket->pending(), 1);
  const std::vector<OutFrame> frames = PullAll();
  ASSERT_EQ(frames.size(), 1u);
  EXPECT_EQ(SeqsIn(frames[0].payload), std::vector<uint64_t>{1});
  sender_->OnFrame(Type(FrameType::kAck), EncodeCounter(1));
  EXPECT_TRUE(done);
}

TEST_F(LaneSenderTest, OutboxWakerPostsAWakeOfTheChannel) {
  FakeChannel channel;
  Connect(channel);
  ASSERT_TRUE(PullAll().empty());  // idle: the outbox will wake the lane
  const int wakes = channel.wakes();
  Append();
  EXPECT_EQ(channel.wakes(), wakes);  // the waker only posts...
  EXPECT_EQ(host_.RunDue(), 1u);      // ...the wake runs on the protocol thread
  EXPECT_EQ(channel.wakes(), wakes + 1);
  Append();  // already woken, not pulled yet: no second wake
  EXPECT_EQ(host_.RunDue(), 0u);
  EXPECT_EQ(PullAll().size(), 1u);
}

TEST_F(LaneSenderTest, IdleStreamingLanePullsAHeartbeatAfterTheInterval) {
  FakeChannel channel;
  Connect(channel);
  Append();
  ASSERT_EQ(PullAll().size(), 1u);  // the last send: the idle time counts from here
  host_.RunDue();

  clock_.AdvanceUs(timings_.heartbeat_interval_us - 1);
  const int wakes = channel.wakes();
  sender_->OnTick();
  EXPECT_EQ(channel.wakes(), wakes);
  EXPECT_TRUE(PullAll().empty());

  clock_.AdvanceUs(1);
  sender_->OnTick();
  EXPECT_EQ(channel.wakes(), wakes + 1);
  const std::vector<OutFrame> frames = PullAll();
  ASSERT_EQ(frames.size(), 1u);
  EXPECT_EQ(frames[0].type, Type(FrameType::kHeartbeat));
  EXPECT_TRUE(frames[0].payload.empty());
}

TEST_F(LaneSenderTest, WaitingRecordsStandInForADueHeartbeat) {
  FakeChannel channel;
  Connect(channel);
  Append();
  ASSERT_EQ(PullAll().size(), 1u);
  clock_.AdvanceUs(timings_.heartbeat_interval_us);
  sender_->OnTick();
  Append();
  const std::vector<OutFrame> frames = PullAll();
  ASSERT_EQ(frames.size(), 1u);
  EXPECT_EQ(frames[0].type, Type(FrameType::kLaneItems));
}

TEST_F(LaneSenderTest, HearingFromTheReceiverKeepsTheLaneOpen) {
  FakeChannel channel;
  Connect(channel);
  clock_.AdvanceUs(timings_.silence_timeout_us - 1);
  sender_->OnFrame(Type(FrameType::kAck), EncodeCounter(0));
  clock_.AdvanceUs(timings_.silence_timeout_us - 1);
  sender_->OnTick();
  EXPECT_EQ(sender_->state(), LaneSender::State::kStreaming);
  EXPECT_FALSE(channel.closed());
}

TEST_F(LaneSenderTest, SilentLaneClosesAndRedialsAfterABackoff) {
  FakeChannel channel;
  Connect(channel);
  EXPECT_EQ(sender_->down_since_us(), 0);
  clock_.AdvanceUs(timings_.silence_timeout_us);
  sender_->OnTick();
  EXPECT_FALSE(channel.closed());

  clock_.AdvanceUs(1);
  const int64_t lost_at_us = clock_.NowMonotonicUs();
  sender_->OnTick();
  EXPECT_TRUE(channel.closed());
  EXPECT_EQ(sender_->state(), LaneSender::State::kBackoff);
  EXPECT_EQ(sender_->down_since_us(), lost_at_us);
  ASSERT_EQ(host_.pending_callbacks(), 1u);
  // The first redial waits half to all of redial_min.
  ASSERT_TRUE(host_.NextDueUs().has_value());
  EXPECT_GE(*host_.NextDueUs(), lost_at_us + timings_.redial_min_us / 2);
  EXPECT_LE(*host_.NextDueUs(), lost_at_us + timings_.redial_min_us);

  EXPECT_EQ(host_.RunDue(), 0u);
  EXPECT_EQ(host_.opens().size(), 1u);
  clock_.AdvanceUs(timings_.redial_min_us);
  EXPECT_EQ(host_.RunDue(), 1u);
  EXPECT_EQ(host_.opens().size(), 2u);
  EXPECT_EQ(sender_->state(), LaneSender::State::kDialing);
}

TEST_F(LaneSenderTest, OpeningLaneThatHearsNoResumeIsClosedToo) {
  sender_->Start();
  FakeChannel channel;
  sender_->OnOpened(channel);
  clock_.AdvanceUs(timings_.silence_timeout_us + 1);
  sender_->OnTick();
  EXPECT_TRUE(channel.closed());
  EXPECT_EQ(sender_->state(), LaneSender::State::kBackoff);
}

TEST_F(LaneSenderTest, OpenFailureSchedulesARedial) {
  sender_->Start();
  const int64_t failed_at_us = clock_.NowMonotonicUs();
  sender_->OnOpenFailed(absl::UnavailableError("connection refused"));
  EXPECT_EQ(sender_->state(), LaneSender::State::kBackoff);
  EXPECT_EQ(host_.opens().size(), 1u);
  ASSERT_TRUE(host_.NextDueUs().has_value());
  EXPECT_GE(*host_.NextDueUs(), failed_at_us + timings_.redial_min_us / 2);
  EXPECT_LE(*host_.NextDueUs(), failed_at_us + timings_.redial_min_us);

  host_.RunAll();
  EXPECT_EQ(host_.opens().size(), 2u);
  EXPECT_EQ(sender_->state(), LaneSender::State::kDialing);
}

TEST_F(LaneSenderTest, RedialBackoffDoublesUpToTheMaximum) {
  sender_->Start();
  int64_t ceiling_us = timings_.redial_min_us;
  for (int failure = 1; failure <= 10; ++failure) {
    const int64_t failed_at_us = clock_.NowMonotonicUs();
    sender_->OnOpenFailed(absl::UnavailableError("connection refused"));
    ASSERT_TRUE(host_.NextDueUs().has_value());
    const int64_t delay_us = *host_.NextDueUs() - failed_at_us;
    EXPECT_GE(delay_us, ceiling_us / 2) << "failure " << failure;
    EXPECT_LE(delay_us, ceiling_us) << "failure " << failure;
    host_.RunAll();
    ASSERT_EQ(host_.opens().size(), static_cast<size_t>(failure) + 1);
    ceiling_us = std::min(ceiling_us * 2, timings_.redial_max_us);
  }
}

TEST_F(LaneSenderTest, ASuccessfulResumeResetsTheBackoff) {
  sender_->Start();
  for (int failure = 0; failure < 5; ++failure) {
    sender_->OnOpenFailed(absl::UnavailableError("connection refused"));
    host_.RunAll();
  }
  FakeChannel channel;
  Connect(channel);
  const int64_t closed_at_us = clock_.NowMonotonicUs();
  sender_->OnClosed(absl::UnavailableError("reset"));
  ASSERT_TRUE(host_.NextDueUs().has_value());
  EXPECT_LE(*host_.NextDueUs(), closed_at_us + timings_.redial_min_us);
}

TEST_F(LaneSenderTest, AckBeforeTheResumeIsAProtocolError) {
  sender_->Start();
  FakeChannel channel;
  sender_->OnOpened(channel);
  sender_->OnFrame(Type(FrameType::kAck), EncodeCounter(0));
  EXPECT_TRUE(channel.closed());
  EXPECT_EQ(sender_->state(), LaneSender::State::kBackoff);
}

TEST_F(LaneSenderTest, MalformedCounterClosesTheChannel) {
  FakeChannel channel;
  Connect(channel);
  sender_->OnFrame(Type(FrameType::kAck), "\xff");
  EXPECT_TRUE(channel.closed());
  EXPECT_EQ(sender_->state(), LaneSender::State::kBackoff);
}

TEST_F(LaneSenderTest, StopClosesTheChannelAndNeverRedials) {
  FakeChannel channel;
  Connect(channel);
  sender_->Stop();
  EXPECT_TRUE(channel.closed());
  EXPECT_EQ(sender_->state(), LaneSender::State::kStopped);
  sender_->OnClosed(absl::CancelledError("closed"));  // the host reports the close it was asked
  sender_->OnTick();
  host_.RunAll();
  EXPECT_EQ(host_.opens().size(), 1u);
  EXPECT_EQ(sender_->state(), LaneSender::State::kStopped);

  // The outbox no longer wakes the lane.
  Append();
  EXPECT_EQ(host_.pending_callbacks(), 0u);
  EXPECT_TRUE(PullAll().empty());
}

TEST_F(LaneSenderTest, StopDuringBackoffCancelsTheRedial) {
  sender_->Start();
  sender_->OnOpenFailed(absl::UnavailableError("connection refused"));
  ASSERT_EQ(host_.pending_callbacks(), 1u);
  sender_->Stop();
  host_.RunAll();
  EXPECT_EQ(host_.opens().size(), 1u);
  EXPECT_EQ(sender_->state(), LaneSender::State::kStopped);
}

TEST_F(LaneSenderTest, ChannelOpenedAfterStopIsClosed) {
  sender_->Start();
  sender_->Stop();
  FakeChannel late;
  sender_->OnOpened(late);
  EXPECT_TRUE(late.closed());
  EXPECT_TRUE(late.frames().empty());
}

}  // namespace
}  // namespace weft::replication
