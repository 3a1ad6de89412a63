#include "tools/weft/test_server.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <unistd.h>

#include <chrono>
#include <fstream>
#include <iterator>
#include <thread>
#include <vector>

#include "weft/base/strings.h"

#include <netinet/in.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>

namespace weft::tools {
namespace {

constexpr int64_t kStartTimeoutMs = 20'000;
constexpr int64_t kStopTimeoutMs = 10'000;
constexpr std::chrono::milliseconds kPollInterval(10);

// A loopback port that was free a moment ago.
StatusOr<uint16_t> FreePort() {
  const int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0)
    return absl::InternalError("socket failed");
  struct sockaddr_in address = {};
  address.sin_family = AF_INET;
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t length = sizeof(address);
  const bool ok = bind(fd, reinterpret_cast<struct sockaddr*>(&address), sizeof(address)) == 0 &&
                  getsockname(fd, reinterpret_cast<struct sockaddr*>(&address), &length) == 0;
  close(fd);
  if (!ok)
    return absl::InternalError("bind to a loopback port failed");
  return ntohs(address.sin_port);
}

StatusOr<pid_t> Spawn(const std::vector<std::string>& args) {
  std::vector<char*> argv;
  for (const std::string& arg : args)
    argv.push_back(const_cast<char*>(arg.c_str()));
  argv.push_back(nullptr);
  const pid_t parent = getpid();
  const pid_t pid = fork();
  if (pid < 0)
    return absl::InternalError("fork failed");
  if (pid == 0) {
    // Only async-signal-safe calls between fork and exec.
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (getppid() != parent)
      _exit(127);
    const int null = open("/dev/null", O_RDWR);
    dup2(null, STDIN_FILENO);
    dup2(null, STDOUT_FILENO);
    dup2(null, STDERR_FILENO);
    execv(argv[0], argv.data());
    _exit(127);
  }
  return pid;
}

// True if `pid` has exited (and reaps it).
bool Exited(pid_t pid) {
  int status = 0;
  return waitpid(pid, &status, WNOHANG) == pid;
}

void StopProcess(pid_t pid) {
  kill(pid, SIGCONT);  // a stopped process cannot handle SIGTERM
  kill(pid, SIGTERM);
  const auto deadline =
      std::chrono::steady_clock::now() + std::chrono::milliseconds(kStopTimeoutMs);
  while (std::chrono::steady_clock::now() < deadline) {
    if (Exited(pid))
      return;
    std::this_thread::sleep_for(kPollInterval);
  }
  kill(pid, SIGKILL);
  int status = 0;
  waitpid(pid, &status, 0);
}

// Waits until the server answers PING; Unavailable if it exited, DeadlineExceeded on timeout.
Status WaitReady(pid_t pid, const HostPort& address) {
  const auto deadline =
      std::chrono::steady_clock::now() + std::chrono::milliseconds(kStartTimeoutMs);
  RespClientOptions options;
  options.connect_timeout_ms = 500;
  options.io_timeout_ms = 2000;
  while (std::chrono::steady_clock::now() < deadline) {
    if (Exited(pid))
      return absl::UnavailableError(StrCat("server exited before answering on ", address.port));
    StatusOr<std::unique_ptr<RespClient>> client = RespClient::Connect(address, options);
    if (client.ok()) {
      StatusOr<RespReply> pong = (*client)->Call({"PING"});
      if (pong.ok() && pong->type == RespReply::Type::kSimpleString)
        return absl::OkStatus();
    }
    std::this_thread::sleep_for(kPollInterval);
  }
  return absl::DeadlineExceededError("server did not answer PING in time");
}

}  // namespace

StatusOr<std::unique_ptr<TestServer>> TestServer::Start(Kind kind, const std::string& binary) {
  Status last;
  for (int attempt = 0; attempt < 3; ++attempt) {
    WEFT_ASSIGN_OR_RETURN(uint16_t port, FreePort());
    std::vector<std::string> args = {binary, "--port", std::to_string(port), "--bind", "127.0.0.1"};
    if (kind == Kind::kRedis) {
      for (const char* arg : {"--save", "", "--appendonly", "no", "--daemonize", "no"})
        args.emplace_back(arg);
    }
    WEFT_ASSIGN_OR_RETURN(pid_t pid, Spawn(args));
    HostPort address{"127.0.0.1", port};
    last = WaitReady(pid, address);
    if (last.ok())
      return std::unique_ptr<TestServer>(new TestServer(pid, address));
    StopProcess(pid);
    if (!absl::IsUnavailable(last))
      break;  // a timeout will not get better with another port
  }
  return last;
}

