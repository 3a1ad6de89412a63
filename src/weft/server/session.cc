#include "weft/server/session.h"

#include <utility>

namespace weft::server {

Session::Session(uint64_t id, std::string peer_address, std::string local_address, int fd,
                 int64_t created_unix_ms)
    : id_(id),
      peer_address_(std::move(peer_address)),
      local_address_(std::move(local_address)),
      fd_(fd),
      created_unix_ms_(created_unix_ms),
      last_interaction_unix_ms_(created_unix_ms) {}

std::string Session::name() const {
  MutexLock lock(&mutex_);
  return name_;
}

void Session::set_name(std::string name) {
  MutexLock lock(&mutex_);
  name_ = std::move(name);
}

void Session::set_closer(std::function<void()> closer) {
  MutexLock lock(&mutex_);
  closer_ = std::move(closer);
}

void Session::RequestClose() {
  std::function<void()> closer;
  {
    MutexLock lock(&mutex_);
    closer = closer_;
  }
  if (closer)
    closer();
}

}  // namespace weft::server
