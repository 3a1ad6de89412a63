#include "weft/replication/lane_receiver.h"

#include <initializer_list>
#include <string>
#include <vector>

#include "gtest/gtest.h"

#include "weft/base/clock.h"
#include "weft/replication/messages.h"
#include "weft/replication/testing_host.h"

namespace weft::replication {
namespace {

using testing::FakeChannel;

constexpr uint64_t kSender = 2;
constexpr uint32_t kLane = 1;
constexpr int64_t kSilenceTimeoutUs = 3'000'000;

constexpr uint8_t Type(FrameType type) {
  return static_cast<uint8_t>(type);
}

// A record as the sink saw it, with its views copied out.
struct Applied {
  uint64_t from = 0;
  uint32_t lane = 0;
  uint64_t seq = 0;
  std::string key;
};

class RecordingSink final : public RecordSink {
 public:
  void ApplyRecord(uint64_t from, uint32_t lane, const Record& record) override {
    applied.push_back(Applied{from, lane, record.seq, std::string(record.change.post.key)});
  }
  std::vector<uint64_t> seqs() const {
    std::vector<uint64_t> seqs;
    for (const Applied& record : applied) {
      seqs.push_back(record.seq);
    }
    return seqs;
  }

  std::vector<Applied> applied;
};

// A LaneItems payload of change records numbered `seqs` (key "k<seq>").
std::string Items(std::initializer_list<uint64_t> seqs) {
  std::string payload;
  for (uint64_t seq : seqs) {
    const std::string key = "k" + std::to_string(seq);
    std::string body;
    EncodeChangeBody(&body, storage::EntryView{key, "v", {seq, kSender, seq}}, nullptr, false);
    AppendRecord(&payload, RecordKind::kChange, seq, body);
  }
  return payload;
}

ChannelOpen OpenOf(uint64_t stream_id) {
  ChannelOpen open;
  open.region = "r";
  open.from = kSender;
  open.to = 1;
  open.lane = kLane;
  open.lanes = 2;
  open.stream_id = stream_id;
  open.sender_entry = 1;
  return open;
}

// The counter an Ack or ChannelResume frame carries.
uint64_t CounterOf(const FakeChannel::Frame& frame) {
  StatusOr<uint64_t> counter = DecodeCounter(frame.payload);
  EXPECT_TRUE(counter.ok()) << counter.status();
  return counter.value_or(~uint64_t{0});
}

class LaneReceiverTest : public ::testing::Test {
 protected:
  std::unique_ptr<LaneReceiver> Receive(FakeChannel& channel, uint64_t stream_id) {
    return std::make_unique<LaneReceiver>(channel, OpenOf(stream_id), lane_, sink_, clock_,
                                          kSilenceTimeoutUs);
  }

