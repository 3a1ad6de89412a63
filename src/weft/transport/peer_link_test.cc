// PeerListener and PeerConnection over real loopback TCP (127.0.0.1, ephemeral ports), on an
// io_context run by two threads so that different connections' handlers overlap. Every wait
// has a deadline; waits are on conditions, never on sleeps.
#include "weft/transport/peer_link.h"

#include <chrono>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "gtest/gtest.h"

#include "weft/base/hash.h"
#include "weft/base/mutex.h"

#include <spdlog/sinks/ringbuffer_sink.h>
#include <spdlog/sinks/stdout_sinks.h>
#include <spdlog/spdlog.h>
#include <sys/socket.h>
#include <sys/time.h>

namespace weft::transport {
namespace {

using namespace std::chrono_literals;

constexpr const char* kSecret = "a-cluster-secret-of-enough-bytes";
constexpr uint8_t kDataType = 16;
constexpr uint8_t kControlType = 17;

// Wakes waiters whenever something a test may wait for changed; waits re-check their condition
// at least every 10 ms, so a change without a notification only costs latency.
class Signal {
 public:
  void Notify() {
    MutexLock lock(&mutex_);
    cond_.SignalAll();
  }
  bool WaitFor(const std::function<bool()>& condition, std::chrono::milliseconds timeout) {
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    MutexLock lock(&mutex_);
    while (!condition()) {
      if (std::chrono::steady_clock::now() >= deadline) {
        return condition();
      }
      cond_.WaitFor(&mutex_, 10ms);
    }
    return true;
  }

 private:
  Mutex mutex_;
  CondVar cond_;
};

std::string Sequenced(uint64_t seq, size_t bytes) {
  std::string payload(std::max<size_t>(bytes, 8), '\0');
  for (int i = 0; i < 8; ++i) {
    payload[i] = static_cast<char>(seq >> (8 * i));
  }
  for (size_t i = 8; i < payload.size(); ++i) {
    payload[i] = static_cast<char>(seq + i);
  }
  return payload;
}

uint64_t SequenceOf(std::string_view payload) {
  uint64_t seq = 0;
  for (int i = 0; i < 8 && i < static_cast<int>(payload.size()); ++i) {
    seq |= uint64_t{static_cast<uint8_t>(payload[i])} << (8 * i);
  }
  return seq;
}

// What one end of a connection saw. Frames of each type must carry 0, 1, 2, ... in order.
class Seen {
 public:
  explicit Seen(Signal* signal) : signal_(signal) {}

  void OnFrame(uint8_t type, std::string_view payload) {
    {
      MutexLock lock(&mutex_);
      uint64_t& expected = next_[type];
      if (SequenceOf(payload) != expected || payload != Sequenced(expected, payload.size())) {
        out_of_order_ = true;
      }
      ++expected;
      ++frames_;
      bytes_ += payload.size();
      if (keep_payloads_) {
        payloads_.emplace_back(payload);
      }
    }
    signal_->Notify();
  }
  void OnClosed(const Status& reason) {
    {
      MutexLock lock(&mutex_);
      ++closed_;
      reason_ = reason;
    }
    signal_->Notify();
  }
  PeerConnection::FrameHandler FrameHandler() {
    return [this](uint8_t type, std::string_view payload) {
      OnFrame(type, payload);
    };
  }
  PeerConnection::ClosedHandler ClosedHandler() {
    return [this](const Status& reason) {
      OnClosed(reason);
    };
  }

  void KeepPayloads() {
    MutexLock lock(&mutex_);
    keep_payloads_ = true;
  }
  uint64_t frames() const {
    MutexLock lock(&mutex_);
    return frames_;
  }
  uint64_t frames_of(uint8_t type) const {
    MutexLock lock(&mutex_);
    auto it = next_.find(type);
    return it == next_.end() ? 0 : it->second;
  }
  bool out_of_order() const {
    MutexLock lock(&mutex_);
    return out_of_order_;
  }
  int closed() const {
    MutexLock lock(&mutex_);
    return closed_;
  }
  std::string reason() const {
    MutexLock lock(&mutex_);
    return std::string(reason_.message());
  }
  std::vector<std::string> payloads() const {
    MutexLock lock(&mutex_);
    return payloads_;
  }

