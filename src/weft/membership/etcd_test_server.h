// EtcdTestServer: a throwaway single-node etcd for tests (Debian's /usr/bin/etcd).
//
// Start picks free loopback ports for the client and peer URLs, a fresh data directory under
// $TMPDIR (or /tmp), starts etcd and waits until a range request succeeds. The destructor kills
// it (SIGKILL), reaps it and removes the directory; the child also gets SIGKILL if the test
// process dies first (PR_SET_PDEATHSIG), so a crashed test leaves no etcd behind.
//
// Thread safety: not thread-safe; use it from one thread (the one that started it: the death
// signal follows that thread).
#pragma once

#include <chrono>
#include <memory>
#include <string>
#include <vector>

#include "weft/base/status.h"

#include <sys/types.h>

namespace weft::membership {

class EtcdTestServer {
 public:
  static constexpr const char* kDefaultBinary = "/usr/bin/etcd";

  // Starts etcd. Unavailable (with the tail of etcd's log) if it does not answer within
  // `ready_timeout`; NotFound if the binary is missing.
  static StatusOr<std::unique_ptr<EtcdTestServer>> Start(
      std::string binary = kDefaultBinary,
      std::chrono::milliseconds ready_timeout = std::chrono::seconds(20));

  ~EtcdTestServer();
  EtcdTestServer(const EtcdTestServer&) = delete;
  EtcdTestServer& operator=(const EtcdTestServer&) = delete;

  // Kills etcd (SIGKILL, like a crash) and starts it again on the same ports and data, then
  // waits until it answers.
  Status Restart(std::chrono::milliseconds ready_timeout = std::chrono::seconds(20));

  // "127.0.0.1:<client port>"
  const std::string& endpoint() const { return endpoint_; }
  pid_t pid() const { return pid_; }

 private:
  EtcdTestServer(std::string directory, std::string endpoint, std::vector<std::string> args);

  // Forks and execs etcd with args_.
  Status Launch();
  // Waits until etcd answers. FailedPrecondition if it exited (then pid_ is -1).
  Status WaitReady(std::chrono::milliseconds ready_timeout);
  void Stop();

  pid_t pid_ = -1;
  const std::string directory_;
  const std::string endpoint_;
  std::vector<std::string> args_;
};

}  // namespace weft::membership
