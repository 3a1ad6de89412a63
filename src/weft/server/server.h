// Server: the network shell of a member. It owns the I/O threads (one io_context each), the
// client listener, the periodic tick (active expiry), and graceful shutdown on SIGTERM/SIGINT
// or SHUTDOWN.
//
// Connections are spread over the I/O threads round-robin at accept time and stay on their
// thread for life, so a connection's state needs no locks; shared data lives in ServerState.
//
// Thread safety: Start, Wait and Stop may be called from any one controlling thread; Stop is
// also safe from a signal handler's posted handler or a command (via ServerState's hook).
#pragma once

#include <atomic>
#include <memory>
#include <thread>
#include <vector>

#include "weft/base/status.h"
#include "weft/server/command_table.h"
#include "weft/server/connection.h"
#include "weft/server/server_state.h"

#include <asio.hpp>

namespace weft::server {

class Server {
 public:
  Server(ServerState& state, const CommandTable& commands);
  ~Server();

  Server(const Server&) = delete;
  Server& operator=(const Server&) = delete;

  // Binds the client port and starts the I/O threads. On failure (port in use, bad address)
  // returns the reason and starts nothing.
  Status Start();

  // Blocks until Stop() has been requested and every thread has finished.
  void Wait();

  // Requests a graceful stop: stop accepting, close every client, end the threads.
  void Stop();

  int port() const { return state_.port(); }

 private:
  void Accept();
  void ScheduleTick();

  ServerState& state_;
  const CommandTable& commands_;
  std::vector<std::unique_ptr<IoThreadContext>> threads_;
  std::vector<std::thread> workers_;
  std::unique_ptr<asio::ip::tcp::acceptor> acceptor_;
  std::unique_ptr<asio::steady_timer> tick_timer_;
  size_t next_thread_ = 0;
  std::atomic<bool> stopping_{false};
};

}  // namespace weft::server
