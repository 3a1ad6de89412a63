#include "tools/weft/resp_client.h"

#include <fcntl.h>
#include <netdb.h>
#include <poll.h>
#include <unistd.h>

#include <cerrno>
#include <charconv>
#include <chrono>
#include <cstring>

#include "weft/base/strings.h"

#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>

namespace weft::tools {
namespace {

constexpr size_t kReadChunkBytes = 64 * 1024;

int64_t NowUs() {
  return std::chrono::duration_cast<std::chrono::microseconds>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

std::string ErrnoText(int error) {
  return std::string(std::strerror(error));
}

// Waits until `fd` has one of `events`, at most `timeout_us`. Returns true if it does, false on
// timeout; EINTR restarts the wait with the time that is left.
StatusOr<bool> WaitFor(int fd, short events, int64_t timeout_us) {
  const int64_t deadline_us = NowUs() + std::max<int64_t>(timeout_us, 0);
  while (true) {
    const int64_t left_us = std::max<int64_t>(deadline_us - NowUs(), 0);
    struct pollfd poll_fd = {fd, events, 0};
    const struct timespec timeout = {static_cast<time_t>(left_us / 1'000'000),
                                     static_cast<long>((left_us % 1'000'000) * 1000)};
    const int ready = ppoll(&poll_fd, 1, &timeout, nullptr);
    if (ready > 0)
      return true;
    if (ready == 0)
      return false;
    if (errno != EINTR)
      return absl::UnavailableError(StrCat("poll: ", ErrnoText(errno)));
  }
}

// Connects one resolved address within `deadline_us`. Returns the connected non-blocking fd.
StatusOr<int> ConnectOne(const struct addrinfo& info, int64_t deadline_us) {
  const int fd =
      socket(info.ai_family, info.ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC, info.ai_protocol);
  if (fd < 0)
    return absl::UnavailableError(StrCat("socket: ", ErrnoText(errno)));
  auto fail = [fd](Status status) {
    close(fd);
    return status;
  };
  if (connect(fd, info.ai_addr, info.ai_addrlen) != 0) {
    if (errno != EINPROGRESS)
      return fail(absl::UnavailableError(StrCat("connect: ", ErrnoText(errno))));
    StatusOr<bool> writable = WaitFor(fd, POLLOUT, deadline_us - NowUs());
    if (!writable.ok())
      return fail(writable.status());
    if (!*writable)
      return fail(absl::DeadlineExceededError("connect: timed out"));
    int error = 0;
    socklen_t length = sizeof(error);
    if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &error, &length) != 0)
      error = errno;
    if (error != 0)
      return fail(absl::UnavailableError(StrCat("connect: ", ErrnoText(error))));
  }
  // Requests are small and latency is what the tools measure: no Nagle delay.
  const int one = 1;
  setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
  return fd;
}

}  // namespace

std::string HostPort::ToString() const {
  if (host.find(':') != std::string::npos)
    return StrCat("[", host, "]:", port);
  return StrCat(host, ":", port);
}

StatusOr<HostPort> ParseHostPort(std::string_view text) {
  auto invalid = [&] {
    return absl::InvalidArgumentError(StrCat("'", text, "' is not host:port"));
  };
  std::string_view host;
  std::string_view port_text;
  if (text.starts_with('[')) {
    const size_t close = text.find("]:");
    if (close == std::string_view::npos)
      return invalid();
    host = text.substr(1, close - 1);
    port_text = text.substr(close + 2);
  } else {
    const size_t colon = text.rfind(':');
    if (colon == std::string_view::npos || text.find(':') != colon)
      return invalid();
    host = text.substr(0, colon);
    port_text = text.substr(colon + 1);
  }
  int port = 0;
  const auto [end, error] =
      std::from_chars(port_text.data(), port_text.data() + port_text.size(), port);
  if (host.empty() || port_text.empty() || error != std::errc() ||
      end != port_text.data() + port_text.size() || port < 1 || port > 65535) {
    return invalid();
  }
  return HostPort{std::string(host), static_cast<uint16_t>(port)};
}

StatusOr<std::vector<HostPort>> ParseHostPortList(std::string_view text) {
  std::vector<HostPort> addresses;
  for (std::string_view piece : SplitSkipEmpty(text, ',')) {
    WEFT_ASSIGN_OR_RETURN(HostPort address, ParseHostPort(piece));
    addresses.push_back(std::move(address));
  }
  if (addresses.empty())
    return absl::InvalidArgumentError("no host:port given");
  return addresses;
}

StatusOr<std::unique_ptr<RespClient>> RespClient::Connect(const HostPort& address,
                                                          const RespClientOptions& options) {
  const int64_t deadline_us = NowUs() + options.connect_timeout_ms * 1000;
  struct addrinfo hints = {};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  struct addrinfo* resolved = nullptr;
  const std::string port = std::to_string(address.port);
  // getaddrinfo has no timeout of its own; the tools connect to literal addresses or to names
  // in /etc/hosts, which resolve without the network.
  const int error = getaddrinfo(address.host.c_str(), port.c_str(), &hints, &resolved);
  if (error != 0) {
    return absl::UnavailableError(
        StrCat(address.ToString(), ": cannot resolve host: ", gai_strerror(error)));
  }
  Status last = absl::UnavailableError("no address");
  for (struct addrinfo* info = resolved; info != nullptr; info = info->ai_next) {
    StatusOr<int> fd = ConnectOne(*info, deadline_us);
    if (fd.ok()) {
      freeaddrinfo(resolved);
      return std::unique_ptr<RespClient>(new RespClient(*fd, address, options));
    }
    last = fd.status();
    if (NowUs() >= deadline_us)
      break;
  }
  freeaddrinfo(resolved);
  return Status(last.code(), StrCat(address.ToString(), ": ", last.message()));
}

