// PeerConnection: dialing, the handshake on a socket, reading frames, the pulled write path,
// and closing. PeerListener lives in peer_listener.cc.
#include "weft/transport/peer_link.h"

#include <algorithm>
#include <chrono>
#include <utility>

#include "weft/base/check.h"
#include "weft/base/logging.h"
#include "weft/base/strings.h"
#include "weft/transport/peer_link_internal.h"

#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>

namespace weft::transport {
namespace {

// Reads ask for at least this much room: big enough that a stream of small frames costs few
// system calls, small enough per wake-up that one busy connection does not starve others.
constexpr size_t kReadChunkBytes = 64 * 1024;
// Handshake frames are tiny; an unauthenticated peer gets no more room than this.
constexpr size_t kHandshakeReadBytes = 2 * 1024;
// A write buffer that grew past this for a huge frame is released rather than kept.
constexpr size_t kRetainedWriteBufferBytes = 8 << 20;

// User frames in a sequence of whole frames, or nullopt if it is not one.
std::optional<size_t> CountUserFrames(std::string_view bytes) {
  size_t frames = 0;
  while (!bytes.empty()) {
    if (bytes.size() < kFrameHeaderBytes) {
      return std::nullopt;
    }
    size_t length = 0;
    for (int i = 0; i < 4; ++i) {
      length |= size_t{static_cast<uint8_t>(bytes[4 + i])} << (8 * i);
    }
    if (bytes.size() - kFrameHeaderBytes < length) {
      return std::nullopt;
    }
    if (static_cast<uint8_t>(bytes[1]) >= kFirstUserFrameType) {
      ++frames;
    }
    bytes.remove_prefix(kFrameHeaderBytes + length);
  }
  return frames;
}

// Keepalive probes after timeout/2 of silence, then every timeout/6, three of them: a dead
// peer is declared after about `timeout_ms`, as is data left unacknowledged that long.
void DetectDeadPeer(asio::ip::tcp::socket& socket, int64_t timeout_ms) {
  if (timeout_ms <= 0) {
    return;
  }
  const int fd = socket.native_handle();
  const int on = 1;
  const int idle_s = static_cast<int>(std::max<int64_t>(1, timeout_ms / 2000));
  const int interval_s = static_cast<int>(std::max<int64_t>(1, timeout_ms / 6000));
  const int probes = 3;
  const unsigned user_timeout_ms = static_cast<unsigned>(timeout_ms);
  // Best effort: a failure leaves the kernel's defaults, which only detect later.
  (void)setsockopt(fd, SOL_SOCKET, SO_KEEPALIVE, &on, sizeof(on));
  (void)setsockopt(fd, IPPROTO_TCP, TCP_KEEPIDLE, &idle_s, sizeof(idle_s));
  (void)setsockopt(fd, IPPROTO_TCP, TCP_KEEPINTVL, &interval_s, sizeof(interval_s));
  (void)setsockopt(fd, IPPROTO_TCP, TCP_KEEPCNT, &probes, sizeof(probes));
  (void)setsockopt(fd, IPPROTO_TCP, TCP_USER_TIMEOUT, &user_timeout_ms, sizeof(user_timeout_ms));
}

}  // namespace

std::string DescribeEndpoint(const asio::ip::tcp::endpoint& endpoint) {
  const asio::ip::address address = endpoint.address();
  return address.is_v6() ? StrCat("[", address.to_string(), "]:", endpoint.port())
                         : StrCat(address.to_string(), ":", endpoint.port());
}

PeerConnection::PeerConnection(PassKey, Strand strand, asio::ip::tcp::socket socket,
                               const PeerLinkOptions& options)
    : strand_(std::move(strand)),
      socket_(std::move(socket)),
      timer_(strand_),
      options_(options),
      decoder_(kHandshakePayloadMax) {
  std::error_code error;
  const asio::ip::tcp::endpoint endpoint = socket_.remote_endpoint(error);
  if (!error) {
    remote_ = DescribeEndpoint(endpoint);
  }
}

PeerConnection::~PeerConnection() = default;

void PeerConnection::Dial(asio::io_context& io, std::string host, uint16_t port,
                          const PeerIdentity& self, std::string secret, ChannelInfo channel,
                          DialHandler done, const PeerLinkOptions& options) {
  const Status valid = ValidateHandshakeConfig(self, secret);
  if (!valid.ok()) {
    asio::post(io, [done = std::move(done), valid] { done(valid); });
    return;
  }
  Strand strand = asio::make_strand(io);
  asio::ip::tcp::socket socket(strand);
  auto connection = std::make_shared<PeerConnection>(PassKey{}, strand, std::move(socket), options);
  connection->remote_ = StrCat(host, ":", port);  // until connected
  connection->channel_ = channel;
  connection->dialer_.emplace(self, std::move(secret), channel, NewNonce());
  connection->on_handshake_ = [done = std::move(done)](const Status& status,
                                                       std::shared_ptr<PeerConnection> self) {
    if (status.ok()) {
      done(std::move(self));
    } else {
      done(status);
    }
  };
  asio::post(connection->strand_,
             [connection, host = std::move(host), port] { connection->BeginDial(host, port); });
}

void PeerConnection::BeginDial(const std::string& host, uint16_t port) {
  ArmTimer(options_.connect_timeout_ms);
  resolver_.emplace(strand_);
  resolver_->async_resolve(
      host, std::to_string(port), asio::ip::tcp::resolver::numeric_service,
      [self = shared_from_this(), host, port](const std::error_code& error,
                                              asio::ip::tcp::resolver::results_type results) {
        if (self->state_ != State::kConnecting) {
          return;  // timed out
        }
        if (error) {
          self->Terminate(
              absl::UnavailableError(StrCat("cannot resolve ", host, ": ", error.message())));
          return;
        }
        asio::async_connect(
            self->socket_, results,
            [self, host, port](const std::error_code& error, const asio::ip::tcp::endpoint&) {
              self->OnConnected(error, host, port);
            });
      });
}

void PeerConnection::OnConnected(const std::error_code& error, const std::string& host,
                                 uint16_t port) {
  if (state_ != State::kConnecting) {
    return;  // timed out
  }
  if (error) {
    Terminate(absl::UnavailableError(
        StrCat("cannot connect to ", host, ":", port, ": ", error.message())));
    return;
  }
  resolver_.reset();
  std::error_code ignored;
  const asio::ip::tcp::endpoint endpoint = socket_.remote_endpoint(ignored);
  if (!ignored) {
    remote_ = DescribeEndpoint(endpoint);
  }
  BeginHandshake();
}

void PeerConnection::BeginHandshake() {
  state_ = State::kHandshake;
  std::error_code ignored;
  socket_.set_option(asio::ip::tcp::no_delay(true), ignored);
  DetectDeadPeer(socket_, options_.dead_peer_timeout_ms);
  ArmTimer(options_.handshake_timeout_ms);
  if (dialer_) {
    QueueFrames(dialer_->Hello());
  }
  MaybeWrite();
  Read();
}

void PeerConnection::ArmTimer(int64_t timeout_ms) {
  // A generation, because an expired wait may already be queued when the timer is re-armed.
  const uint64_t generation = ++timer_generation_;
  timer_.expires_after(std::chrono::milliseconds(timeout_ms));
  timer_.async_wait([self = shared_from_this(), generation,
                     timeout_ms](const std::error_code& error) {
    if (error || generation != self->timer_generation_) {
      return;
    }
    switch (self->state_) {
      case State::kConnecting:
        self->Terminate(absl::DeadlineExceededError(
            StrCat("no connection to ", self->remote_, " within ", timeout_ms, " ms")));
        break;
      case State::kHandshake:
        self->Terminate(absl::DeadlineExceededError(StrCat(
            "no handshake within ", timeout_ms, " ms (waiting for the peer's ",
            self->dialer_ ? self->dialer_->waiting_for() : self->acceptor_->waiting_for(), ")")));
        break;
      case State::kClosing:
        self->Terminate(absl::CancelledError("closed by this member"));
        break;
      case State::kEstablished:
      case State::kClosed:
        break;
    }
  });
}

void PeerConnection::Start(FrameHandler on_frame, ClosedHandler on_closed) {
  asio::post(strand_, [self = shared_from_this(), on_frame = std::move(on_frame),
                       on_closed = std::move(on_closed)]() mutable {
    WEFT_DCHECK(!self->started_);
    if (self->started_) {
      return;
    }
    self->started_ = true;
    self->on_frame_ = std::move(on_frame);
    self->on_closed_ = std::move(on_closed);
    if (!self->close_reason_.ok()) {
      self->ReportClosed(self->close_reason_);  // closed before it started
      return;
    }
    self->Pump();
  });
}

void PeerConnection::Read() {
  if (read_pending_ || state_ == State::kConnecting || state_ == State::kClosed) {
    return;
  }
  if (state_ == State::kEstablished && (!started_ || paused_.load(std::memory_order_acquire) ||
                                        close_requested_.load(std::memory_order_acquire))) {
    return;  // the owner is not taking frames: leave them in the socket (back-pressure)
  }
  read_pending_ = true;
  const std::span<char> space =
      decoder_.PrepareAppend(state_ == State::kHandshake ? kHandshakeReadBytes : kReadChunkBytes);
  socket_.async_read_some(asio::buffer(space.data(), space.size()),
                          [self = shared_from_this()](const std::error_code& error, size_t bytes) {
                            self->OnRead(error, bytes);
                          });
}

void PeerConnection::OnRead(const std::error_code& error, size_t bytes) {
  read_pending_ = false;
  if (state_ == State::kClosed) {
    return;
  }
  if (error) {
    if (error == asio::error::eof) {
      Terminate(PeerClosedReason());
    } else {
      Terminate(absl::UnavailableError(StrCat("read failed: ", error.message())));
    }
    return;
  }
  decoder_.CommitAppend(bytes);
  bytes_in_.fetch_add(bytes, std::memory_order_relaxed);
  if (state_ == State::kClosing) {
    decoder_.DiscardBuffered();  // waiting for the peer's end of stream; nothing is delivered
    Read();
    return;
  }
  Pump();
}

Status PeerConnection::PeerClosedReason() const {
  switch (state_) {
    case State::kHandshake:
      if (acceptor_ && std::string_view(acceptor_->waiting_for()) == "Proof") {
        return absl::UnavailableError(
            "the dialer closed the connection instead of sending its Proof (as a dialer does "
            "when this member's proof fails: do the cluster secrets differ?)");
      }
      if (dialer_ && std::string_view(dialer_->waiting_for()) == "Challenge") {
        return absl::UnavailableError(
            "the acceptor closed the connection instead of answering the Hello (it refused "
            "it; its log says why)");
      }
      if (dialer_ && std::string_view(dialer_->waiting_for()) == "Welcome") {
        return absl::UnavailableError(
            "the acceptor closed the connection instead of welcoming this member (it refused "
            "the proof: do the cluster secrets differ?)");
      }
      return absl::UnavailableError(StrCat("the peer closed the connection before its ",
                                           acceptor_ ? acceptor_->waiting_for() : "Challenge"));
    case State::kEstablished:
      if (decoder_.buffered_bytes() > 0) {
        return absl::UnavailableError(StrCat("closed by the peer in the middle of a frame (",
                                             decoder_.buffered_bytes(), " bytes of it received)"));
      }
      return absl::UnavailableError("closed by the peer");
    case State::kConnecting:
    case State::kClosing:
    case State::kClosed:
      break;
  }
  return absl::CancelledError("closed by this member");
}

void PeerConnection::Pump() {
  if (Dispatch()) {
    Read();
  }
}

bool PeerConnection::Dispatch() {
  while (true) {
    if (state_ == State::kEstablished) {
      if (!started_ || paused_.load(std::memory_order_acquire) ||
          close_requested_.load(std::memory_order_acquire)) {
        return false;
      }
    } else if (state_ != State::kHandshake) {
      return false;
    }
    Frame frame;
    switch (decoder_.Next(&frame)) {
      case FrameDecoder::Result::kNeedMore:
        return true;
      case FrameDecoder::Result::kError:
        Fail(decoder_.error());
        return false;
      case FrameDecoder::Result::kFrame:
        break;
    }
    if (state_ == State::kHandshake) {
      if (!OnHandshakeFrame(frame)) {
        return false;
      }
      continue;
    }
    if (frame.type < kFirstUserFrameType) {
      Fail(absl::InvalidArgumentError(
          StrCat("handshake frame type ", frame.type, " after the handshake")));
      return false;
    }
    frames_in_.fetch_add(1, std::memory_order_relaxed);
    on_frame_(frame.type, frame.payload);
  }
}

bool PeerConnection::OnHandshakeFrame(const Frame& frame) {
  HandshakeStep step = dialer_ ? dialer_->OnFrame(frame.type, frame.payload)
                               : acceptor_->OnFrame(frame.type, frame.payload);
  if (!step.status.ok()) {
    Terminate(step.status);  // sends nothing more
    return false;
  }
  if (!step.reply.empty()) {
    QueueFrames(std::move(step.reply));
  }
  if (!step.established) {
    MaybeWrite();
    return true;
  }
  state_ = State::kEstablished;
  ++timer_generation_;
  timer_.cancel();
  decoder_.set_max_payload_bytes(options_.frame_payload_max_bytes);
  if (dialer_) {
    peer_ = dialer_->peer();
  } else {
    peer_ = acceptor_->peer();
    channel_ = acceptor_->channel();
  }
  dialer_.reset();
  acceptor_.reset();
  MaybeWrite();  // the Welcome leaves before anything the owner sends
  HandshakeDone done = std::move(on_handshake_);
  on_handshake_ = nullptr;
  done(absl::OkStatus(), shared_from_this());
  return true;
}

void PeerConnection::SetSource(FrameSource* source) {
  {
    MutexLock lock(&mutex_);
    source_ = source;
    // On the strand, no Fill can be running unless this is called from inside it.
    if (!strand_.running_in_this_thread()) {
      while (filling_) {
        fill_done_.Wait(&mutex_);
      }
    }
  }
  if (source != nullptr) {
    Wake();
  }
}

void PeerConnection::Wake() {
  if (close_requested_.load(std::memory_order_acquire) ||
      kick_posted_.exchange(true, std::memory_order_acq_rel)) {
    return;
  }
  asio::post(strand_, [self = shared_from_this()] {
    self->kick_posted_.store(false, std::memory_order_release);
    self->MaybeWrite();
  });
}

void PeerConnection::Send(std::string frames) {
  if (frames.empty() || close_requested_.load(std::memory_order_acquire)) {
    return;
  }
  const std::optional<size_t> count = CountUserFrames(frames);
  WEFT_DCHECK(count.has_value());
  if (!count.has_value()) {
    // A caller's bug; sending it would desynchronise the peer's decoder.
    WEFT_LOG_ERROR("peer connection {}: dropping {} bytes given to Send that are not whole frames",
                   remote_, frames.size());
    return;
  }
  bool overflow = false;
  {
    MutexLock lock(&mutex_);
    if (send_queue_.size() + frames.size() > options_.send_queue_bytes_max) {
      overflow = true;
    } else if (send_queue_.empty() && frames.size() > send_queue_.capacity()) {
      send_queue_ = std::move(frames);
    } else {
      send_queue_.append(frames);
    }
    if (!overflow) {
      send_queue_frames_ += *count;
    }
  }
  if (overflow) {
    if (!close_requested_.exchange(true, std::memory_order_acq_rel)) {
      asio::post(strand_, [self = shared_from_this()] {
        self->Fail(absl::ResourceExhaustedError(
            StrCat("more than ", self->options_.send_queue_bytes_max,
                   " bytes queued for sending: the peer is not reading")));
      });
    }
    return;
  }
  Wake();
}

void PeerConnection::QueueFrames(std::string frames) {
  const size_t count = CountUserFrames(frames).value_or(0);
  MutexLock lock(&mutex_);
  send_queue_.append(frames);
  send_queue_frames_ += count;
}

size_t PeerConnection::queued_bytes() const {
  MutexLock lock(&mutex_);
  return send_queue_.size() + in_flight_bytes_.load(std::memory_order_relaxed);
}

void PeerConnection::MaybeWrite() {
  if (write_pending_ || flushed_ || state_ == State::kConnecting || state_ == State::kClosed) {
    return;
  }
  write_buffer_.clear();
  FrameSource* source = nullptr;
  {
    MutexLock lock(&mutex_);
    write_buffer_.swap(send_queue_);  // the emptied buffer keeps its capacity for Send
    write_frames_ = send_queue_frames_;
    send_queue_frames_ = 0;
    if (state_ == State::kEstablished && !close_requested_.load(std::memory_order_acquire) &&
        write_buffer_.size() < options_.write_batch_bytes && source_ != nullptr) {
      source = source_;
      filling_ = true;
    }
  }
  if (source != nullptr) {
    const size_t before = write_buffer_.size();
    source->Fill(&write_buffer_, options_.write_batch_bytes - before);
    {
      MutexLock lock(&mutex_);
      filling_ = false;
    }
    fill_done_.SignalAll();
    const std::optional<size_t> frames =
        CountUserFrames(std::string_view(write_buffer_).substr(before));
    if (!frames.has_value()) {
      WEFT_DCHECK(false);
      Fail(absl::InternalError("the frame source appended bytes that are not whole frames"));
      return;
    }
    write_frames_ += *frames;
  }
  if (write_buffer_.empty()) {
    if (state_ == State::kClosing) {
      FinishFlush();
    }
    return;
  }
  write_pending_ = true;
  writing_.store(true, std::memory_order_relaxed);
  in_flight_bytes_.store(write_buffer_.size(), std::memory_order_relaxed);
  asio::async_write(socket_, asio::buffer(write_buffer_),
                    [self = shared_from_this()](const std::error_code& error, size_t bytes) {
                      self->OnWritten(error, bytes);
                    });
}

void PeerConnection::OnWritten(const std::error_code& error, size_t bytes) {
  write_pending_ = false;
  writing_.store(false, std::memory_order_relaxed);
  in_flight_bytes_.store(0, std::memory_order_relaxed);
  if (state_ == State::kClosed) {
    return;
  }
  if (error) {
    Terminate(absl::UnavailableError(StrCat("write failed: ", error.message())));
    return;
  }
  bytes_out_.fetch_add(bytes, std::memory_order_relaxed);
  frames_out_.fetch_add(write_frames_, std::memory_order_relaxed);
  write_frames_ = 0;
  if (write_buffer_.capacity() > kRetainedWriteBufferBytes) {
    std::string().swap(write_buffer_);
  }
  MaybeWrite();
}

void PeerConnection::Close() {
  if (close_requested_.exchange(true, std::memory_order_acq_rel)) {
    return;
  }
  asio::post(strand_, [self = shared_from_this()] { self->BeginClose(); });
}

void PeerConnection::PauseReading() {
  paused_.store(true, std::memory_order_release);
}

void PeerConnection::ResumeReading() {
  if (!paused_.exchange(false, std::memory_order_acq_rel)) {
    return;
  }
  asio::post(strand_, [self = shared_from_this()] {
    if (self->state_ == State::kEstablished && self->started_) {
      self->Pump();
    }
  });
}

void PeerConnection::BeginClose() {
  switch (state_) {
    case State::kConnecting:
    case State::kHandshake:
      Terminate(absl::CancelledError("closed by this member"));
      return;
    case State::kClosing:
    case State::kClosed:
      return;
    case State::kEstablished:
      break;
  }
  // Graceful: what was given to Send() leaves, then the end of stream; the socket closes when
  // the peer ends its side too (closing with unread input would reset the connection and could
  // destroy those last frames before the peer reads them) or when the linger time is up.
  state_ = State::kClosing;
  ReportClosed(absl::CancelledError("closed by this member"));
  {
    MutexLock lock(&mutex_);
    source_ = nullptr;
  }
  ArmTimer(options_.close_linger_ms);
  MaybeWrite();
}

void PeerConnection::FinishFlush() {
  if (flushed_) {
    return;
  }
  flushed_ = true;
  std::error_code ignored;
  socket_.shutdown(asio::ip::tcp::socket::shutdown_send, ignored);
  decoder_.DiscardBuffered();
  Read();
}

void PeerConnection::Fail(const Status& reason) {
  if (state_ == State::kEstablished) {
    WEFT_LOG_WARN("closing peer connection {} (member {}): {}", remote_, peer_.member_name,
                  std::string(reason.message()));
  }
  Terminate(reason);
}

void PeerConnection::Terminate(const Status& reason) {
  if (state_ == State::kClosed) {
    return;
  }
  const State previous = state_;
  state_ = State::kClosed;
  close_requested_.store(true, std::memory_order_release);
  ++timer_generation_;
  timer_.cancel();
  if (resolver_) {
    resolver_->cancel();
  }
  std::error_code ignored;
  socket_.shutdown(asio::ip::tcp::socket::shutdown_both, ignored);
  socket_.close(ignored);
  decoder_.DiscardBuffered();
  {
    MutexLock lock(&mutex_);
    send_queue_.clear();
    send_queue_frames_ = 0;
    source_ = nullptr;
  }
  if (previous == State::kConnecting || previous == State::kHandshake) {
    HandshakeDone done = std::move(on_handshake_);
    on_handshake_ = nullptr;
    if (done) {
      done(reason, shared_from_this());
    }
    return;
  }
  ReportClosed(reason);
}

void PeerConnection::ReportClosed(const Status& reason) {
  if (closed_reported_) {
    return;
  }
  if (!started_) {
    if (close_reason_.ok()) {
      close_reason_ = reason;  // Start reports it
    }
    return;
  }
  closed_reported_ = true;
  ClosedHandler on_closed = std::move(on_closed_);
  // Released, so that handlers capturing the connection do not keep it alive.
  on_closed_ = nullptr;
  on_frame_ = nullptr;
  if (on_closed) {
    on_closed(reason);
  }
}

}  // namespace weft::transport
