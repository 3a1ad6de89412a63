#include "weft/transport/peer_link.h"

#include <chrono>
#include <utility>

#include "weft/base/logging.h"
#include "weft/base/strings.h"

namespace weft::transport {
namespace {

constexpr size_t kReadBufferBytes = 64 * 1024;
constexpr uint8_t kFirstUserFrameType = 16;

std::string Describe(const asio::ip::tcp::socket& socket) {
  std::error_code error;
  const asio::ip::tcp::endpoint endpoint = socket.remote_endpoint(error);
  return error ? std::string("?") : StrCat(endpoint.address().to_string(), ":", endpoint.port());
}

}  // namespace

PeerConnection::PeerConnection(asio::ip::tcp::socket socket, PeerIdentity self, std::string secret)
    : socket_(std::move(socket)),
      deadline_(socket_.get_executor()),
      self_(std::move(self)),
      secret_(std::move(secret)),
      remote_(Describe(socket_)),
      read_buffer_(kReadBufferBytes) {
  std::error_code ignored;
  socket_.set_option(asio::ip::tcp::no_delay(true), ignored);
}

PeerConnection::~PeerConnection() = default;

void PeerConnection::Dial(asio::io_context& io, const std::string& host, uint16_t port,
                          const PeerIdentity& self, const std::string& secret, ChannelInfo channel,
                          DialHandler done) {
  std::error_code error;
  const asio::ip::address address = asio::ip::make_address(host, error);
  if (error) {
    asio::post(io, [done, host] {
      done(absl::InvalidArgumentError(StrCat("not an IP address: ", host)));
    });
    return;
  }
  auto socket = std::make_shared<asio::ip::tcp::socket>(io);
  auto timer = std::make_shared<asio::steady_timer>(io);
  timer->expires_after(std::chrono::milliseconds(kHandshakeTimeoutMs));
  timer->async_wait([socket](const std::error_code& timer_error) {
    if (!timer_error) {
      std::error_code ignored;
      socket->close(ignored);  // the connect completes with operation_aborted
    }
  });
  socket->async_connect(
      asio::ip::tcp::endpoint(address, port), [socket, timer, self, secret, channel, done, host,
                                               port](const std::error_code& connect_error) {
        timer->cancel();
        if (connect_error) {
          done(absl::UnavailableError(
              StrCat("cannot connect to ", host, ":", port, ": ", connect_error.message())));
          return;
        }
        std::shared_ptr<PeerConnection> connection(
            new PeerConnection(std::move(*socket), self, secret));
        connection->channel_ = channel;
        connection->dialer_.emplace(self, secret, channel, NewNonce());
        connection->on_handshake_ = [connection, done](const Status& status) {
          if (status.ok()) {
            done(connection);
          } else {
            done(status);
          }
        };
        connection->ArmDeadline();
        connection->Send(connection->dialer_->Hello());
        connection->Read();
      });
}

void PeerConnection::ArmDeadline() {
  deadline_.expires_after(std::chrono::milliseconds(kHandshakeTimeoutMs));
  std::weak_ptr<PeerConnection> weak = shared_from_this();
  deadline_.async_wait([weak](const std::error_code& error) {
    std::shared_ptr<PeerConnection> self = weak.lock();
    if (!error && self != nullptr && !self->established_) {
      self->Fail(absl::DeadlineExceededError("no handshake within the deadline"));
    }
  });
}

void PeerConnection::Start(FrameHandler on_frame, ClosedHandler on_closed) {
  on_frame_ = std::move(on_frame);
  on_closed_ = std::move(on_closed);
  started_ = true;
  // Frames that arrived with the handshake's last one wait in the decoder.
  asio::post(socket_.get_executor(), [self = shared_from_this()] {
    if (self->closed_) {
      if (self->on_closed_) {
        auto on_closed = std::move(self->on_closed_);
        self->on_closed_ = nullptr;
        on_closed(absl::CancelledError("closed before it started"));
      }
      return;
    }
    if (self->Dispatch()) {
      self->Read();
    }
  });
}

void PeerConnection::Read() {
  if (reading_ || closed_) {
    return;
  }
  reading_ = true;
  socket_.async_read_some(asio::buffer(read_buffer_),
                          [self = shared_from_this()](const std::error_code& error, size_t bytes) {
                            self->OnRead(error, bytes);
                          });
}

void PeerConnection::OnRead(const std::error_code& error, size_t bytes) {
  reading_ = false;
  if (closed_) {
    return;
  }
  if (error) {
    Fail(error == asio::error::eof
             ? absl::UnavailableError("closed by the peer")
             : absl::UnavailableError(StrCat("read failed: ", error.message())));
    return;
  }
  bytes_in_.fetch_add(bytes, std::memory_order_relaxed);
  decoder_.Feed(read_buffer_.data(), bytes);
  if (Dispatch() && (!established_ || started_)) {
    Read();
  }
}

bool PeerConnection::Dispatch() {
  uint8_t type = 0;
  std::string_view payload;
  while (!closed_) {
    if (established_ && !started_) {
      return true;  // hold user frames until the owner starts the connection
    }
    const FrameDecoder::Result result = decoder_.Next(&type, &payload);
    if (result == FrameDecoder::Result::kNeedMore) {
      return true;
    }
    if (result == FrameDecoder::Result::kError) {
      Fail(decoder_.error());
      return false;
    }
    if (!established_) {
      HandshakeStep step =
          dialer_ ? dialer_->OnFrame(type, payload) : acceptor_->OnFrame(type, payload);
      if (!step.status.ok()) {
        Fail(step.status);
        return false;
      }
      if (!step.reply.empty()) {
        Send(std::move(step.reply));
      }
      if (step.established) {
        established_ = true;
        deadline_.cancel();
        if (dialer_) {
          peer_ = dialer_->peer();
        } else {
          peer_ = acceptor_->peer();
          channel_ = acceptor_->channel();
        }
        auto on_handshake = std::move(on_handshake_);
        on_handshake_ = nullptr;
        on_handshake(absl::OkStatus());
      }
      continue;
    }
    if (type < kFirstUserFrameType) {
      Fail(absl::InvalidArgumentError(
          StrCat("handshake frame type ", type, " after the handshake")));
      return false;
    }
    on_frame_(type, payload);
  }
  return false;
}

void PeerConnection::SetSource(FrameSource* source) {
  asio::post(socket_.get_executor(), [self = shared_from_this(), source] {
    self->source_ = source;
    self->MaybeWrite();
  });
}

void PeerConnection::Wake() {
  if (wake_posted_.exchange(true, std::memory_order_acq_rel)) {
    return;
  }
  asio::post(socket_.get_executor(), [self = shared_from_this()] {
    self->wake_posted_.store(false, std::memory_order_release);
    self->MaybeWrite();
  });
}

void PeerConnection::Send(std::string frame) {
  asio::post(socket_.get_executor(),
             [self = shared_from_this(), frame = std::move(frame)]() mutable {
               if (self->closed_) {
                 return;
               }
               self->control_.push_back(std::move(frame));
               self->MaybeWrite();
             });
}

void PeerConnection::MaybeWrite() {
  if (writing_ || closed_) {
    return;
  }
  writing_buffer_.clear();
  while (!control_.empty() && writing_buffer_.size() < kWriteBatchBytes) {
    writing_buffer_.append(control_.front());
    control_.pop_front();
  }
  // Data only once authenticated, and after the control frames queued so far.
  if (established_ && source_ != nullptr && writing_buffer_.size() < kWriteBatchBytes) {
    source_->Fill(&writing_buffer_, kWriteBatchBytes - writing_buffer_.size());
  }
  if (writing_buffer_.empty()) {
    return;
  }
  writing_ = true;
  asio::async_write(
      socket_, asio::buffer(writing_buffer_),
      [self = shared_from_this()](const std::error_code& error, size_t bytes) {
        self->writing_ = false;
        if (self->closed_) {
          return;
        }
        if (error) {
          self->Fail(absl::UnavailableError(StrCat("write failed: ", error.message())));
          return;
        }
        self->bytes_out_.fetch_add(bytes, std::memory_order_relaxed);
        self->MaybeWrite();
      });
}

void PeerConnection::Close() {
  asio::post(socket_.get_executor(), [self = shared_from_this()] {
    self->Fail(absl::CancelledError("closed by this member"));
  });
}

void PeerConnection::Fail(const Status& reason) {
  if (closed_) {
    return;
  }
  closed_ = true;
  std::error_code ignored;
  deadline_.cancel();
  socket_.shutdown(asio::ip::tcp::socket::shutdown_both, ignored);
  socket_.close(ignored);
  control_.clear();
  source_ = nullptr;
  if (!established_) {
    if (on_handshake_) {
      auto on_handshake = std::move(on_handshake_);
      on_handshake_ = nullptr;
      on_handshake(reason);
    }
    return;
  }
  if (on_closed_) {
    auto on_closed = std::move(on_closed_);
    on_closed_ = nullptr;
    on_frame_ = nullptr;
    on_closed(reason);
  }
}

PeerListener::PeerListener(asio::io_context& io, PeerIdentity self, std::string secret,
                           AcceptHandler on_accept)
    : io_(io),
      acceptor_(io),
      self_(std::move(self)),
      secret_(std::move(secret)),
      on_accept_(std::move(on_accept)) {}

PeerListener::~PeerListener() {
  std::error_code ignored;
  acceptor_.close(ignored);
}

Status PeerListener::Listen(const std::string& host, uint16_t port) {
  std::error_code error;
  const asio::ip::address address = asio::ip::make_address(host, error);
  if (error) {
    return absl::InvalidArgumentError(StrCat("peer address is not an IP address: ", host));
  }
  const asio::ip::tcp::endpoint endpoint(address, port);
  acceptor_.open(endpoint.protocol(), error);
  if (!error) {
    acceptor_.set_option(asio::ip::tcp::acceptor::reuse_address(true), error);
  }
  if (!error) {
    acceptor_.bind(endpoint, error);
  }
  if (!error) {
    acceptor_.listen(511, error);
  }
  if (error) {
    return absl::UnavailableError(
        StrCat("cannot listen for peers on ", host, ":", port, ": ", error.message()));
  }
  port_ = acceptor_.local_endpoint().port();
  Accept();
  return absl::OkStatus();
}

void PeerListener::Close() {
  std::error_code ignored;
  acceptor_.close(ignored);
}

void PeerListener::Accept() {
  acceptor_.async_accept(io_, [this](const std::error_code& error, asio::ip::tcp::socket socket) {
    if (error == asio::error::operation_aborted || !acceptor_.is_open()) {
      return;
    }
    if (error) {
      WEFT_LOG_WARN("peer accept failed: {}", error.message());
    } else {
      std::shared_ptr<PeerConnection> connection(
          new PeerConnection(std::move(socket), self_, secret_));
      connection->acceptor_.emplace(self_, secret_, NewNonce());
      std::weak_ptr<PeerConnection> weak = connection;
      auto refused = refused_;
      connection->on_handshake_ = [this, weak, refused](const Status& status) {
        std::shared_ptr<PeerConnection> connection = weak.lock();
        if (connection == nullptr) {
          return;
        }
        if (!status.ok()) {
          refused->fetch_add(1, std::memory_order_relaxed);
          WEFT_LOG_WARN("refused peer connection from {}: {}", connection->remote_address(),
                        std::string(status.message()));
          return;
        }
        accepted_.fetch_add(1, std::memory_order_relaxed);
        on_accept_(connection, connection->peer(), connection->channel());
      };
      connection->ArmDeadline();
      connection->Read();
    }
    Accept();
  });
}

}  // namespace weft::transport