 private:
  Signal* const signal_;
  mutable Mutex mutex_;
  std::map<uint8_t, uint64_t> next_ ABSL_GUARDED_BY(mutex_);
  uint64_t frames_ ABSL_GUARDED_BY(mutex_) = 0;
  uint64_t bytes_ ABSL_GUARDED_BY(mutex_) = 0;
  bool out_of_order_ ABSL_GUARDED_BY(mutex_) = false;
  int closed_ ABSL_GUARDED_BY(mutex_) = 0;
  Status reason_ ABSL_GUARDED_BY(mutex_);
  bool keep_payloads_ ABSL_GUARDED_BY(mutex_) = false;
  std::vector<std::string> payloads_ ABSL_GUARDED_BY(mutex_);
};

// Produces `count` data frames of `payload_bytes` (count 0: without end), as a replication
// outbox would: several per Fill, up to about max_bytes.
class SequenceSource final : public FrameSource {
 public:
  SequenceSource(uint64_t count, size_t payload_bytes)
      : count_(count), payload_bytes_(payload_bytes) {}

  bool Fill(std::string* out, size_t max_bytes) override {
    const size_t start = out->size();
    bool any = false;
    while ((count_ == 0 || next_ < count_) && (!any || out->size() - start < max_bytes)) {
      FrameBuilder frame(out, kDataType);
      frame.out()->append(Sequenced(next_++, payload_bytes_));
      frame.Finish();
      any = true;
    }
    pulled_bytes_.fetch_add(out->size() - start, std::memory_order_relaxed);
    fills_.fetch_add(1, std::memory_order_relaxed);
    return any;
  }

  uint64_t pulled_bytes() const { return pulled_bytes_.load(std::memory_order_relaxed); }
  uint64_t fills() const { return fills_.load(std::memory_order_relaxed); }

 private:
  const uint64_t count_;
  const size_t payload_bytes_;
  uint64_t next_ = 0;  // the connection's strand only
  std::atomic<uint64_t> pulled_bytes_{0};
  std::atomic<uint64_t> fills_{0};
};

std::string DataFrame(uint8_t type, uint64_t seq, size_t bytes) {
  std::string frame;
  AppendFrame(&frame, type, Sequenced(seq, bytes));
  return frame;
}

// A plain blocking TCP client for speaking (or not speaking) the protocol by hand.
class RawClient {
 public:
  explicit RawClient(uint16_t port) : socket_(io_) {
    std::error_code error;
    socket_.connect({asio::ip::make_address("127.0.0.1"), port}, error);
    EXPECT_FALSE(error) << error.message();
    timeval timeout{5, 0};  // a blocked read fails the test instead of hanging it
    setsockopt(socket_.native_handle(), SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof(timeout));
  }

  // "127.0.0.1:port", as the listener's log names this client.
  std::string address() const {
    std::error_code error;
    const auto endpoint = socket_.local_endpoint(error);
    return endpoint.address().to_string() + ":" + std::to_string(endpoint.port());
  }

  void Write(std::string_view bytes) {
    std::error_code error;
    asio::write(socket_, asio::buffer(bytes.data(), bytes.size()), error);
    EXPECT_FALSE(error) << error.message();
  }

  // Reads until one frame is complete; false on EOF, error or timeout.
  bool ReadFrame(Frame* frame) {
    while (true) {
      const FrameDecoder::Result result = decoder_.Next(frame);
      if (result == FrameDecoder::Result::kFrame) {
        return true;
      }
      if (result == FrameDecoder::Result::kError) {
        return false;
      }
      char buffer[4096];
      std::error_code error;
      const size_t bytes = socket_.read_some(asio::buffer(buffer), error);
      if (error) {
        return false;
      }
      decoder_.Feed(buffer, bytes);
    }
  }

  // Runs the dialer's handshake by hand (the sans-I/O state machine over a blocking socket).
  Status Handshake(const PeerIdentity& self, const std::string& secret) {
    DialerHandshake dialer(self, secret, ChannelInfo{1, 3}, NewNonce());
    Write(dialer.Hello());
    while (!dialer.established()) {
      Frame frame;
      if (!ReadFrame(&frame)) {
        return absl::UnavailableError("no frame");
      }
      HandshakeStep step = dialer.OnFrame(frame.type, frame.payload);
      if (!step.status.ok()) {
        return step.status;
      }
      Write(step.reply);
    }
    return absl::OkStatus();
  }