RespClient::RespClient(int fd, HostPort address, RespClientOptions options)
    : fd_(fd), address_(std::move(address)), options_(std::move(options)) {}

RespClient::~RespClient() {
  close(fd_);
}

StatusOr<RespReply> RespClient::Call(std::initializer_list<std::string_view> args) {
  Append(args);
  WEFT_RETURN_IF_ERROR(Flush());
  return ReadReply();
}

StatusOr<RespReply> RespClient::Call(const std::vector<std::string>& args) {
  Append(args);
  WEFT_RETURN_IF_ERROR(Flush());
  return ReadReply();
}

StatusOr<std::vector<RespReply>> RespClient::Pipeline(
    const std::vector<std::vector<std::string>>& commands) {
  for (const std::vector<std::string>& command : commands)
    Append(command);
  WEFT_RETURN_IF_ERROR(Flush());
  std::vector<RespReply> replies;
  replies.reserve(commands.size());
  for (size_t i = 0; i < commands.size(); ++i) {
    WEFT_ASSIGN_OR_RETURN(RespReply reply, ReadReply());
    replies.push_back(std::move(reply));
  }
  return replies;
}

void RespClient::Append(std::initializer_list<std::string_view> args) {
  AppendCommand(&output_, args);
}

void RespClient::Append(const std::vector<std::string>& args) {
  AppendCommand(&output_, args);
}

Status RespClient::Flush() {
  WEFT_RETURN_IF_ERROR(CheckUsable());
  size_t sent = 0;
  while (sent < output_.size()) {
    const ssize_t n = send(fd_, output_.data() + sent, output_.size() - sent, MSG_NOSIGNAL);
    if (n > 0) {
      sent += static_cast<size_t>(n);
      continue;
    }
    if (n < 0 && errno == EINTR)
      continue;
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
      StatusOr<bool> writable = WaitFor(fd_, POLLOUT, options_.io_timeout_ms * 1000);
      if (!writable.ok())
        return Break(writable.status());
      if (!*writable)
        return Break(absl::DeadlineExceededError("send: timed out (server not reading)"));
      continue;
    }
    return Break(absl::UnavailableError(StrCat("send: ", ErrnoText(errno))));
  }
  output_.clear();
  return absl::OkStatus();
}

StatusOr<RespReply> RespClient::ReadReply() {
  WEFT_ASSIGN_OR_RETURN(std::optional<RespReply> reply, PollReply(options_.io_timeout_ms * 1000));
  if (reply.has_value())
    return std::move(*reply);
  // A reply that comes after we stopped waiting would answer the wrong command later.
  return Break(
      absl::DeadlineExceededError(StrCat("no reply within ", options_.io_timeout_ms, " ms")));
}

StatusOr<std::optional<RespReply>> RespClient::PollReply(int64_t timeout_us) {
  WEFT_RETURN_IF_ERROR(CheckUsable());
  const int64_t deadline_us = NowUs() + std::max<int64_t>(timeout_us, 0);
  while (true) {
    WEFT_ASSIGN_OR_RETURN(std::optional<RespReply> reply, TakeBufferedReply());
    if (reply.has_value())
      return reply;
    WEFT_ASSIGN_OR_RETURN(bool received, Receive(std::max<int64_t>(deadline_us - NowUs(), 0)));
    if (!received)
      return std::optional<RespReply>();
  }
}

StatusOr<std::optional<RespReply>> RespClient::TakeBufferedReply() {
  size_t consumed = 0;
  StatusOr<std::optional<RespReply>> reply =
      ParseReply(std::string_view(input_).substr(input_start_), &consumed, options_.reply_limits);
  if (!reply.ok())
    return Break(reply.status());
  if (!reply->has_value())
    return reply;
  input_start_ += consumed;
  // Drop parsed bytes once they are the larger part of the buffer: amortised O(1) per byte.
  if (input_start_ == input_.size()) {
    input_.clear();
    input_start_ = 0;
  } else if (input_start_ > input_.size() / 2) {
    input_.erase(0, input_start_);
    input_start_ = 0;
  }
  return reply;
}

StatusOr<bool> RespClient::Receive(int64_t timeout_us) {
  while (true) {
    char chunk[kReadChunkBytes];
    const ssize_t n = recv(fd_, chunk, sizeof(chunk), 0);
    if (n > 0) {
      input_.append(chunk, static_cast<size_t>(n));
      return true;
    }
    if (n == 0)
      return Break(absl::UnavailableError("connection closed by the server"));
    if (errno == EINTR)
      continue;
    if (errno != EAGAIN && errno != EWOULDBLOCK)
      return Break(absl::UnavailableError(StrCat("recv: ", ErrnoText(errno))));
    WEFT_ASSIGN_OR_RETURN(bool readable, WaitFor(fd_, POLLIN, timeout_us));
    if (!readable)
      return false;
    timeout_us = 0;  // readable now: the next recv returns data, EOF or an error
  }
}

Status RespClient::Break(const Status& status) {
  const std::string prefix = StrCat(address_.ToString(), ": ");
  std::string message(status.message().data(), status.message().size());
  if (!std::string_view(message).starts_with(prefix))
    message = StrCat(prefix, message);
  if (broken_reason_.empty())
    broken_reason_ = message;
  return Status(status.code(), message);
}

Status RespClient::CheckUsable() const {
  if (broken_reason_.empty())
    return absl::OkStatus();
  return absl::FailedPreconditionError(
      StrCat("connection unusable after an earlier failure: ", broken_reason_));
}

}  // namespace weft::tools
