// Frames, the handshake state machines, and real loopback TCP between a listener and dialers:
// data flows in order, and bad peers (wrong secret, other cluster, garbage, silence, a truncated
// frame) are refused without disturbing a good connection on the same listener.
#include <atomic>
#include <chrono>
#include <thread>

#include "gtest/gtest.h"

#include "weft/transport/frame.h"
#include "weft/transport/handshake.h"
#include "weft/transport/peer_link.h"

namespace weft::transport {
namespace {

TEST(FrameTest, RoundTripWholeAndByteAtATime) {
  std::string wire;
  AppendFrame(&wire, 16, "hello");
  AppendFrame(&wire, 17, std::string(100'000, 'x'));
  AppendFrame(&wire, 18, "");
  for (size_t step : {wire.size(), size_t{1}, size_t{7}}) {
    FrameDecoder decoder;
    std::vector<std::pair<uint8_t, std::string>> frames;
    for (size_t offset = 0; offset < wire.size(); offset += step) {
      decoder.Feed(wire.data() + offset, std::min(step, wire.size() - offset));
      uint8_t type;
      std::string_view payload;
      while (decoder.Next(&type, &payload) == FrameDecoder::Result::kFrame) {
        frames.emplace_back(type, std::string(payload));
      }
    }
    ASSERT_EQ(frames.size(), 3u) << step;
    EXPECT_EQ(frames[0].second, "hello");
    EXPECT_EQ(frames[1].second.size(), 100'000u);
    EXPECT_EQ(frames[2].first, 18);
  }
}

TEST(FrameTest, RejectsBadVersionFlagsLengthAndChecksum) {
  std::string good;
  AppendFrame(&good, 16, "payload");
  auto decode = [](std::string wire) {
    FrameDecoder decoder(1024);
    decoder.Feed(wire.data(), wire.size());
    uint8_t type;
    std::string_view payload;
    return decoder.Next(&type, &payload);
  };
  std::string bad = good;
  bad[0] = 9;
  EXPECT_EQ(decode(bad), FrameDecoder::Result::kError);
  bad = good;
  bad[2] = 1;
  EXPECT_EQ(decode(bad), FrameDecoder::Result::kError);
  bad = good;
  bad[12] ^= 1;
  EXPECT_EQ(decode(bad), FrameDecoder::Result::kError);
  std::string huge;
  AppendFrame(&huge, 16, std::string(2000, 'x'));
  EXPECT_EQ(decode(huge.substr(0, 12)), FrameDecoder::Result::kError);  // over the 1024 limit
  EXPECT_EQ(decode(good.substr(0, 15)), FrameDecoder::Result::kNeedMore);
}

// Runs a handshake between the two state machines in memory.
Status Handshake(const std::string& dialer_secret, const std::string& acceptor_secret,
                 const std::string& dialer_cluster = "c") {
  DialerHandshake dialer({dialer_cluster, 1, "d"}, dialer_secret, {0, 3}, NewNonce());
  AcceptorHandshake acceptor({"c", 2, "a"}, acceptor_secret, NewNonce());
  std::string to_acceptor = dialer.Hello();
  for (int round = 0; round < 4; ++round) {
    FrameDecoder decoder;
    decoder.Feed(to_acceptor.data(), to_acceptor.size());
    uint8_t type;
    std::string_view payload;
    EXPECT_EQ(decoder.Next(&type, &payload), FrameDecoder::Result::kFrame);
    HandshakeStep step = acceptor.OnFrame(type, payload);
    if (!step.status.ok()) {
      return step.status;
    }
    FrameDecoder back;
    back.Feed(step.reply.data(), step.reply.size());
    EXPECT_EQ(back.Next(&type, &payload), FrameDecoder::Result::kFrame);
    HandshakeStep answer = dialer.OnFrame(type, payload);
    if (!answer.status.ok()) {
      return answer.status;
    }
    if (answer.established) {
      EXPECT_TRUE(step.established);
      EXPECT_EQ(acceptor.peer().member_id, 1u);
      EXPECT_EQ(acceptor.channel().lane, 3);
      EXPECT_EQ(dialer.peer().member_id, 2u);
      return absl::OkStatus();
    }
    to_acceptor = answer.reply;
  }
  return absl::InternalError("no result");
}

TEST(HandshakeTest, SameSecretEstablishesOthersAreRefused) {
  EXPECT_TRUE(Handshake("secret-0123456789", "secret-0123456789").ok());
  Status wrong = Handshake("secret-0123456789", "other-secret-0000");
  EXPECT_FALSE(wrong.ok());
  EXPECT_NE(wrong.message().find("secret"), std::string_view::npos) << wrong;
  Status cluster = Handshake("secret-0123456789", "secret-0123456789", "elsewhere");
  EXPECT_NE(cluster.message().find("cluster"), std::string_view::npos) << cluster;
}

// A listener and its io thread, for the TCP tests.
class LoopbackTest : public ::testing::Test {
 protected:
  void SetUp() override {
    listener_ = std::make_unique<PeerListener>(
        io_, PeerIdentity{"c", 100, "acceptor"}, kSecret,
        [this](std::shared_ptr<PeerConnection> connection, const PeerIdentity&, ChannelInfo) {
          connection->Start(
              [this, connection](uint8_t type, std::string_view payload) {
                received_.fetch_add(1);
                std::string echo;
                AppendFrame(&echo, type, payload);
                connection->Send(std::move(echo));
              },
              [](const Status&) {});
        });
    ASSERT_TRUE(listener_->Listen("127.0.0.1", 0).ok());
    thread_ = std::thread([this] {
      auto guard = asio::make_work_guard(io_);
      io_.run();
    });
  }
  void TearDown() override {
    asio::post(io_, [this] { listener_->Close(); });
    io_.stop();
    thread_.join();
  }

  // Dials and waits for the result.
  StatusOr<std::shared_ptr<PeerConnection>> DialAndWait(const std::string& secret) {
    std::atomic<bool> done{false};
    StatusOr<std::shared_ptr<PeerConnection>> result = absl::UnknownError("pending");
    PeerConnection::Dial(io_, "127.0.0.1", listener_->port(), {"c", 200, "dialer"}, secret, {0, 0},
                         [&](StatusOr<std::shared_ptr<PeerConnection>> dialed) {
                           result = std::move(dialed);
                           done = true;
                         });
    for (int i = 0; i < 1000 && !done; ++i) {
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
    return result;
  }

  // Sends raw bytes from a plain socket and returns what the listener did (counters).
  void SendRaw(const std::string& bytes, bool linger_ms_500) {
    asio::io_context io;
    asio::ip::tcp::socket socket(io);
    socket.connect({asio::ip::make_address("127.0.0.1"), listener_->port()});
    asio::write(socket, asio::buffer(bytes));
    if (linger_ms_500) {
      std::this_thread::sleep_for(std::chrono::milliseconds(500));
    }
  }

  static constexpr const char* kSecret = "a-cluster-secret-of-enough-bytes";
  asio::io_context io_{1};
  std::unique_ptr<PeerListener> listener_;
  std::thread thread_;
  std::atomic<int> received_{0};
};

TEST_F(LoopbackTest, FramesFlowInOrderBothWays) {
  StatusOr<std::shared_ptr<PeerConnection>> connection = DialAndWait(kSecret);
  ASSERT_TRUE(connection.ok()) << connection.status();
  std::atomic<int> echoed{0};
  std::atomic<bool> in_order{true};
  asio::post(io_, [&, c = *connection] {
    c->Start(
        [&](uint8_t, std::string_view payload) {
          if (payload != std::to_string(echoed.load())) {
            in_order = false;
          }
          echoed.fetch_add(1);
        },
        [](const Status&) {});
  });
  constexpr int kFrames = 20'000;
  for (int i = 0; i < kFrames; ++i) {
    std::string frame;
    AppendFrame(&frame, 16, std::to_string(i));
    (*connection)->Send(std::move(frame));
  }
  for (int i = 0; i < 2000 && echoed < kFrames; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  EXPECT_EQ(echoed.load(), kFrames);
  EXPECT_TRUE(in_order);
  (*connection)->Close();
}

TEST_F(LoopbackTest, WrongSecretIsRefusedAndNothingIsDelivered) {
  StatusOr<std::shared_ptr<PeerConnection>> connection =
      DialAndWait("not-the-cluster-secret-at-all!!");
  EXPECT_FALSE(connection.ok());
  EXPECT_EQ(received_.load(), 0);
}

TEST_F(LoopbackTest, GarbageTruncatedAndHttpAreRefusedWhileAGoodPeerWorks) {
  StatusOr<std::shared_ptr<PeerConnection>> good = DialAndWait(kSecret);
  ASSERT_TRUE(good.ok());
  std::atomic<int> echoed{0};
  asio::post(io_, [&, c = *good] {
    c->Start([&](uint8_t, std::string_view) { echoed.fetch_add(1); }, [](const Status&) {});
  });
  SendRaw("GET / HTTP/1.1\r\nHost: x\r\n\r\n", true);
  SendRaw(std::string(5000, '\xff'), true);
  std::string truncated;
  AppendFrame(&truncated, 1, std::string(100, 'h'));
  SendRaw(truncated.substr(0, 40), false);
  std::string frame;
  AppendFrame(&frame, 16, "still here");
  (*good)->Send(frame);
  for (int i = 0; i < 1000 && echoed == 0; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  EXPECT_EQ(echoed.load(), 1);
  EXPECT_GE(listener_->refused(), 2u);
}

}  // namespace
}  // namespace weft::transport
