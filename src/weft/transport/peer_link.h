// Peer connections over TCP (docs/design/peer-protocol.md): PeerListener accepts and
// authenticates, PeerConnection::Dial connects and authenticates, and an established
// PeerConnection carries frames both ways. The transport knows nothing about what the frames
// mean; it moves opaque frames of type >= kFirstUserFrameType between authenticated members.
//
// Sending is pulled: the owner implements FrameSource and calls Wake() when it may have data;
// the connection calls Fill on its own strand whenever the socket can take more, so whatever
// piled up while the last write was in flight leaves in one write (batching under load), and
// nothing is pulled while the socket is not writable (back-pressure: the owner's queue grows
// and the owner bounds it). Small control frames (acks, credits) go through Send(), between
// whole pulled frames.
//
// Nothing but handshake frames crosses a connection before it is established. A refusal (wrong
// secret or cluster, garbage, a silent peer past the deadline) is logged with the remote
// address and closes that connection only; so does a bad frame later.
//
// Threading: connections and the listener run on an asio::io_context that the caller owns and
// runs, on as many threads as it likes: each connection (and the listener) has its own strand,
// so its handlers never run concurrently, while different connections' handlers may. Every
// callback (dial completion, on_accept, on_frame, on_closed, FrameSource::Fill) runs on the
// connection's strand. The methods marked thread-safe may be called from any thread, including
// from inside those callbacks; none of them calls back synchronously.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "absl/base/thread_annotations.h"

#include "weft/base/mutex.h"
#include "weft/base/status.h"
#include "weft/transport/frame.h"
#include "weft/transport/handshake.h"

#include <asio.hpp>

namespace weft::transport {

// Limits and deadlines of one connection (a listener applies them to everything it accepts).
struct PeerLinkOptions {
  // Dial: resolving and connecting.
  int64_t connect_timeout_ms = 5000;
  // From connected to established; a silent or slow peer is dropped at this deadline.
  int64_t handshake_timeout_ms = 5000;
  // Largest user frame accepted; a bigger announced length closes the connection.
  size_t frame_payload_max_bytes = kFramePayloadMax;
  // About how much one socket write carries (queued Send() frames plus what Fill adds).
  size_t write_batch_bytes = 1 << 20;
  // Send() frames queued beyond this close the connection (ResourceExhausted): the peer is not
  // reading, and control traffic must not grow without bound.
  size_t send_queue_bytes_max = size_t{1} << 30;
  // After Close(): how long frames already given to Send() may take to leave and the peer
  // to acknowledge the end of the stream before the socket is closed regardless.
  int64_t close_linger_ms = 1000;
  // A peer that vanishes without closing (power loss, a partition) is noticed within about
  // this long, by TCP keepalive on an idle connection and TCP_USER_TIMEOUT on unacknowledged
  // data; the connection then closes like any other. A stopped but reachable peer's kernel
  // still answers, so this never fires for a slow peer. 0: the kernel's defaults (hours).
  int64_t dead_peer_timeout_ms = 30'000;
  // Listener only: connections in their handshake at once; more are refused at once.
  size_t pending_handshakes_max = 256;
};

// The owner's outbound queue, as the connection sees it.
class FrameSource {
 public:
  virtual ~FrameSource() = default;
  // Appends whole frames to *out: at least one if there is anything, then more while *out has
  // grown by less than about max_bytes. Returns false if there was nothing to send. Runs on the
  // connection's strand; it may call Wake() or Send() but must not block on the connection.
  virtual bool Fill(std::string* out, size_t max_bytes) = 0;
};

// One authenticated TCP connection to another member. Shared ownership because in-flight
// asynchronous operations keep it alive after its owner lets go, until the socket is closed.
class PeerConnection : public std::enable_shared_from_this<PeerConnection> {
 public:
  using FrameHandler = std::function<void(uint8_t type, std::string_view payload)>;
  using ClosedHandler = std::function<void(const Status& reason)>;
  using DialHandler = std::function<void(StatusOr<std::shared_ptr<PeerConnection>>)>;

  // Resolves host, connects to host:port and authenticates as `self` on a `channel`. `done`
  // runs once, on the connection's strand, with an established connection (not started: no
  // frame is delivered and nothing is read until Start) or the reason it failed (connect
  // timeout, refused, handshake failure or deadline). The caller checks peer() if it expected
  // a particular member at that address.
  static void Dial(asio::io_context& io, std::string host, uint16_t port, const PeerIdentity& self,
                   std::string secret, ChannelInfo channel, DialHandler done,
                   const PeerLinkOptions& options = {});

