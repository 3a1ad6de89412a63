#include "weft/membership/etcd_test_server.h"

#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <thread>
#include <vector>

#include "weft/membership/etcd_client.h"

#include <fmt/format.h>
#include <netinet/in.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>

namespace weft::membership {
namespace {

// A port the kernel just handed out for loopback. It is free now; another process could take
// it before etcd binds it, in which case etcd exits and Start tries again.
StatusOr<int> FreeLoopbackPort() {
  const int fd = socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0) {
    return absl::InternalError(fmt::format("socket: {}", std::strerror(errno)));
  }
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  address.sin_port = 0;
  socklen_t length = sizeof(address);
  if (bind(fd, reinterpret_cast<sockaddr*>(&address), sizeof(address)) != 0 ||
      getsockname(fd, reinterpret_cast<sockaddr*>(&address), &length) != 0) {
    const std::string error = std::strerror(errno);
    close(fd);
    return absl::InternalError(fmt::format("bind/getsockname: {}", error));
  }
  close(fd);
  return ntohs(address.sin_port);
}

std::string LogTail(const std::string& path) {
  std::ifstream in(path);
  std::stringstream content;
  content << in.rdbuf();
  const std::string text = content.str();
  return text.size() > 2000 ? text.substr(text.size() - 2000) : text;
}

void KillAndReap(pid_t pid) {
  kill(pid, SIGKILL);
  int status = 0;
  while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
}

}  // namespace

EtcdTestServer::EtcdTestServer(std::string directory, std::string endpoint,
                               std::vector<std::string> args)
    : directory_(std::move(directory)), endpoint_(std::move(endpoint)), args_(std::move(args)) {}

StatusOr<std::unique_ptr<EtcdTestServer>> EtcdTestServer::Start(
    std::string binary, std::chrono::milliseconds ready_timeout) {
  if (access(binary.c_str(), X_OK) != 0) {
    return absl::NotFoundError(fmt::format("no etcd binary at {}", binary));
  }
  const char* tmpdir = std::getenv("TMPDIR");
  Status last_error = absl::UnavailableError("etcd did not start");
  for (int attempt = 0; attempt < 3; ++attempt) {
    std::string directory =
        fmt::format("{}/weft-etcd-XXXXXX", tmpdir != nullptr && *tmpdir ? tmpdir : "/tmp");
    if (mkdtemp(directory.data()) == nullptr) {
      return absl::InternalError(fmt::format("mkdtemp {}: {}", directory, std::strerror(errno)));
    }
    StatusOr<int> client_port = FreeLoopbackPort();
    StatusOr<int> peer_port = FreeLoopbackPort();
    if (!client_port.ok() || !peer_port.ok()) {
      std::error_code error;
      std::filesystem::remove_all(directory, error);
      return client_port.ok() ? peer_port.status() : client_port.status();
    }
    const std::string client_url = fmt::format("http://127.0.0.1:{}", *client_port);
    const std::string peer_url = fmt::format("http://127.0.0.1:{}", *peer_port);
    // Short raft timings make a single node elect itself quickly; etcd's minimum lease TTL
    // becomes ceil(1.5 × election timeout) = 1 s.
    std::vector<std::string> args = {binary,
                                     "--name=weft-test",
                                     "--data-dir=" + directory + "/data",
                                     "--listen-client-urls=" + client_url,
                                     "--advertise-client-urls=" + client_url,
                                     "--listen-peer-urls=" + peer_url,
                                     "--initial-advertise-peer-urls=" + peer_url,
                                     "--initial-cluster=weft-test=" + peer_url,
                                     "--initial-cluster-state=new",
                                     "--heartbeat-interval=50",
                                     "--election-timeout=500",
                                     "--logger=zap",
                                     "--log-outputs=stderr",
                                     "--log-level=warn"};
    // The constructor is private (only Start makes servers), so make_unique cannot call it.
    std::unique_ptr<EtcdTestServer> server(
        new EtcdTestServer(directory, fmt::format("127.0.0.1:{}", *client_port), std::move(args)));
    WEFT_RETURN_IF_ERROR(server->Launch());
    last_error = server->WaitReady(ready_timeout);
    if (last_error.ok()) {
      return server;
    }
    if (!absl::IsFailedPrecondition(last_error)) {
      return last_error;
    }
    // etcd exited (a port was taken meanwhile?); `server` removes its directory; try again.
  }
  return last_error;
}

Status EtcdTestServer::Launch() {
  std::vector<char*> argv;
  for (std::string& arg : args_) {
    argv.push_back(arg.data());
  }
  argv.push_back(nullptr);
  const std::string log_path = directory_ + "/etcd.log";
  const pid_t parent = getpid();
  const pid_t pid = fork();
  if (pid < 0) {
    return absl::InternalError(fmt::format("fork: {}", std::strerror(errno)));
  }
  if (pid == 0) {
    // Child: only async-signal-safe calls until exec.
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (getppid() != parent) {
      _exit(1);
    }
    const int log = open(log_path.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
    if (log >= 0) {
      dup2(log, STDOUT_FILENO);
      dup2(log, STDERR_FILENO);
    }
    execv(argv[0], argv.data());
    _exit(127);
  }
  pid_ = pid;
  return absl::OkStatus();
}

Status EtcdTestServer::WaitReady(std::chrono::milliseconds ready_timeout) {
  const std::string log_path = directory_ + "/etcd.log";
  EtcdClient client(EtcdClientOptions{
      .endpoint = endpoint_, .connect_timeout_ms = 200, .request_timeout_ms = 1000});
  const auto deadline = std::chrono::steady_clock::now() + ready_timeout;
  Status last_error = absl::UnavailableError("not tried");
  while (std::chrono::steady_clock::now() < deadline) {
    int status = 0;
    if (waitpid(pid_, &status, WNOHANG) == pid_) {
      pid_ = -1;
      return absl::FailedPreconditionError(
          fmt::format("etcd exited during start-up; log tail:\n{}", LogTail(log_path)));
    }
    StatusOr<EtcdRangeResult> range = client.Range("/weft-test-ready", "");
    if (range.ok()) {
      return absl::OkStatus();
    }
    last_error = range.status();
    std::this_thread::sleep_for(std::chrono::milliseconds(50));  // polling another process
  }
  return absl::UnavailableError(fmt::format("etcd did not answer within {} ms ({}); log tail:\n{}",
                                            ready_timeout.count(), last_error.ToString(),
                                            LogTail(log_path)));
}

void EtcdTestServer::Stop() {
  if (pid_ > 0) {
    KillAndReap(pid_);
    pid_ = -1;
  }
}

Status EtcdTestServer::Restart(std::chrono::milliseconds ready_timeout) {
  Stop();
  WEFT_RETURN_IF_ERROR(Launch());
  return WaitReady(ready_timeout);
}

EtcdTestServer::~EtcdTestServer() {
  Stop();
  std::error_code error;
  std::filesystem::remove_all(directory_, error);
}

}  // namespace weft::membership
