// PeerListener: accepts TCP connections, runs the acceptor's handshake on each, and hands the
// authenticated ones to its owner. A refused connection is logged and counted and touches
// nothing else.
#include <chrono>
#include <utility>

#include "weft/base/logging.h"
#include "weft/base/strings.h"
#include "weft/transport/peer_link.h"
#include "weft/transport/peer_link_internal.h"

namespace weft::transport {

struct PeerListener::Core : std::enable_shared_from_this<Core> {
  Core(asio::io_context& io, PeerIdentity self, std::string secret, AcceptHandler on_accept,
       const PeerLinkOptions& options)
      : io(io),
        strand(asio::make_strand(io)),
        acceptor(strand),
        retry(strand),
        self(std::move(self)),
        secret(std::move(secret)),
        on_accept(std::move(on_accept)),
        options(options) {}

  void Accept();
  void OnAccepted(const std::error_code& error, PeerConnection::Strand connection_strand,
                  asio::ip::tcp::socket socket);
  void OnHandshakeDone(const Status& status, std::shared_ptr<PeerConnection> connection);

  asio::io_context& io;
  PeerConnection::Strand strand;  // the acceptor's; each connection has its own
  asio::ip::tcp::acceptor acceptor;
  asio::steady_timer retry;
  const PeerIdentity self;
  const std::string secret;
  const AcceptHandler on_accept;
  const PeerLinkOptions options;

  std::atomic<bool> closed{false};
  std::atomic<uint64_t> accepted{0};
  std::atomic<uint64_t> refused{0};
  std::atomic<uint64_t> pending{0};
};

void PeerListener::Core::Accept() {
  if (closed.load(std::memory_order_acquire)) {
    return;
  }
  PeerConnection::Strand connection_strand = asio::make_strand(io);
  acceptor.async_accept(connection_strand, [core = shared_from_this(), connection_strand](
                                               const std::error_code& error, auto socket) {
    core->OnAccepted(error, connection_strand, asio::ip::tcp::socket(std::move(socket)));
  });
}

void PeerListener::Core::OnAccepted(const std::error_code& error,
                                    PeerConnection::Strand connection_strand,
                                    asio::ip::tcp::socket socket) {
  if (closed.load(std::memory_order_acquire) || error == asio::error::operation_aborted) {
    return;
  }
  if (error) {
    // Out of descriptors, most likely: wait a little rather than spin on the error.
    WEFT_LOG_WARN("accepting a peer connection failed: {}", error.message());
    retry.expires_after(std::chrono::milliseconds(100));
    retry.async_wait([core = shared_from_this()](const std::error_code& error) {
      if (!error) {
        core->Accept();
      }
    });
    return;
  }
  if (pending.load(std::memory_order_relaxed) >= options.pending_handshakes_max) {
    std::error_code ignored;
    const asio::ip::tcp::endpoint endpoint = socket.remote_endpoint(ignored);
    WEFT_LOG_WARN("refused peer connection from {}: {} connections are already in their handshake",
                  ignored ? std::string("?") : DescribeEndpoint(endpoint),
                  options.pending_handshakes_max);
    refused.fetch_add(1, std::memory_order_release);  // after the log line, as below
    socket.close(ignored);
    Accept();
    return;
  }
  auto connection = std::make_shared<PeerConnection>(PeerConnection::PassKey{}, connection_strand,
                                                     std::move(socket), options);
  connection->acceptor_.emplace(self, secret, NewNonce());
  connection->on_handshake_ = [core = shared_from_this()](
                                  const Status& status,
                                  std::shared_ptr<PeerConnection> connection) {
    core->OnHandshakeDone(status, std::move(connection));
  };
  pending.fetch_add(1, std::memory_order_relaxed);
  asio::post(connection->strand_, [connection] { connection->BeginHandshake(); });
  Accept();
}

// Runs on the connection's strand.
void PeerListener::Core::OnHandshakeDone(const Status& status,
                                         std::shared_ptr<PeerConnection> connection) {
  pending.fetch_sub(1, std::memory_order_relaxed);
  if (!status.ok()) {
    WEFT_LOG_WARN("refused peer connection from {}: {}", connection->remote_address(),
                  std::string(status.message()));
    // Counted after logging, so whoever sees the count can also find the reason in the log.
    refused.fetch_add(1, std::memory_order_release);
    return;
  }
  if (closed.load(std::memory_order_acquire)) {
    connection->Close();
    return;
  }
  accepted.fetch_add(1, std::memory_order_relaxed);
  const PeerIdentity peer = connection->peer();
  const ChannelInfo channel = connection->channel();
  on_accept(std::move(connection), peer, channel);
}

PeerListener::PeerListener(asio::io_context& io, PeerIdentity self, std::string secret,
                           AcceptHandler on_accept, const PeerLinkOptions& options)
    : core_(std::make_shared<Core>(io, std::move(self), std::move(secret), std::move(on_accept),
                                   options)) {}

PeerListener::~PeerListener() {
  Close();
}

Status PeerListener::Listen(const std::string& host, uint16_t port) {
  WEFT_RETURN_IF_ERROR(ValidateHandshakeConfig(core_->self, core_->secret));
  std::error_code error;
  asio::ip::tcp::resolver resolver(core_->io);
  const asio::ip::tcp::resolver::results_type results = resolver.resolve(
      host, std::to_string(port),
      asio::ip::tcp::resolver::passive | asio::ip::tcp::resolver::numeric_service, error);
  if (error || results.empty()) {
    return absl::InvalidArgumentError(
        StrCat("cannot listen for peers on ", host, ":", port, ": ",
               error ? error.message() : std::string("no such address")));
  }
  const asio::ip::tcp::endpoint endpoint = results.begin()->endpoint();
  asio::ip::tcp::acceptor& acceptor = core_->acceptor;
  acceptor.open(endpoint.protocol(), error);
  if (!error) {
    acceptor.set_option(asio::ip::tcp::acceptor::reuse_address(true), error);
  }
  if (!error) {
    acceptor.bind(endpoint, error);
  }
  if (!error) {
    acceptor.listen(asio::socket_base::max_listen_connections, error);
  }
  if (error) {
    std::error_code ignored;
    acceptor.close(ignored);
    return absl::UnavailableError(
        StrCat("cannot listen for peers on ", host, ":", port, ": ", error.message()));
  }
  port_ = acceptor.local_endpoint(error).port();
  asio::post(core_->strand, [core = core_] { core->Accept(); });
  return absl::OkStatus();
}

void PeerListener::Close() {
  core_->closed.store(true, std::memory_order_release);
  // Inline when called on the listener's strand, so that the port is free on return there.
  asio::dispatch(core_->strand, [core = core_] {
    std::error_code ignored;
    core->acceptor.close(ignored);
    core->retry.cancel();
  });
}

uint64_t PeerListener::accepted() const {
  return core_->accepted.load(std::memory_order_relaxed);
}

uint64_t PeerListener::refused() const {
  return core_->refused.load(std::memory_order_acquire);
}

uint64_t PeerListener::pending_handshakes() const {
  return core_->pending.load(std::memory_order_relaxed);
}

}  // namespace weft::transport