  ManualClock clock_;
  InboundLane lane_;
  RecordingSink sink_;
  FakeChannel channel_;
};

TEST_F(LaneReceiverTest, ResumeSendsTheLanesCounter) {
  lane_ = InboundLane{.stream_id = 5, .received = 7};
  auto receiver = Receive(channel_, 5);
  EXPECT_EQ(receiver->from(), kSender);
  EXPECT_EQ(receiver->lane(), kLane);
  receiver->Resume();
  ASSERT_EQ(channel_.frames().size(), 1u);
  EXPECT_EQ(channel_.frames()[0].type, Type(FrameType::kChannelResume));
  EXPECT_EQ(CounterOf(channel_.frames()[0]), 7u);
  EXPECT_EQ(lane_.received, 7u);  // the same stream keeps its counter
}

TEST_F(LaneReceiverTest, AppliesRecordsInOrderAndAcksTheCounter) {
  auto receiver = Receive(channel_, 5);
  receiver->Resume();
  receiver->OnFrame(Type(FrameType::kLaneItems), Items({1, 2, 3}));
  ASSERT_EQ(sink_.applied.size(), 3u);
  EXPECT_EQ(sink_.seqs(), (std::vector<uint64_t>{1, 2, 3}));
  EXPECT_EQ(sink_.applied[0].from, kSender);
  EXPECT_EQ(sink_.applied[0].lane, kLane);
  EXPECT_EQ(sink_.applied[2].key, "k3");
  EXPECT_EQ(lane_.received, 3u);
  ASSERT_EQ(channel_.last_frame().type, Type(FrameType::kAck));
  EXPECT_EQ(CounterOf(channel_.last_frame()), 3u);

  receiver->OnFrame(Type(FrameType::kLaneItems), Items({4}));
  EXPECT_EQ(CounterOf(channel_.last_frame()), 4u);
  EXPECT_EQ(channel_.FramesOfType(Type(FrameType::kAck)).size(), 2u);
}

TEST_F(LaneReceiverTest, ResentRecordsAreSkipped) {
  auto receiver = Receive(channel_, 5);
  receiver->OnFrame(Type(FrameType::kLaneItems), Items({1, 2}));
  receiver->OnFrame(Type(FrameType::kLaneItems), Items({1, 2, 3}));
  EXPECT_EQ(sink_.seqs(), (std::vector<uint64_t>{1, 2, 3}));
  receiver->OnFrame(Type(FrameType::kLaneItems), Items({2, 3}));  // all resent
  EXPECT_EQ(sink_.seqs(), (std::vector<uint64_t>{1, 2, 3}));
  EXPECT_FALSE(receiver->closed());
  // Every frame is acknowledged, a frame of duplicates too.
  const std::vector<FakeChannel::Frame> acks = channel_.FramesOfType(Type(FrameType::kAck));
  ASSERT_EQ(acks.size(), 3u);
  EXPECT_EQ(CounterOf(acks[0]), 2u);
  EXPECT_EQ(CounterOf(acks[1]), 3u);
  EXPECT_EQ(CounterOf(acks[2]), 3u);
}

TEST_F(LaneReceiverTest, GapClosesTheChannelAndAppliesNothingAfterIt) {
  auto receiver = Receive(channel_, 5);
  receiver->OnFrame(Type(FrameType::kLaneItems), Items({1, 3, 4}));
  EXPECT_EQ(sink_.seqs(), std::vector<uint64_t>{1});
  EXPECT_EQ(lane_.received, 1u);
  EXPECT_TRUE(receiver->closed());
  EXPECT_TRUE(channel_.closed());
  EXPECT_TRUE(channel_.FramesOfType(Type(FrameType::kAck)).empty());

  // A closed receiver applies nothing more, even what would fit.
  receiver->OnFrame(Type(FrameType::kLaneItems), Items({2}));
  EXPECT_EQ(sink_.seqs(), std::vector<uint64_t>{1});
  EXPECT_EQ(channel_.closes(), 1);
}

TEST_F(LaneReceiverTest, MalformedItemsCloseTheChannel) {
  auto receiver = Receive(channel_, 5);
  std::string payload = Items({1, 2});
  payload.pop_back();
  receiver->OnFrame(Type(FrameType::kLaneItems), payload);
  EXPECT_EQ(sink_.seqs(), std::vector<uint64_t>{1});  // what was whole before the damage
  EXPECT_TRUE(channel_.closed());
  EXPECT_TRUE(channel_.FramesOfType(Type(FrameType::kAck)).empty());
}

TEST_F(LaneReceiverTest, HeartbeatIsAnsweredWithAnAck) {
  lane_ = InboundLane{.stream_id = 5, .received = 4};
  auto receiver = Receive(channel_, 5);
  receiver->OnFrame(Type(FrameType::kHeartbeat), "");
  ASSERT_EQ(channel_.frames().size(), 1u);
  EXPECT_EQ(channel_.frames()[0].type, Type(FrameType::kAck));
  EXPECT_EQ(CounterOf(channel_.frames()[0]), 4u);
  EXPECT_TRUE(sink_.applied.empty());
}

TEST_F(LaneReceiverTest, UnexpectedFrameTypeCloses) {
  auto receiver = Receive(channel_, 5);
  receiver->OnFrame(Type(FrameType::kChannelOpen), "");
  EXPECT_TRUE(receiver->closed());
  EXPECT_TRUE(channel_.closed());
  EXPECT_TRUE(channel_.FramesOfType(Type(FrameType::kAck)).empty());
}

TEST_F(LaneReceiverTest, NewerStreamResetsTheCounter) {
  lane_ = InboundLane{.stream_id = 3, .received = 10};
  ASSERT_TRUE(LaneReceiver::Admit(OpenOf(5), lane_).ok());
  auto receiver = Receive(channel_, 5);
  EXPECT_EQ(lane_.stream_id, 5u);
  EXPECT_EQ(lane_.received, 0u);
  receiver->Resume();
  EXPECT_EQ(CounterOf(channel_.last_frame()), 0u);
  // The new stream numbers from 1 again, below the old counter.
  receiver->OnFrame(Type(FrameType::kLaneItems), Items({1}));
  EXPECT_EQ(sink_.seqs(), std::vector<uint64_t>{1});
}

TEST_F(LaneReceiverTest, AdmitRefusesAnOlderStream) {
  const InboundLane lane{.stream_id = 6, .received = 2};
  EXPECT_FALSE(LaneReceiver::Admit(OpenOf(5), lane).ok());
  EXPECT_TRUE(LaneReceiver::Admit(OpenOf(6), lane).ok());
  EXPECT_TRUE(LaneReceiver::Admit(OpenOf(7), lane).ok());
}

TEST_F(LaneReceiverTest, SupersededConnectionClosesAndAppliesNothing) {
  FakeChannel old_channel;
  auto old_receiver = Receive(old_channel, 5);
  old_receiver->OnFrame(Type(FrameType::kLaneItems), Items({1}));
  auto new_receiver = Receive(channel_, 6);
  ASSERT_EQ(lane_.stream_id, 6u);

  old_receiver->OnFrame(Type(FrameType::kLaneItems), Items({1}));
  EXPECT_TRUE(old_receiver->closed());
  EXPECT_TRUE(old_channel.closed());
  EXPECT_EQ(sink_.applied.size(), 1u);  // only the old stream's first record
  EXPECT_EQ(old_channel.FramesOfType(Type(FrameType::kAck)).size(), 1u);
  EXPECT_EQ(lane_.received, 0u);  // the new stream's count is untouched
  EXPECT_FALSE(new_receiver->closed());
}

TEST_F(LaneReceiverTest, SupersededConnectionClosesOnTick) {
  FakeChannel old_channel;
  auto old_receiver = Receive(old_channel, 5);
  auto new_receiver = Receive(channel_, 6);
  old_receiver->OnTick();
  EXPECT_TRUE(old_channel.closed());
  new_receiver->OnTick();
  EXPECT_FALSE(channel_.closed());
}

TEST_F(LaneReceiverTest, SilencePastTheTimeoutCloses) {
  auto receiver = Receive(channel_, 5);
  clock_.AdvanceUs(kSilenceTimeoutUs);
  receiver->OnTick();
  EXPECT_FALSE(receiver->closed());
  clock_.AdvanceUs(1);
  receiver->OnTick();
  EXPECT_TRUE(receiver->closed());
  EXPECT_TRUE(channel_.closed());
}

TEST_F(LaneReceiverTest, EveryFrameRestartsTheSilenceTimeout) {
  auto receiver = Receive(channel_, 5);
  clock_.AdvanceUs(kSilenceTimeoutUs);
  receiver->OnFrame(Type(FrameType::kHeartbeat), "");
  clock_.AdvanceUs(kSilenceTimeoutUs);
  receiver->OnTick();
  EXPECT_FALSE(receiver->closed());
  EXPECT_FALSE(channel_.closed());
}

TEST_F(LaneReceiverTest, ClosedByTheHostAppliesNothingMore) {
  auto receiver = Receive(channel_, 5);
  receiver->OnClosed(absl::UnavailableError("reset"));
  EXPECT_TRUE(receiver->closed());
  receiver->OnFrame(Type(FrameType::kLaneItems), Items({1}));
  EXPECT_TRUE(sink_.applied.empty());
  EXPECT_TRUE(channel_.frames().empty());
  EXPECT_EQ(channel_.closes(), 0);  // the host closed it; the receiver does not close again
}

}  // namespace
}  // namespace weft::replication
