// Connection: one client's TCP socket, its query and output buffers, and the loop that turns
// bytes into commands and replies.
//
// Reading is readiness-based: the connection waits until the socket is readable and then reads
// into its I/O thread's shared scratch buffer. A request that arrives whole is parsed straight
// from the scratch buffer; only the unparsed tail of a request split across reads is copied into
// the connection's own buffer. An idle connection therefore holds no buffer at all, which is
// what makes 10,000 idle clients cheap.
//
// Output: replies of one batch of requests go into `output_` and are written with one
// non-blocking write. What the kernel does not take is handed to an asynchronous write, and
// reading continues meanwhile (pipelining clients keep their throughput). The pending output is
// bounded by client-output-buffer-limit: past it the client is disconnected, as Redis does.
//
// Thread safety: every method runs on the connection's I/O thread (its io_context has exactly
// one thread), except Session::RequestClose, which posts Close() to that thread.
#pragma once

#include <memory>
#include <string>

#include "weft/resp/request_parser.h"
#include "weft/server/command_table.h"
#include "weft/server/server_state.h"
#include "weft/server/session.h"

#include <asio.hpp>

namespace weft::server {

// Per-I/O-thread resources shared by that thread's connections.
struct IoThreadContext {
  explicit IoThreadContext(size_t scratch_bytes) : scratch(scratch_bytes) {}
  asio::io_context io_context{1};
  std::vector<char> scratch;
};

class Connection : public std::enable_shared_from_this<Connection> {
 public:
  Connection(asio::ip::tcp::socket socket, IoThreadContext& thread, ServerState& server,
             const CommandTable& commands);
  ~Connection();

  Connection(const Connection&) = delete;
  Connection& operator=(const Connection&) = delete;

  // Makes the client visible to CLIENT LIST/KILL. Called by the acceptor as soon as the
  // connection exists, so that a client is listed (and killable) from the moment it is
  // accepted. REQUIRES: the client was admitted (ClientRegistry::TryAdmit); Close() releases it.
  void Register();

  // Starts reading. Runs on the connection's thread.
  void Start();

  // Closes the socket and forgets the client. Idempotent. Runs on the connection's thread.
  void Close(std::string_view reason);

 private:
  void WaitReadable();
  void OnReadable(const std::error_code& error);
  // Parses and runs every complete request in `input`; returns the bytes consumed. In a
  // replicated sync region the replies are held until every recipient has acknowledged the
  // batch's writes (awaiting_acks_), and nothing more is read meanwhile.
  size_t ProcessRequests(std::string_view input);
  size_t ProcessRequestsUnticketed(std::string_view input);
  void OnWritesAcknowledged(bool acknowledged);
  // The writes of the batch could not be confirmed: drop their replies and close.
  void AbandonReplies();
  // Reads what the socket has (bounded per wake-up for fairness). Returns false if the
  // connection was closed.
  bool ReadAvailable();
  void Flush();
  void OnWritten(const std::error_code& error, size_t bytes);
  bool OutputWithinLimits();
  size_t PendingOutputBytes() const { return output_.size() + (sending_.size() - sent_offset_); }

  asio::ip::tcp::socket socket_;
  IoThreadContext& thread_;
  ServerState& server_;
  const CommandTable& commands_;
  std::shared_ptr<Session> session_;
  resp::RequestParser parser_;

  // Unparsed bytes of a request split across reads; empty (and unallocated) between requests.
  std::string query_;
  // Replies not yet handed to the socket.
  std::string output_;
  // Replies handed to an asynchronous write, in flight; sent_offset_ bytes of it are written.
  std::string sending_;
  size_t sent_offset_ = 0;
  bool writing_ = false;
  bool closed_ = false;
  bool awaiting_acks_ = false;
  // When pending output first exceeded the soft limit (0 = it is below).
  int64_t over_soft_limit_since_ms_ = 0;
};

}  // namespace weft::server
