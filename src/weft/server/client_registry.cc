#include "weft/server/client_registry.h"

namespace weft::server {

uint64_t ClientRegistry::NextId() {
  MutexLock lock(&mutex_);
  return next_id_++;
}

bool ClientRegistry::TryAdmit(int64_t limit) {
  if (admitted_.fetch_add(1, std::memory_order_relaxed) >= limit) {
    admitted_.fetch_sub(1, std::memory_order_relaxed);
    return false;
  }
  return true;
}

void ClientRegistry::Release() {
  admitted_.fetch_sub(1, std::memory_order_relaxed);
}

void ClientRegistry::Add(std::shared_ptr<Session> session) {
  MutexLock lock(&mutex_);
  const uint64_t id = session->id();
  sessions_.emplace(id, std::move(session));
}

void ClientRegistry::Remove(uint64_t id) {
  MutexLock lock(&mutex_);
  sessions_.erase(id);
}

size_t ClientRegistry::Count() const {
  MutexLock lock(&mutex_);
  return sessions_.size();
}

std::vector<std::shared_ptr<Session>> ClientRegistry::Snapshot() const {
  MutexLock lock(&mutex_);
  std::vector<std::shared_ptr<Session>> result;
  result.reserve(sessions_.size());
  for (const auto& [id, session] : sessions_)
    result.push_back(session);
  return result;
}

}  // namespace weft::server
