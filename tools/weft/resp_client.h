// RespClient: a small blocking RESP2 client over one TCP connection.
//
// The weft tools (status, load, demo) use it to talk to weftd or redis-server. It is blocking
// on purpose: each tool thread owns its connections, and every wait has a deadline, so a stuck
// server makes a call fail with DeadlineExceeded instead of hanging the tool. Commands can be
// pipelined: Append() any number, Flush() once, then ReadReply() once per command, in order.
//
// Errors (Status codes a caller may branch on):
//   Unavailable        connecting failed, or the connection broke (reset, closed by the peer)
//   DeadlineExceeded   a connect, write or read took longer than its timeout
//   DataLoss           the server sent bytes that are not RESP2 (or break ReplyLimits)
//   FailedPrecondition the client is broken(): an earlier call failed and left the stream
//                      out of step, so every later call fails fast; connect again
// An error *reply* from the server ("-ERR ...") is not a failed call: it is a RespReply of
// type kError.
//
// Thread safety: a RespClient is not thread-safe; one thread uses it at a time.
#pragma once

#include <cstdint>
#include <initializer_list>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "weft/base/status.h"

#include "tools/weft/resp_reply.h"

namespace weft::tools {

// A Status's message as a std::string_view (Debian's Abseil has its own string_view type).
inline std::string_view StatusMessage(const Status& status) {
  return std::string_view(status.message().data(), status.message().size());
}

// A "host:port" address. The host is a name or an IPv4/IPv6 literal ("[::1]:6379").
struct HostPort {
  std::string host;
  uint16_t port = 0;

  std::string ToString() const;
  friend bool operator==(const HostPort&, const HostPort&) = default;
};

// Parses "host:port" (port 1..65535; "[v6]:port" for IPv6 literals). InvalidArgument otherwise.
StatusOr<HostPort> ParseHostPort(std::string_view text);

// Parses a comma-separated list of "host:port" (empty pieces are skipped).
StatusOr<std::vector<HostPort>> ParseHostPortList(std::string_view text);

struct RespClientOptions {
  // Longest wait for the TCP handshake (over all addresses the host resolves to).
  int64_t connect_timeout_ms = 2000;
  // Longest wait for the socket to accept more bytes, and for a reply in Call()/ReadReply().
  int64_t io_timeout_ms = 5000;
  ReplyLimits reply_limits;
};

class RespClient {
 public:
  // Resolves `address`, connects within options.connect_timeout_ms, sets TCP_NODELAY.
  static StatusOr<std::unique_ptr<RespClient>> Connect(const HostPort& address,
                                                       const RespClientOptions& options = {});

  ~RespClient();
  RespClient(const RespClient&) = delete;
  RespClient& operator=(const RespClient&) = delete;

  // Sends one command and returns its reply. A timeout breaks the client: the late reply would
  // otherwise be taken as the answer to the next command.
  StatusOr<RespReply> Call(std::initializer_list<std::string_view> args);
  StatusOr<RespReply> Call(const std::vector<std::string>& args);

  // Sends every command, then reads one reply per command, in order. Replies may be errors.
  StatusOr<std::vector<RespReply>> Pipeline(const std::vector<std::vector<std::string>>& commands);

  // Buffers a command; nothing is sent until Flush().
  void Append(std::initializer_list<std::string_view> args);
  void Append(const std::vector<std::string>& args);

  // Writes everything Append() buffered. Waits at most io_timeout_ms each time the socket is
  // full; on failure the client is broken (part of a command may have been sent).
  Status Flush();

  // Returns the next reply, waiting at most io_timeout_ms.
  StatusOr<RespReply> ReadReply();

  // Returns the next reply if it is complete within `timeout_us` (0: only if already
  // buffered or readable without waiting), std::nullopt if not. After nullopt the client stays
  // usable: bytes of a partly received reply are kept and the reply can be read later. This is
  // what a caller that multiplexes sending and receiving on one thread (WriteLoad) uses; "no
  // reply yet" is its normal case, hence not an error.
  StatusOr<std::optional<RespReply>> PollReply(int64_t timeout_us);

  // True once a call failed in a way that leaves the connection unusable.
  bool broken() const { return !broken_reason_.empty(); }
  const HostPort& address() const { return address_; }
  // Bytes appended but not yet flushed.
  size_t pending_send_bytes() const { return output_.size(); }

 private:
  RespClient(int fd, HostPort address, RespClientOptions options);

  // Marks the client broken and returns `status` (annotated with the address).
  Status Break(const Status& status);
  Status CheckUsable() const;
  // Parses a buffered reply if one is complete.
  StatusOr<std::optional<RespReply>> TakeBufferedReply();
  // Reads whatever is available, waiting at most `timeout_us` for the socket to be readable.
  // Returns false if nothing arrived in time.
  StatusOr<bool> Receive(int64_t timeout_us);

  int fd_;
  HostPort address_;
  RespClientOptions options_;
  std::string output_;
  // Received bytes; input_[input_start_..] are not yet parsed.
  std::string input_;
  size_t input_start_ = 0;
  std::string broken_reason_;
};

}  // namespace weft::tools