  ~PeerConnection();
  PeerConnection(const PeerConnection&) = delete;
  PeerConnection& operator=(const PeerConnection&) = delete;

  // Starts delivering user frames, in order, on the strand. A frame that breaks the protocol
  // closes the connection (logged). `on_closed` runs exactly once, whatever closes the
  // connection (peer EOF or reset, a bad frame, Close(), also a Close() before Start); after it
  // neither handler runs again and both are released. Thread-safe; call once.
  void Start(FrameHandler on_frame, ClosedHandler on_closed);

  // Sets (or with nullptr, removes) the source that Fill is pulled from, and wakes the
  // connection. When SetSource returns, the previous source is not in Fill and never will be
  // again, so its owner may destroy it; from another thread that may mean waiting for a Fill
  // in progress, so do not hold a lock that Fill takes. Thread-safe.
  void SetSource(FrameSource* source);
  // There may be data to pull: the connection calls Fill soon on its strand (never inside
  // Wake), and again after every completed write until Fill returns false. Cheap: at most one
  // wake-up is pending at a time. Thread-safe, also under the locks that Fill takes.
  void Wake();
  // Queues whole frames (one or more, as AppendFrame makes them), written in order and
  // between whole pulled frames. Dropped once Close() was called. Thread-safe.
  void Send(std::string frames);

  // Closes the connection: no frame is delivered and Fill is not called after Close returns
  // (except one already running on another thread; SetSource(nullptr) waits for that). Frames
  // already given to Send() still leave, within close_linger_ms. Thread-safe, idempotent.
  void Close();

  // Stops reading at the next frame boundary (the current on_frame call finishes; no further
  // frame is delivered and nothing more is read from the socket, so the peer's writes stall)
  // until ResumeReading. For flow control by a receiver that cannot take more yet.
  // Thread-safe.
  void PauseReading();
  void ResumeReading();

  // Fixed once established (before the connection is handed out).
  const PeerIdentity& peer() const { return peer_; }
  ChannelInfo channel() const { return channel_; }
  const std::string& remote_address() const { return remote_; }

  // Counters, readable from any thread. Frames count user frames only.
  uint64_t bytes_in() const { return bytes_in_.load(std::memory_order_relaxed); }
  uint64_t bytes_out() const { return bytes_out_.load(std::memory_order_relaxed); }
  uint64_t frames_in() const { return frames_in_.load(std::memory_order_relaxed); }
  uint64_t frames_out() const { return frames_out_.load(std::memory_order_relaxed); }
  // A write is in flight (the socket has not taken all of it yet).
  bool writing() const { return writing_.load(std::memory_order_relaxed); }
  // Bytes given to Send() and not yet written, plus the write in flight.
  size_t queued_bytes() const;

 private:
  friend class PeerListener;
  using Strand = asio::strand<asio::io_context::executor_type>;
  // make_shared needs a public constructor; the key keeps it private in effect.
  struct PassKey {};

 public:
  // Only Dial and PeerListener can make a PassKey, so only they construct connections.
  PeerConnection(PassKey, Strand strand, asio::ip::tcp::socket socket,
                 const PeerLinkOptions& options);

 private:
  enum class State { kConnecting, kHandshake, kEstablished, kClosing, kClosed };
  // Reports the handshake's end: ok (established) or the reason it failed.
  using HandshakeDone = std::function<void(const Status&, std::shared_ptr<PeerConnection>)>;

  // Strand-only from here on.
  void BeginDial(const std::string& host, uint16_t port);
  // Connected (dialer) or accepted: arms the deadline, sends the Hello if dialing, reads.
  void OnConnected(const std::error_code& error, const std::string& host, uint16_t port);
  void BeginHandshake();
  void ArmTimer(int64_t timeout_ms);
  void Read();
  void OnRead(const std::error_code& error, size_t bytes);
  // Delivers buffered frames; returns true if reading should go on.
  bool Dispatch();
  // Feeds the state machine; false if the handshake failed (the connection is closed).
  bool OnHandshakeFrame(const Frame& frame);
  // Delivers what is buffered, then reads more if the owner is taking frames.
  void Pump();
  // Starts a write of queued Send() frames plus what Fill adds, unless one is in flight.
  void MaybeWrite();
  void OnWritten(const std::error_code& error, size_t bytes);
  // Close() on the strand: the graceful close that Close() describes.
  void BeginClose();
  // Closing, and everything queued is written: half-close and read until the peer's EOF.
  void FinishFlush();
  // Closes the socket at once and reports `reason`.
  void Terminate(const Status& reason);
  // A protocol violation: logged (once established; the listener logs refusals), then closed.
  void Fail(const Status& reason);
  // Runs on_closed once, or keeps the reason for Start if not started yet.
  void ReportClosed(const Status& reason);
  // Why the peer's end of stream ended the connection, naming the handshake step if any.
  Status PeerClosedReason() const;
  // Queues frames of our own (the handshake's, before Send() is allowed).
  void QueueFrames(std::string frames);

