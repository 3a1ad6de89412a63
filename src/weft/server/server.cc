#include "weft/server/server.h"

#include "weft/base/logging.h"
#include "weft/base/strings.h"
#include "weft/base/thread_name.h"

#include <sys/resource.h>

namespace weft::server {
namespace {

// Each I/O thread reads into one buffer of this size; see connection.h.
constexpr size_t kScratchBytes = 64 * 1024;

// Redis keeps 32 descriptors for itself beyond maxclients; so do we.
constexpr rlim_t kReservedDescriptors = 32;

void RaiseDescriptorLimit(int64_t maxclients) {
  rlimit limit{};
  if (getrlimit(RLIMIT_NOFILE, &limit) != 0)
    return;
  const rlim_t wanted = static_cast<rlim_t>(maxclients) + kReservedDescriptors;
  if (limit.rlim_cur >= wanted)
    return;
  limit.rlim_cur = std::min(wanted, limit.rlim_max);
  if (setrlimit(RLIMIT_NOFILE, &limit) != 0 || limit.rlim_cur < wanted) {
    WEFT_LOG_WARN("open-file limit is {}: fewer than maxclients={} clients can connect",
                  limit.rlim_cur, maxclients);
  }
}

}  // namespace

Server::Server(ServerState& state, const CommandTable& commands)
    : state_(state), commands_(commands) {
  const int count = std::max(1, state_.config().io_threads);
  for (int i = 0; i < count; ++i)
    threads_.push_back(std::make_unique<IoThreadContext>(kScratchBytes));
}

Server::~Server() {
  Stop();
  Wait();
}

Status Server::Start() {
  RaiseDescriptorLimit(state_.settings().maxclients());
  asio::io_context& listener_context = threads_[0]->io_context;
  std::error_code error;
  const asio::ip::address address = asio::ip::make_address(state_.config().bind, error);
  if (error) {
    return absl::InvalidArgumentError(
        StrCat("bad --bind address '", state_.config().bind, "': ", error.message()));
  }
  const asio::ip::tcp::endpoint endpoint(address, static_cast<uint16_t>(state_.config().port));
  acceptor_ = std::make_unique<asio::ip::tcp::acceptor>(listener_context);
  acceptor_->open(endpoint.protocol(), error);
  if (!error)
    acceptor_->set_option(asio::ip::tcp::acceptor::reuse_address(true), error);
  if (!error)
    acceptor_->bind(endpoint, error);
  if (!error)
    acceptor_->listen(511, error);  // Redis's default tcp-backlog
  if (error) {
    return absl::UnavailableError(StrCat("cannot listen on ", state_.config().bind, ":",
                                         state_.config().port, ": ", error.message()));
  }
  state_.set_port(acceptor_->local_endpoint().port());
  state_.settings().SetFixed("port", std::to_string(state_.port()));
  state_.set_shutdown_hook([this] { Stop(); });

  Accept();
  tick_timer_ = std::make_unique<asio::steady_timer>(listener_context);
  ScheduleTick();
  for (auto& thread : threads_) {
    workers_.emplace_back([context = &thread->io_context, index = workers_.size()] {
      SetThreadName(StrCat("weft-io-", index));
      auto guard = asio::make_work_guard(*context);
      context->run();
    });
  }
  WEFT_LOG_INFO("weftd listening on {}:{} with {} I/O threads", state_.config().bind, state_.port(),
                threads_.size());
  return absl::OkStatus();
}

void Server::Accept() {
  IoThreadContext& target = *threads_[next_thread_];
  next_thread_ = (next_thread_ + 1) % threads_.size();
  acceptor_->async_accept(target.io_context, [this, &target](const std::error_code& error,
                                                             asio::ip::tcp::socket socket) {
    if (stopping_.load())
      return;
    if (error) {
      // Out of descriptors or a connection reset before accept: log and keep accepting.
      WEFT_LOG_WARN("accept failed: {}", error.message());
    } else {
      state_.stats().connections_received.fetch_add(1, std::memory_order_relaxed);
      if (!state_.clients().TryAdmit(state_.settings().maxclients())) {
        state_.stats().connections_rejected.fetch_add(1, std::memory_order_relaxed);
        static constexpr std::string_view kRefusal = "-ERR max number of clients reached\r\n";
        std::error_code ignored;
        socket.write_some(asio::buffer(kRefusal), ignored);
        socket.close(ignored);
      } else {
        auto connection =
            std::make_shared<Connection>(std::move(socket), target, state_, commands_);
        connection->Register();
        asio::post(target.io_context, [connection] { connection->Start(); });
      }
    }
    Accept();
  });
}

void Server::ScheduleTick() {
  tick_timer_->expires_after(
      std::chrono::milliseconds(1000 / std::max<int64_t>(1, state_.settings().hz())));
  tick_timer_->async_wait([this](const std::error_code& error) {
    if (error || stopping_.load())
      return;
    state_.Tick();
    ScheduleTick();
  });
}

void Server::Stop() {
  if (stopping_.exchange(true))
    return;
  WEFT_LOG_INFO("weftd stopping");
  // Close the listener and every client on their own threads, then let the threads run out.
  asio::post(threads_[0]->io_context, [this] {
    std::error_code ignored;
    if (acceptor_)
      acceptor_->close(ignored);
    if (tick_timer_)
      tick_timer_->cancel();
  });
  for (const auto& session : state_.clients().Snapshot())
    session->RequestClose();
  for (auto& thread : threads_) {
    asio::post(thread->io_context, [context = &thread->io_context] { context->stop(); });
  }
}

void Server::Wait() {
  for (std::thread& worker : workers_) {
    if (worker.joinable())
      worker.join();
  }
  workers_.clear();
}

}  // namespace weft::server