  void Close() {
    std::error_code ignored;
    socket_.close(ignored);
  }

 private:
  asio::io_context io_;
  asio::ip::tcp::socket socket_;
  FrameDecoder decoder_;
};

class PeerLinkTest : public ::testing::Test {
 protected:
  void SetUp() override {
    previous_logger_ = spdlog::default_logger();
    log_ = std::make_shared<spdlog::sinks::ringbuffer_sink_mt>(1000);
    auto logger = std::make_shared<spdlog::logger>(
        "peer_link_test",
        spdlog::sinks_init_list{log_, std::make_shared<spdlog::sinks::stderr_sink_mt>()});
    spdlog::set_default_logger(logger);
    for (int i = 0; i < 2; ++i) {
      threads_.emplace_back([this] { io_.run(); });
    }
  }

  void TearDown() override {
    {
      MutexLock lock(&mutex_);
      for (auto& connection : accepted_) {
        connection->Close();
      }
    }
    listener_.reset();
    work_.reset();
    io_.stop();
    for (std::thread& thread : threads_) {
      thread.join();
    }
    spdlog::set_default_logger(previous_logger_);
  }

  // Listens as member 100; every accepted connection is started with `listener_seen_` and,
  // if set, given `listener_source_`.
  void Listen(PeerLinkOptions options = {}) {
    listener_ = std::make_unique<PeerListener>(
        io_, PeerIdentity{"test", 100, "listener"}, kSecret,
        [this](std::shared_ptr<PeerConnection> connection, const PeerIdentity& peer,
               ChannelInfo channel) {
          EXPECT_EQ(peer.member_id, 200u);
          EXPECT_EQ(peer.member_name, "dialer");
          EXPECT_EQ(channel.kind, 1);
          EXPECT_EQ(channel.lane, 3);
          if (echo_) {
            std::weak_ptr<PeerConnection> weak = connection;
            connection->Start(
                [this, weak](uint8_t type, std::string_view payload) {
                  listener_seen_.OnFrame(type, payload);
                  if (auto connection = weak.lock()) {
                    std::string frame;
                    AppendFrame(&frame, type, payload);
                    connection->Send(std::move(frame));
                  }
                },
                listener_seen_.ClosedHandler());
          } else {
            connection->Start(listener_seen_.FrameHandler(), listener_seen_.ClosedHandler());
          }
          if (listener_source_ != nullptr) {
            connection->SetSource(listener_source_);
          }
          {
            MutexLock lock(&mutex_);
            accepted_.push_back(std::move(connection));
          }
          signal_.Notify();  // never under mutex_: waiters take it inside Signal's mutex
        },
        options);
    ASSERT_TRUE(listener_->Listen("127.0.0.1", 0).ok());
    ASSERT_NE(listener_->port(), 0);
  }

  StatusOr<std::shared_ptr<PeerConnection>> Dial(PeerIdentity self = {"test", 200, "dialer"},
                                                 std::string secret = kSecret,
                                                 std::string host = "127.0.0.1",
                                                 std::optional<uint16_t> port = std::nullopt,
                                                 PeerLinkOptions options = {}) {
    auto result = std::make_shared<std::optional<StatusOr<std::shared_ptr<PeerConnection>>>>();
    auto mutex = std::make_shared<Mutex>();
    PeerConnection::Dial(
        io_, host, port.value_or(listener_->port()), self, secret, ChannelInfo{1, 3},
        [this, result, mutex](StatusOr<std::shared_ptr<PeerConnection>> dialed) {
          {
            MutexLock lock(mutex.get());
            *result = std::move(dialed);
          }
          signal_.Notify();
        },
        options);
    const bool done = signal_.WaitFor(
        [&] {
          MutexLock lock(mutex.get());
          return result->has_value();
        },
        20s);
    if (!done) {
      return absl::DeadlineExceededError("the dial did not complete");
    }
    MutexLock lock(mutex.get());
    return **result;
  }

