// Servers for the tools' tests: TestServer runs a real weftd or redis-server on a free loopback
// port; ScriptedServer plays back canned replies.
//
//
// The server is started with PR_SET_PDEATHSIG so it dies with the test process (even when ctest
// kills the test on timeout), is ready when it answers PING, and is always stopped by the
// destructor: SIGTERM, then SIGKILL after a deadline. Its output goes to /dev/null.
//
// Thread safety: not thread-safe; a test owns its servers.
#pragma once

#include <atomic>
#include <memory>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "weft/base/status.h"

#include "tools/weft/resp_client.h"
#include <sys/types.h>

namespace weft::tools {

class TestServer {
 public:
  enum class Kind { kWeft, kRedis };

  // Starts `binary` (a weftd or redis-server) and waits until it answers PING (at most 20 s).
  // Retries with another port if the chosen one was taken meanwhile.
  static StatusOr<std::unique_ptr<TestServer>> Start(Kind kind, const std::string& binary);

  ~TestServer();
  TestServer(const TestServer&) = delete;
  TestServer& operator=(const TestServer&) = delete;

  const HostPort& address() const { return address_; }

  // Sends `signal_number` (e.g. SIGSTOP / SIGCONT to make the server stall).
  void Signal(int signal_number) const;

 private:
  TestServer(pid_t pid, HostPort address) : pid_(pid), address_(std::move(address)) {}

  pid_t pid_;
  HostPort address_;
};

// A loopback RESP server for testing clients: it answers each request with the next of
// `replies` (raw RESP bytes), repeating the last one once the list is used up. Each read from a
// connection is taken as one request, which holds for a client that waits for every reply
// (RespClient::Call). One background thread serves all connections until destruction.
class ScriptedServer {
 public:
  static StatusOr<std::unique_ptr<ScriptedServer>> Start(std::vector<std::string> replies);

  ~ScriptedServer();
  ScriptedServer(const ScriptedServer&) = delete;
  ScriptedServer& operator=(const ScriptedServer&) = delete;

  const HostPort& address() const { return address_; }
  // Requests answered so far.
  int requests() const { return requests_.load(); }

 private:
  ScriptedServer(int listen_fd, HostPort address, std::vector<std::string> replies);
  void Serve();

  const int listen_fd_;
  const HostPort address_;
  const std::vector<std::string> replies_;
  std::atomic<bool> stop_{false};
  std::atomic<int> requests_{0};
  std::thread thread_;
};

// A RESP bulk string holding `text`.
std::string BulkReply(std::string_view text);

// The binaries the build told the test about (compile definitions), or "" if unavailable.
std::string TestWeftdPath();
std::string TestRedisServerPath();

}  // namespace weft::tools
