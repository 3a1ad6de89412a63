#include "weft/server/connection.h"

#include "weft/base/logging.h"
#include "weft/base/strings.h"
#include "weft/replication/write_ticket.h"

namespace weft::server {
namespace {

std::string FormatEndpoint(const asio::ip::tcp::endpoint& endpoint) {
  const asio::ip::address address = endpoint.address();
  if (address.is_v6())
    return StrCat("[", address.to_string(), "]:", endpoint.port());
  return StrCat(address.to_string(), ":", endpoint.port());
}

// How many reads one readiness wake-up may do before yielding to the thread's other
// connections: a client streaming a huge pipeline cannot starve the rest.
constexpr int kReadsPerWakeupMax = 16;

// Query buffers larger than this are released once empty instead of being kept for reuse.
constexpr size_t kRetainedBufferBytesMax = 64 * 1024;

}  // namespace

Connection::Connection(asio::ip::tcp::socket socket, IoThreadContext& thread, ServerState& server,
                       const CommandTable& commands)
    : socket_(std::move(socket)), thread_(thread), server_(server), commands_(commands) {
  std::error_code error;
  const auto peer = socket_.remote_endpoint(error);
  const auto local = socket_.local_endpoint(error);
  session_ = std::make_shared<Session>(
      server_.clients().NextId(), error ? "?:0" : FormatEndpoint(peer),
      error ? "?:0" : FormatEndpoint(local), socket_.native_handle(), server_.clock().NowUnixMs());
}

Connection::~Connection() = default;

void Connection::Register() {
  // CLIENT KILL from another thread: post the close to ours. A weak pointer, because the
  // connection may already be gone when the kill arrives.
  std::weak_ptr<Connection> weak = weak_from_this();
  asio::any_io_executor executor = socket_.get_executor();
  session_->set_closer([weak, executor] {
    asio::post(executor, [weak] {
      if (auto self = weak.lock())
        self->Close("killed by CLIENT KILL");
    });
  });
  server_.clients().Add(session_);
}

void Connection::Start() {
  std::error_code error;
  socket_.non_blocking(true, error);
  if (!error)
    socket_.set_option(asio::ip::tcp::no_delay(true), error);
  if (error) {
    Close(StrCat("socket setup failed: ", error.message()));
    return;
  }
  WaitReadable();
}

void Connection::Close(std::string_view reason) {
  if (closed_)
    return;
  closed_ = true;
  WEFT_LOG_DEBUG("client id={} addr={} closed: {}", session_->id(), session_->peer_address(),
                 reason);
  // Forget the client before closing the socket: once the peer sees the close, CLIENT LIST
  // and CLIENT KILL must no longer find it, and its maxclients slot must be free.
  session_->set_closer(nullptr);
  server_.clients().Remove(session_->id());
  server_.clients().Release();
  std::error_code ignored;
  socket_.shutdown(asio::ip::tcp::socket::shutdown_both, ignored);
  socket_.close(ignored);
}

void Connection::WaitReadable() {
  socket_.async_wait(
      asio::ip::tcp::socket::wait_read,
      [self = shared_from_this()](const std::error_code& error) { self->OnReadable(error); });
}

void Connection::OnReadable(const std::error_code& error) {
  if (closed_)
    return;
  if (error) {
    Close(error.message());
    return;
  }
  if (!ReadAvailable())
    return;
  if (awaiting_acks_)
    return;  // OnWritesAcknowledged flushes and reads on
  Flush();
  if (closed_)
    return;
  session_->PublishBufferSizes(query_.size(), PendingOutputBytes());
  WaitReadable();
}

void Connection::AbandonReplies() {
  // The replies say "done", but this member was dropped from its group before every member
  // confirmed the writes: close instead, so the client treats their outcome as unknown (as
  // after a crash) rather than as acknowledged.
  WEFT_LOG_WARN("closing client id={} addr={}: its writes could not be confirmed by the group "
                "(this member was dropped from it); their outcome is unknown",
                session_->id(), session_->peer_address());
  output_.clear();
  Close("writes not confirmed by the group");
}

void Connection::OnWritesAcknowledged(bool acknowledged) {
  awaiting_acks_ = false;
  if (closed_)
    return;
  if (!acknowledged) {
    AbandonReplies();
    return;
  }
  Flush();
  if (closed_)
    return;
  session_->PublishBufferSizes(query_.size(), PendingOutputBytes());
  WaitReadable();
}

bool Connection::ReadAvailable() {
  for (int round = 0; round < kReadsPerWakeupMax; ++round) {
    std::error_code error;
    size_t read = 0;
    bool filled = false;
    if (query_.empty()) {
      // The common case: a fresh request. Read into the thread's scratch buffer and parse it
      // in place; keep only an incomplete tail.
      read = socket_.read_some(asio::buffer(thread_.scratch), error);
      if (read > 0) {
        const std::string_view input(thread_.scratch.data(), read);
        const size_t consumed = ProcessRequests(input);
        if (closed_)
          return false;
        if (consumed < read && !session_->close_after_reply)
          query_.assign(input.substr(consumed));
        filled = read == thread_.scratch.size();
      }
    } else {
      // Continuing a request split across reads: append to the query buffer. A large bulk
      // string is read straight into place, but the buffer grows at most by what it already
      // holds per read: a client announcing a 512 MB bulk and stalling costs only what it sent.
      const size_t want = std::clamp<size_t>(parser_.bytes_needed_hint(), thread_.scratch.size(),
                                             std::max(thread_.scratch.size(), query_.size()));
      const size_t old_size = query_.size();
      query_.resize(old_size + want);
      read = socket_.read_some(asio::buffer(query_.data() + old_size, want), error);
      query_.resize(old_size + read);
      if (read > 0) {
        const size_t consumed = ProcessRequests(query_);
        if (closed_)
          return false;
        query_.erase(0, consumed);
        if (query_.empty() && query_.capacity() > kRetainedBufferBytesMax) {
          std::string().swap(query_);
        }
        filled = read == want;
      }
    }
    if (error == asio::error::would_block || error == asio::error::try_again)
      return true;
    if (error) {
      Close(error == asio::error::eof ? "connection closed by client" : error.message());
      return false;
    }
    server_.stats().net_input_bytes.fetch_add(read, std::memory_order_relaxed);
    if (static_cast<int64_t>(query_.size()) > server_.settings().client_query_buffer_limit()) {
      WEFT_LOG_WARN("closing client id={} addr={}: query buffer of {} bytes reached the limit",
                    session_->id(), session_->peer_address(), query_.size());
      Close("query buffer limit");
      return false;
    }
    if (session_->close_after_reply || awaiting_acks_ || !OutputWithinLimits())
      break;
    if (!filled)
      return true;  // drained the socket
  }
  return !closed_;
}

size_t Connection::ProcessRequests(std::string_view input) {
  if (!server_.replicated())
    return ProcessRequestsUnticketed(input);
  auto ticket = std::make_shared<replication::WriteTicket>(
      [self = shared_from_this(), &io = thread_.io_context](bool acknowledged) {
        asio::post(io, [self, acknowledged] { self->OnWritesAcknowledged(acknowledged); });
      });
  const replication::WriteContext write(ticket);
  session_->set_change_context(&write);
  const size_t consumed = ProcessRequestsUnticketed(input);
  session_->set_change_context(nullptr);
  if (!ticket->Arm())
    awaiting_acks_ = true;
  else if (ticket->abandoned())
    AbandonReplies();
  return consumed;
}

size_t Connection::ProcessRequestsUnticketed(std::string_view input) {
  resp::ReplyWriter reply(&output_, session_->protocol());
  size_t offset = 0;
  // Before AUTH, Redis 7 caps request sizes (10 arguments, 16 KB bulks) so that an
  // unauthenticated peer cannot make the member buffer much.
  parser_.SetAuthenticated(session_->authenticated || !server_.settings().auth_required());
  while (offset < input.size() && !session_->close_after_reply) {
    const resp::RequestParser::State state = parser_.Parse(input.substr(offset));
    if (state == resp::RequestParser::State::kIncomplete)
      break;
    if (state == resp::RequestParser::State::kProtocolError) {
      server_.stats().protocol_errors.fetch_add(1, std::memory_order_relaxed);
      WEFT_LOG_INFO("protocol error from client id={} addr={}: {}", session_->id(),
                    session_->peer_address(), parser_.error());
      reply.Error(StrCat("ERR ", parser_.error()));
      session_->close_after_reply = true;
      return input.size();
    }
    offset += parser_.consumed();
    if (parser_.args().empty())
      continue;
    commands_.Execute(server_, *session_, reply, parser_.args());
    // A command may change the protocol (HELLO) or the output may have grown past the limit.
    if (!OutputWithinLimits())
      return input.size();
  }
  return offset;
}

bool Connection::OutputWithinLimits() {
  const OutputBufferLimit limit = server_.settings().output_buffer_limit();
  const size_t pending = PendingOutputBytes();
  bool over = limit.hard_bytes > 0 && static_cast<int64_t>(pending) > limit.hard_bytes;
  if (!over && limit.soft_bytes > 0 && static_cast<int64_t>(pending) > limit.soft_bytes) {
    const int64_t now_ms = server_.clock().NowUnixMs();
    if (over_soft_limit_since_ms_ == 0)
      over_soft_limit_since_ms_ = now_ms;
    over = now_ms - over_soft_limit_since_ms_ > limit.soft_seconds * 1000;
  } else if (!over) {
    over_soft_limit_since_ms_ = 0;
  }
  if (!over)
    return true;
  WEFT_LOG_WARN(
      "closing client id={} addr={}: output buffer of {} bytes passed "
      "client-output-buffer-limit",
      session_->id(), session_->peer_address(), pending);
  server_.stats().output_limit_disconnections.fetch_add(1, std::memory_order_relaxed);
  // Drop the replies at once: keeping them would defeat the limit.
  std::string().swap(output_);
  Close("output buffer limit");
  return false;
}

void Connection::Flush() {
  if (closed_)
    return;
  if (!writing_ && !output_.empty()) {
    std::error_code error;
    const size_t written = socket_.write_some(asio::buffer(output_), error);
    if (error && error != asio::error::would_block && error != asio::error::try_again) {
      Close(error.message());
      return;
    }
    server_.stats().net_output_bytes.fetch_add(written, std::memory_order_relaxed);
    if (written == output_.size()) {
      output_.clear();
      if (output_.capacity() > kRetainedBufferBytesMax)
        std::string().swap(output_);
    } else {
      // The kernel's send buffer is full: hand the rest to an asynchronous write and keep
      // accumulating new replies in output_.
      sending_.swap(output_);
      output_.clear();
      sent_offset_ = written;
      writing_ = true;
      socket_.async_write_some(
          asio::buffer(sending_.data() + sent_offset_, sending_.size() - sent_offset_),
          [self = shared_from_this()](const std::error_code& write_error, size_t bytes) {
            self->OnWritten(write_error, bytes);
          });
    }
  }
  if (session_->close_after_reply && !writing_)
    Close("closed after reply");
}

void Connection::OnWritten(const std::error_code& error, size_t bytes) {
  if (closed_)
    return;
  if (error) {
    Close(error.message());
    return;
  }
  server_.stats().net_output_bytes.fetch_add(bytes, std::memory_order_relaxed);
  sent_offset_ += bytes;
  if (sent_offset_ < sending_.size()) {
    socket_.async_write_some(
        asio::buffer(sending_.data() + sent_offset_, sending_.size() - sent_offset_),
        [self = shared_from_this()](const std::error_code& write_error, size_t more) {
          self->OnWritten(write_error, more);
        });
    return;
  }
  writing_ = false;
  sent_offset_ = 0;
  sending_.clear();
  if (sending_.capacity() > kRetainedBufferBytesMax)
    std::string().swap(sending_);
  session_->PublishBufferSizes(query_.size(), PendingOutputBytes());
  Flush();
}

}  // namespace weft::server
