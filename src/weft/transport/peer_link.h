// Peer connections over TCP: PeerListener accepts and authenticates, PeerConnection::Dial
// connects and authenticates, and an established PeerConnection carries frames both ways.
//
// Sending is pulled: the owner implements FrameSource and calls Wake() when it may have data;
// the connection calls Fill on its own thread whenever the socket can take more, so whatever
// piled up while the last write was in flight leaves in one write (batching under load). Small
// control frames (acks, credits) go through Send(), between whole pulled frames.
//
// Nothing but handshake frames crosses a connection before it is established; any refusal
// (wrong secret or cluster, garbage, a silent peer past the deadline, a bad frame later) is
// logged with the remote address and closes that connection only.
//
// Thread safety: Send, Wake, SetSource, Close are safe from any thread (they post to the
// connection's io_context). Handlers run on that io_context, one at a time per connection;
// the io_context must be run by ONE thread (handlers are not stranded).
#pragma once

#include <atomic>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "weft/base/status.h"
#include "weft/transport/frame.h"
#include "weft/transport/handshake.h"

#include <asio.hpp>

namespace weft::transport {

class FrameSource {
 public:
  virtual ~FrameSource() = default;
  // Appends whole frames to *out: at least one if there is anything, then while *out stays
  // under about max_bytes. Returns false if there was nothing to send.
  virtual bool Fill(std::string* out, size_t max_bytes) = 0;
};

class PeerConnection : public std::enable_shared_from_this<PeerConnection> {
 public:
  using FrameHandler = std::function<void(uint8_t type, std::string_view payload)>;
  using ClosedHandler = std::function<void(const Status& reason)>;
  using DialHandler = std::function<void(StatusOr<std::shared_ptr<PeerConnection>>)>;

  static constexpr int64_t kHandshakeTimeoutMs = 5000;
  static constexpr size_t kWriteBatchBytes = 1 << 20;

  // Connects to host:port and authenticates as `self`; `done` runs on the io_context with an
  // established connection (not yet started) or the reason it failed.
  static void Dial(asio::io_context& io, const std::string& host, uint16_t port,
                   const PeerIdentity& self, const std::string& secret, ChannelInfo channel,
                   DialHandler done);

  ~PeerConnection();

  // Starts delivering user frames (type >= 16) in order. `on_closed` runs exactly once, on the
  // io_context, whatever closes the connection. Call once, on the io_context's thread.
  void Start(FrameHandler on_frame, ClosedHandler on_closed);

  void SetSource(FrameSource* source);
  void Wake();
  void Send(std::string frame);
  void Close();

  const PeerIdentity& peer() const { return peer_; }
  ChannelInfo channel() const { return channel_; }
  const std::string& remote_address() const { return remote_; }
  uint64_t bytes_in() const { return bytes_in_.load(std::memory_order_relaxed); }
  uint64_t bytes_out() const { return bytes_out_.load(std::memory_order_relaxed); }

 private:
  friend class PeerListener;
  PeerConnection(asio::ip::tcp::socket socket, PeerIdentity self, std::string secret);

  void Read();
  void OnRead(const std::error_code& error, size_t bytes);
  // Handles buffered frames; false if the connection closed.
  bool Dispatch();
  void MaybeWrite();
  void Fail(const Status& reason);
  void ArmDeadline();

  asio::ip::tcp::socket socket_;
  asio::steady_timer deadline_;
  const PeerIdentity self_;
  const std::string secret_;
  std::string remote_;
  PeerIdentity peer_;
  ChannelInfo channel_;

  // Exactly one of these runs the handshake.
  std::optional<DialerHandshake> dialer_;
  std::optional<AcceptorHandshake> acceptor_;
  std::function<void(const Status&)> on_handshake_;  // established (ok) or refused
  bool established_ = false;

  FrameDecoder decoder_;
  std::vector<char> read_buffer_;
  bool reading_ = false;
  bool started_ = false;
  FrameHandler on_frame_;
  ClosedHandler on_closed_;

  FrameSource* source_ = nullptr;
  std::deque<std::string> control_;
  std::string writing_buffer_;
  bool writing_ = false;
  std::atomic<bool> wake_posted_{false};
  bool closed_ = false;

  std::atomic<uint64_t> bytes_in_{0};
  std::atomic<uint64_t> bytes_out_{0};
};

class PeerListener {
 public:
  using AcceptHandler = std::function<void(std::shared_ptr<PeerConnection>,
                                           const PeerIdentity& peer, ChannelInfo channel)>;

  PeerListener(asio::io_context& io, PeerIdentity self, std::string secret,
               AcceptHandler on_accept);
  ~PeerListener();

  // Binds host:port (0: any free port) and starts accepting.
  Status Listen(const std::string& host, uint16_t port);
  uint16_t port() const { return port_; }
  void Close();

  uint64_t accepted() const { return accepted_.load(std::memory_order_relaxed); }
  uint64_t refused() const { return refused_->load(std::memory_order_relaxed); }

 private:
  void Accept();

  asio::io_context& io_;
  asio::ip::tcp::acceptor acceptor_;
  const PeerIdentity self_;
  const std::string secret_;
  AcceptHandler on_accept_;
  uint16_t port_ = 0;
  std::atomic<uint64_t> accepted_{0};
  // Shared with connections still in their handshake, which may outlive the listener.
  std::shared_ptr<std::atomic<uint64_t>> refused_ = std::make_shared<std::atomic<uint64_t>>(0);
};

}  // namespace weft::transport
