// TestServer: a weftd or redis-server process on a free loopback port, for the tools' tests.
//
// The server is started with PR_SET_PDEATHSIG so it dies with the test process (even when ctest
// kills the test on timeout), is ready when it answers PING, and is always stopped by the
// destructor: SIGTERM, then SIGKILL after a deadline. Its output goes to /dev/null.
//
// Thread safety: not thread-safe; a test owns its servers.
#pragma once

#include <memory>
#include <string>

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

// The binaries the build told the test about (compile definitions), or "" if unavailable.
std::string TestWeftdPath();
std::string TestRedisServerPath();

}  // namespace weft::tools