TestServer::~TestServer() {
  StopProcess(pid_);
}

void TestServer::Signal(int signal_number) const {
  kill(pid_, signal_number);
  if (signal_number != SIGSTOP) {
    return;
  }
  // kill() returns before every thread of the target has stopped: a thread running on another
  // core may still answer a request. Wait (bounded) until /proc says the process is stopped.
  const std::string stat_path = StrCat("/proc/", pid_, "/stat");
  for (int i = 0; i < 500; ++i) {
    std::ifstream stat(stat_path);
    std::string text((std::istreambuf_iterator<char>(stat)), std::istreambuf_iterator<char>());
    const size_t paren = text.rfind(')');
    if (paren != std::string::npos && paren + 2 < text.size() && text[paren + 2] == 'T') {
      return;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
  }
}

std::string BulkReply(std::string_view text) {
  return StrCat("$", text.size(), "\r\n", text, "\r\n");
}

StatusOr<std::unique_ptr<ScriptedServer>> ScriptedServer::Start(std::vector<std::string> replies) {
  if (replies.empty())
    return absl::InvalidArgumentError("a scripted server needs at least one reply");
  const int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
  if (fd < 0)
    return absl::InternalError("socket failed");
  struct sockaddr_in address = {};
  address.sin_family = AF_INET;
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t length = sizeof(address);
  if (bind(fd, reinterpret_cast<struct sockaddr*>(&address), sizeof(address)) != 0 ||
      listen(fd, 16) != 0 ||
      getsockname(fd, reinterpret_cast<struct sockaddr*>(&address), &length) != 0) {
    close(fd);
    return absl::InternalError("cannot listen on a loopback port");
  }
  return std::unique_ptr<ScriptedServer>(
      new ScriptedServer(fd, HostPort{"127.0.0.1", ntohs(address.sin_port)}, std::move(replies)));
}

ScriptedServer::ScriptedServer(int listen_fd, HostPort address, std::vector<std::string> replies)
    : listen_fd_(listen_fd), address_(std::move(address)), replies_(std::move(replies)) {
  thread_ = std::thread([this] { Serve(); });
}

ScriptedServer::~ScriptedServer() {
  stop_.store(true);
  thread_.join();
  close(listen_fd_);
}

void ScriptedServer::Serve() {
  std::vector<struct pollfd> fds = {{listen_fd_, POLLIN, 0}};
  while (!stop_.load()) {
    // A short timeout so that the destructor is noticed promptly.
    if (poll(fds.data(), fds.size(), 10) <= 0)
      continue;
    if (fds[0].revents & POLLIN) {
      const int client = accept4(listen_fd_, nullptr, nullptr, SOCK_CLOEXEC);
      if (client >= 0)
        fds.push_back({client, POLLIN, 0});
    }
    for (size_t i = 1; i < fds.size(); ++i) {
      if ((fds[i].revents & (POLLIN | POLLHUP | POLLERR)) == 0)
        continue;
      char buffer[4096];
      const ssize_t n = read(fds[i].fd, buffer, sizeof(buffer));
      if (n <= 0) {
        close(fds[i].fd);
        fds.erase(fds.begin() + static_cast<std::ptrdiff_t>(i));
        --i;
        continue;
      }
      const int index = requests_.fetch_add(1);
      const std::string& reply =
          replies_[std::min(static_cast<size_t>(index), replies_.size() - 1)];
      // Replies are small; a blocking-enough write of a few KiB to a loopback socket succeeds.
      if (write(fds[i].fd, reply.data(), reply.size()) < 0)
        continue;
    }
  }
  for (size_t i = 1; i < fds.size(); ++i)
    close(fds[i].fd);
}

std::string TestWeftdPath() {
#ifdef WEFT_TEST_WEFTD_PATH
  return WEFT_TEST_WEFTD_PATH;
#else
  return "";
#endif
}

std::string TestRedisServerPath() {
#ifdef WEFT_TEST_REDIS_SERVER_PATH
  const std::string path = WEFT_TEST_REDIS_SERVER_PATH;
  return access(path.c_str(), X_OK) == 0 ? path : "";
#else
  return "";
#endif
}

}  // namespace weft::tools