  std::shared_ptr<PeerConnection> AcceptedConnection(size_t index) {
    signal_.WaitFor(
        [&] {
          MutexLock lock(&mutex_);
          return accepted_.size() > index;
        },
        10s);
    MutexLock lock(&mutex_);
    return accepted_.size() > index ? accepted_[index] : nullptr;
  }

  bool Logged(std::string_view text) {
    for (const std::string& line : log_->last_formatted()) {
      if (line.find(text) != std::string::npos) {
        return true;
      }
    }
    return false;
  }

  bool WaitFor(const std::function<bool()>& condition, std::chrono::milliseconds timeout = 20s) {
    return signal_.WaitFor(condition, timeout);
  }

  // Handlers and sources outlive the test body: connections may still call them until
  // TearDown has stopped the io threads.
  Seen& NewSeen() {
    seens_.push_back(std::make_unique<Seen>(&signal_));
    return *seens_.back();
  }
  SequenceSource& NewSource(uint64_t count, size_t payload_bytes) {
    sources_.push_back(std::make_unique<SequenceSource>(count, payload_bytes));
    return *sources_.back();
  }

  asio::io_context io_;
  std::optional<asio::executor_work_guard<asio::io_context::executor_type>> work_{
      asio::make_work_guard(io_)};
  std::vector<std::thread> threads_;
  Signal signal_;
  std::shared_ptr<spdlog::logger> previous_logger_;
  std::shared_ptr<spdlog::sinks::ringbuffer_sink_mt> log_;