  Strand strand_;
  asio::ip::tcp::socket socket_;
  asio::steady_timer timer_;  // connect, handshake, then close-linger deadline
  uint64_t timer_generation_ = 0;
  std::optional<asio::ip::tcp::resolver> resolver_;
  const PeerLinkOptions options_;
  std::string remote_;
  PeerIdentity peer_;
  ChannelInfo channel_;

  State state_ = State::kConnecting;
  // Exactly one runs the handshake; released once established.
  std::optional<DialerHandshake> dialer_;
  std::optional<AcceptorHandshake> acceptor_;
  HandshakeDone on_handshake_;

  FrameDecoder decoder_;
  bool read_pending_ = false;
  bool started_ = false;
  FrameHandler on_frame_;
  ClosedHandler on_closed_;
  bool closed_reported_ = false;
  Status close_reason_;  // reported by Start when the connection closed before it

  std::string write_buffer_;  // the write in flight
  size_t write_frames_ = 0;   // user frames in write_buffer_
  bool write_pending_ = false;
  bool flushed_ = false;  // closing: everything queued is written and our side is shut down

  std::atomic<bool> close_requested_{false};
  std::atomic<bool> paused_{false};
  std::atomic<bool> kick_posted_{false};

  // Guards what Send/SetSource hand over from other threads. Never held while calling out.
  mutable Mutex mutex_;
  std::string send_queue_ ABSL_GUARDED_BY(mutex_);
  size_t send_queue_frames_ ABSL_GUARDED_BY(mutex_) = 0;
  FrameSource* source_ ABSL_GUARDED_BY(mutex_) = nullptr;
  bool filling_ ABSL_GUARDED_BY(mutex_) = false;
  CondVar fill_done_;

  std::atomic<uint64_t> bytes_in_{0};
  std::atomic<uint64_t> bytes_out_{0};
  std::atomic<uint64_t> frames_in_{0};
  std::atomic<uint64_t> frames_out_{0};
  std::atomic<bool> writing_{false};
  std::atomic<size_t> in_flight_bytes_{0};
};

// Accepts members' connections on one address and hands each authenticated one to on_accept.
class PeerListener {
 public:
  // Runs on the new connection's strand, once per established connection (not started).
  using AcceptHandler = std::function<void(std::shared_ptr<PeerConnection>,
                                           const PeerIdentity& peer, ChannelInfo channel)>;

  PeerListener(asio::io_context& io, PeerIdentity self, std::string secret, AcceptHandler on_accept,
               const PeerLinkOptions& options = {});
  // Closes. on_accept may still be running on another thread when the destructor is called
  // from a thread that is not running the io_context; stop the io_context or Close() from it
  // first if on_accept uses something the caller is about to destroy.
  ~PeerListener();
  PeerListener(const PeerListener&) = delete;
  PeerListener& operator=(const PeerListener&) = delete;

  // Binds host:port (port 0: an ephemeral port, see port()) and starts accepting. Fails on a
  // bad address, an unusable identity or secret, or a port in use. Call once.
  Status Listen(const std::string& host, uint16_t port);
  uint16_t port() const { return port_; }

  // Stops accepting; connections still in their handshake are closed when it ends, and
  // on_accept is not called again. Established connections are their owners'. Thread-safe,
  // idempotent.
  void Close();

  // Counters, readable from any thread.
  uint64_t accepted() const;
  uint64_t refused() const;
  uint64_t pending_handshakes() const;

 private:
  struct Core;
  // Shared with pending accepts and handshakes, which may outlive the listener.
  const std::shared_ptr<Core> core_;
  uint16_t port_ = 0;
};

}  // namespace weft::transport