  std::unique_ptr<PeerListener> listener_;
  Seen listener_seen_{&signal_};
  FrameSource* listener_source_ = nullptr;
  bool echo_ = false;
  Mutex mutex_;
  std::vector<std::shared_ptr<PeerConnection>> accepted_ ABSL_GUARDED_BY(mutex_);
  std::vector<std::unique_ptr<Seen>> seens_;
  std::vector<std::unique_ptr<SequenceSource>> sources_;
};

TEST_F(PeerLinkTest, HundredThousandFramesEachWayArriveInOrder) {
  constexpr uint64_t kFrames = 100'000;
  constexpr uint64_t kControlFrames = 2'000;
  SequenceSource& listener_source = NewSource(kFrames, 100);
  listener_source_ = &listener_source;
  Listen();
  StatusOr<std::shared_ptr<PeerConnection>> dialed = Dial();
  ASSERT_TRUE(dialed.ok()) << dialed.status();
  std::shared_ptr<PeerConnection> connection = *dialed;
  EXPECT_EQ(connection->peer().member_id, 100u);
  EXPECT_EQ(connection->peer().member_name, "listener");

  Seen& seen = NewSeen();
  SequenceSource& source = NewSource(kFrames, 100);
  connection->Start(seen.FrameHandler(), seen.ClosedHandler());
  connection->SetSource(&source);
  // Control frames from another thread, interleaved with the pulled ones.
  for (uint64_t i = 0; i < kControlFrames; ++i) {
    connection->Send(DataFrame(kControlType, i, 20));
  }

  ASSERT_TRUE(WaitFor(
      [&] {
        return seen.frames() == kFrames && listener_seen_.frames() == kFrames + kControlFrames;
      },
      120s))
      << seen.frames() << " and " << listener_seen_.frames();
  EXPECT_FALSE(seen.out_of_order());
  EXPECT_FALSE(listener_seen_.out_of_order());
  EXPECT_EQ(listener_seen_.frames_of(kControlType), kControlFrames);

  std::shared_ptr<PeerConnection> accepted = AcceptedConnection(0);
  ASSERT_NE(accepted, nullptr);
  EXPECT_TRUE(WaitFor([&] { return connection->frames_out() == kFrames + kControlFrames; }));
  EXPECT_EQ(connection->frames_in(), kFrames);
  EXPECT_EQ(accepted->frames_in(), kFrames + kControlFrames);
  EXPECT_TRUE(WaitFor([&] { return accepted->frames_out() == kFrames; }));
  EXPECT_EQ(connection->bytes_in(), accepted->bytes_out());
  EXPECT_EQ(accepted->bytes_in(), connection->bytes_out());
  // Pulling batches: far fewer Fill calls than frames.
  EXPECT_LT(source.fills(), kFrames / 10);
  EXPECT_EQ(listener_->accepted(), 1u);
  EXPECT_EQ(listener_->refused(), 0u);

  connection->SetSource(nullptr);
  connection->Close();
  EXPECT_TRUE(WaitFor([&] { return seen.closed() == 1 && listener_seen_.closed() == 1; }));
  EXPECT_EQ(seen.reason(), "closed by this member");
  EXPECT_EQ(listener_seen_.reason(), "closed by the peer");
}

TEST_F(PeerLinkTest, SixteenMebibyteFramesBothWays) {
  constexpr size_t kBytes = 16 << 20;
  SequenceSource& listener_source = NewSource(2, kBytes);
  listener_source_ = &listener_source;
  Listen();
  StatusOr<std::shared_ptr<PeerConnection>> dialed = Dial();
  ASSERT_TRUE(dialed.ok()) << dialed.status();
  Seen& seen = NewSeen();
  (*dialed)->Start(seen.FrameHandler(), seen.ClosedHandler());
  for (uint64_t i = 0; i < 3; ++i) {
    (*dialed)->Send(DataFrame(kDataType, i, kBytes));
  }
  ASSERT_TRUE(WaitFor([&] { return seen.frames() == 2 && listener_seen_.frames() == 3; }, 60s))
      << seen.frames() << " and " << listener_seen_.frames();
  EXPECT_FALSE(seen.out_of_order());  // every byte of every payload is checked
  EXPECT_FALSE(listener_seen_.out_of_order());
  (*dialed)->Close();
}

TEST_F(PeerLinkTest, WrongSecretIsRefusedWithTheReasonLoggedAndNoFrameDelivered) {
  Listen();
  StatusOr<std::shared_ptr<PeerConnection>> dialed =
      Dial({"test", 200, "dialer"}, "not-the-cluster-secret-at-all!!");
  ASSERT_FALSE(dialed.ok());
  EXPECT_EQ(dialed.status().code(), absl::StatusCode::kPermissionDenied);
  EXPECT_NE(dialed.status().message().find(
                "the acceptor listener (0000000000000064) failed to prove it knows the cluster "
                "secret"),
            std::string::npos)
      << dialed.status();
  ASSERT_TRUE(WaitFor([&] { return listener_->refused() == 1; }));
  EXPECT_TRUE(Logged("refused peer connection from 127.0.0.1:"));
  EXPECT_TRUE(Logged("the dialer closed the connection instead of sending its Proof"));

  // A dialer that sends a proof anyway is refused for the proof itself.
  RawClient raw(listener_->port());
  DialerHandshake dialer({"test", 300, "liar"}, "not-the-cluster-secret-at-all!!", {}, NewNonce());
  raw.Write(dialer.Hello());
  Frame challenge;
  ASSERT_TRUE(raw.ReadFrame(&challenge));
  EXPECT_EQ(challenge.type, static_cast<uint8_t>(HandshakeType::kChallenge));
  std::string proof;
  AppendFrame(&proof, static_cast<uint8_t>(HandshakeType::kProof), std::string(kProofBytes, 'p'));
  raw.Write(proof);
  raw.Write(DataFrame(kDataType, 0, 10));  // must never be delivered
  Frame nothing;
  EXPECT_FALSE(raw.ReadFrame(&nothing));  // closed without a Welcome
  ASSERT_TRUE(WaitFor([&] { return listener_->refused() == 2; }));
  EXPECT_TRUE(Logged("refused peer connection from " + raw.address() +
                     ": the dialer liar (000000000000012c) failed to prove it knows the "
                     "cluster secret"));

  EXPECT_EQ(listener_->accepted(), 0u);
  EXPECT_EQ(listener_seen_.frames(), 0u);
}

TEST_F(PeerLinkTest, OtherClusterAndSelfConnectionAreRefused) {
  Listen();
  StatusOr<std::shared_ptr<PeerConnection>> other = Dial({"elsewhere", 200, "dialer"});
  ASSERT_FALSE(other.ok());
  EXPECT_NE(other.status().message().find("the acceptor closed the connection instead of "
                                          "answering the Hello"),
            std::string::npos)
      << other.status();
  StatusOr<std::shared_ptr<PeerConnection>> self = Dial({"test", 100, "listener"});
  ASSERT_FALSE(self.ok());
  ASSERT_TRUE(WaitFor([&] { return listener_->refused() == 2; }));
  EXPECT_TRUE(Logged("the dialer dialer belongs to cluster 'elsewhere'; this member to 'test'"));
  EXPECT_TRUE(Logged("the dialer has this member's own id 0000000000000064"));
  EXPECT_EQ(listener_->accepted(), 0u);
}

TEST_F(PeerLinkTest, BadPeersAreRefusedWhileAGoodConnectionKeepsWorking) {
  echo_ = true;
  PeerLinkOptions options;
  options.handshake_timeout_ms = 500;
  Listen(options);
  StatusOr<std::shared_ptr<PeerConnection>> good = Dial();
  ASSERT_TRUE(good.ok()) << good.status();
  Seen& seen = NewSeen();
  (*good)->Start(seen.FrameHandler(), seen.ClosedHandler());
  uint64_t sent = 0;
  auto exchange = [&](int frames) {
    for (int i = 0; i < frames; ++i) {
      (*good)->Send(DataFrame(kDataType, sent++, 1000));
    }
    return WaitFor([&] { return seen.frames() == sent; });
  };
  ASSERT_TRUE(exchange(100));

  struct Bad {
    std::string bytes;
    bool close_after_write;
    std::string reason;
  };
  std::string truncated;
  AppendFrame(&truncated, static_cast<uint8_t>(HandshakeType::kHello), std::string(60, 'h'));
  std::string oversized(kFrameHeaderBytes, '\0');
  oversized[0] = static_cast<char>(kProtocolVersion);
  oversized[1] = static_cast<char>(HandshakeType::kHello);
  oversized[7] = 0x25;  // 600 MiB announced, then nothing
  const std::vector<Bad> bad = {
      {std::string(5000, '\xff'), false, "frame of protocol version 255; this member speaks 1"},
      {"GET / HTTP/1.1\r\nHost: weft\r\n\r\n", false,
       "frame of protocol version 71; this member speaks 1"},
      {truncated.substr(0, 40), true, "the peer closed the connection before its Hello"},
      {"", false, "no handshake within 500 ms (waiting for the peer's Hello)"},
      {oversized, false, "frame of type 1 announces 620756992 payload bytes; the limit is 1024"},
      {DataFrame(kDataType, 0, 10), false, "a data frame (type 16) before the handshake"},
  };
  uint64_t refused = 0;
  for (const Bad& peer : bad) {
    RawClient raw(listener_->port());
    raw.Write(peer.bytes);
    if (peer.close_after_write) {
      raw.Close();
    }
    ++refused;
    ASSERT_TRUE(WaitFor([&] { return listener_->refused() == refused; })) << peer.reason;
    EXPECT_TRUE(Logged(peer.reason)) << peer.reason;
    if (!peer.close_after_write) {
      EXPECT_TRUE(Logged("refused peer connection from " + raw.address() + ": " + peer.reason))
          << peer.reason;
      Frame frame;
      EXPECT_FALSE(raw.ReadFrame(&frame));  // closed, and nothing was sent
    }
    ASSERT_TRUE(exchange(10)) << "after " << peer.reason;
  }
  EXPECT_EQ(listener_->accepted(), 1u);
  EXPECT_EQ(listener_->pending_handshakes(), 0u);
  EXPECT_EQ(seen.closed(), 0);
  EXPECT_FALSE(seen.out_of_order());
  (*good)->Close();
}

TEST_F(PeerLinkTest, PeerClosingMidFrameReportsClosedOnce) {
  Listen();
  RawClient raw(listener_->port());
  ASSERT_TRUE(raw.Handshake({"test", 200, "dialer"}, kSecret).ok());
  std::shared_ptr<PeerConnection> accepted = AcceptedConnection(0);
  ASSERT_NE(accepted, nullptr);
  const std::string frame = DataFrame(kDataType, 0, 1000);
  raw.Write(DataFrame(kDataType, 0, 10));
  raw.Write(std::string_view(frame).substr(0, 500));
  ASSERT_TRUE(WaitFor([&] { return listener_seen_.frames() == 1; }));
  raw.Close();
  ASSERT_TRUE(WaitFor([&] { return listener_seen_.closed() == 1; }));
  EXPECT_EQ(listener_seen_.reason(),
            "closed by the peer in the middle of a frame (500 bytes of it received)");
  accepted->Close();
  accepted->Close();
  EXPECT_FALSE(WaitFor([&] { return listener_seen_.closed() > 1; }, 300ms));
}

TEST_F(PeerLinkTest, CloseFlushesSentFramesAndEachSideSeesOneClose) {
  Listen();
  StatusOr<std::shared_ptr<PeerConnection>> dialed = Dial();
  ASSERT_TRUE(dialed.ok()) << dialed.status();
  Seen& seen = NewSeen();
  (*dialed)->Start(seen.FrameHandler(), seen.ClosedHandler());
  for (uint64_t i = 0; i < 50; ++i) {
    (*dialed)->Send(DataFrame(kDataType, i, 5000));
  }
  (*dialed)->Close();
  (*dialed)->Send(DataFrame(kDataType, 50, 10));  // after Close: dropped
  ASSERT_TRUE(WaitFor([&] { return seen.closed() == 1 && listener_seen_.closed() == 1; }));
  EXPECT_EQ(listener_seen_.frames(), 50u);
  EXPECT_FALSE(listener_seen_.out_of_order());
  EXPECT_EQ(seen.reason(), "closed by this member");
  EXPECT_EQ(listener_seen_.reason(), "closed by the peer");
  EXPECT_FALSE(WaitFor([&] { return seen.closed() > 1 || listener_seen_.closed() > 1; }, 300ms));
}

TEST_F(PeerLinkTest, CloseBeforeStartIsReportedByStart) {
  Listen();
  StatusOr<std::shared_ptr<PeerConnection>> dialed = Dial();
  ASSERT_TRUE(dialed.ok()) << dialed.status();
  (*dialed)->Close();
  Seen& seen = NewSeen();
  (*dialed)->Start(seen.FrameHandler(), seen.ClosedHandler());
  ASSERT_TRUE(WaitFor([&] { return seen.closed() == 1; }));
  EXPECT_EQ(seen.reason(), "closed by this member");
}

TEST_F(PeerLinkTest, PausedReaderStopsTheSenderFromPulling) {
  Listen();
  StatusOr<std::shared_ptr<PeerConnection>> dialed = Dial();
  ASSERT_TRUE(dialed.ok()) << dialed.status();
  std::shared_ptr<PeerConnection> accepted = AcceptedConnection(0);
  ASSERT_NE(accepted, nullptr);
  accepted->PauseReading();

  PeerLinkOptions defaults;
  SequenceSource& endless = NewSource(0, 64 * 1024);
  Seen& seen = NewSeen();
  (*dialed)->Start(seen.FrameHandler(), seen.ClosedHandler());
  (*dialed)->SetSource(&endless);
  // The socket buffers fill and then nothing more is pulled: pulling stays within one batch
  // of what was written, and what was written within what the kernel buffers.
  EXPECT_FALSE(WaitFor([&] { return endless.pulled_bytes() > (256u << 20); }, 1500ms));
  EXPECT_TRUE(WaitFor([&] { return (*dialed)->writing(); }));  // stuck on a full socket
  const uint64_t pulled = endless.pulled_bytes();
  const uint64_t written = (*dialed)->bytes_out();  // read after: a write may finish between
  EXPECT_LE(pulled, written + defaults.write_batch_bytes + 2 * 64 * 1024);
  EXPECT_EQ(listener_seen_.frames(), 0u);

  accepted->ResumeReading();
  const uint64_t before = endless.pulled_bytes();
  EXPECT_TRUE(WaitFor([&] {
    return listener_seen_.frames() > 1000 && endless.pulled_bytes() > before + (32u << 20);
  }));
  EXPECT_FALSE(listener_seen_.out_of_order());
  (*dialed)->SetSource(nullptr);
  (*dialed)->Close();
}

TEST_F(PeerLinkTest, PauseInsideTheHandlerStopsAtTheNextFrame) {
  Listen();
  StatusOr<std::shared_ptr<PeerConnection>> dialed = Dial();
  ASSERT_TRUE(dialed.ok()) << dialed.status();
  std::shared_ptr<PeerConnection> accepted = AcceptedConnection(0);
  ASSERT_NE(accepted, nullptr);
  Seen& seen = NewSeen();
  // Replace the fixture's handlers: this dialer is the receiver here.
  std::weak_ptr<PeerConnection> weak = *dialed;
  (*dialed)->Start(
      [&, weak](uint8_t type, std::string_view payload) {
        seen.OnFrame(type, payload);
        if (seen.frames() == 10) {
          weak.lock()->PauseReading();
        }
      },
      seen.ClosedHandler());
  std::string burst;
  for (uint64_t i = 0; i < 100; ++i) {
    AppendFrame(&burst, kDataType, Sequenced(i, 100));
  }
  accepted->Send(burst);  // one write: the frames arrive together
  ASSERT_TRUE(WaitFor([&] { return accepted->frames_out() == 100; }));
  EXPECT_FALSE(WaitFor([&] { return seen.frames() > 10; }, 300ms));
  EXPECT_EQ(seen.frames(), 10u);
  (*dialed)->ResumeReading();
  EXPECT_TRUE(WaitFor([&] { return seen.frames() == 100; }));
  EXPECT_FALSE(seen.out_of_order());
  (*dialed)->Close();
}

TEST_F(PeerLinkTest, SendQueueBeyondItsBoundClosesTheConnection) {
  Listen();
  PeerLinkOptions options;
  options.send_queue_bytes_max = 4 << 20;
  StatusOr<std::shared_ptr<PeerConnection>> dialed =
      Dial({"test", 200, "dialer"}, kSecret, "127.0.0.1", std::nullopt, options);
  ASSERT_TRUE(dialed.ok()) << dialed.status();
  std::shared_ptr<PeerConnection> accepted = AcceptedConnection(0);
  ASSERT_NE(accepted, nullptr);
  accepted->PauseReading();
  Seen& seen = NewSeen();
  (*dialed)->Start(seen.FrameHandler(), seen.ClosedHandler());
  for (uint64_t i = 0; i < 200 && seen.closed() == 0; ++i) {
    (*dialed)->Send(DataFrame(kDataType, i, 1 << 20));
  }
  ASSERT_TRUE(WaitFor([&] { return seen.closed() == 1; }));
  EXPECT_EQ(seen.reason(), "more than 4194304 bytes queued for sending: the peer is not reading");
  EXPECT_TRUE(Logged("more than 4194304 bytes queued"));
}

TEST_F(PeerLinkTest, DialByNameAndDialFailures) {
  Listen();
  StatusOr<std::shared_ptr<PeerConnection>> by_name =
      Dial({"test", 200, "dialer"}, kSecret, "localhost");
  // localhost may resolve to ::1 first; the listener is on 127.0.0.1, and the dial tries each.
  ASSERT_TRUE(by_name.ok()) << by_name.status();
  (*by_name)->Close();

  const uint16_t port = listener_->port();
  listener_->Close();
  StatusOr<std::shared_ptr<PeerConnection>> closed =
      Dial({"test", 200, "dialer"}, kSecret, "127.0.0.1", port);
  ASSERT_FALSE(closed.ok());
  EXPECT_NE(closed.status().message().find("cannot connect to 127.0.0.1:"), std::string::npos)
      << closed.status();

  StatusOr<std::shared_ptr<PeerConnection>> no_secret =
      Dial({"test", 200, "dialer"}, "", "127.0.0.1", port);
  EXPECT_EQ(no_secret.status().message(), "the cluster secret is empty");
}

TEST_F(PeerLinkTest, SilentAcceptorHitsTheDialersHandshakeDeadline) {
  // A socket that accepts and never answers: the dialer gives up at its deadline.
  asio::ip::tcp::acceptor silent(io_, {asio::ip::make_address("127.0.0.1"), 0});
  PeerLinkOptions options;
  options.handshake_timeout_ms = 300;
  Listen();
  StatusOr<std::shared_ptr<PeerConnection>> dialed =
      Dial({"test", 200, "dialer"}, kSecret, "127.0.0.1", silent.local_endpoint().port(), options);
  ASSERT_FALSE(dialed.ok());
  EXPECT_EQ(dialed.status().message(),
            "no handshake within 300 ms (waiting for the peer's Challenge)");
}

}  // namespace
}  // namespace weft::transport
