// ClientRegistry: every connected client, for CLIENT LIST / CLIENT KILL, INFO clients and the
// maxclients limit.
//
// Sessions are held by shared_ptr because two owners with independent lifetimes need them: the
// connection (until its socket closes) and a CLIENT LIST/KILL running on another I/O thread
// (until it has read the session's fields). The registry forgets a session when its connection
// closes.
//
// Thread safety: all methods are safe from any thread.
#pragma once

#include <atomic>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <vector>

#include "absl/base/thread_annotations.h"

#include "weft/base/mutex.h"
#include "weft/server/session.h"

namespace weft::server {

class ClientRegistry {
 public:
  // Returns a fresh, never reused client id (CLIENT ID).
  uint64_t NextId();

  // Admission against maxclients happens at accept time, before the connection is set up on
  // its I/O thread; counting registered sessions instead would let a burst of connects through.
  // Returns false (and admits nothing) when `limit` clients are already admitted.
  bool TryAdmit(int64_t limit);
  // Undoes one successful TryAdmit when that client's connection closes.
  void Release();

  void Add(std::shared_ptr<Session> session);
  void Remove(uint64_t id);
  size_t Count() const;

  // Sessions in ascending id order (the order CLIENT LIST prints).
  std::vector<std::shared_ptr<Session>> Snapshot() const;

 private:
  std::atomic<int64_t> admitted_{0};
  mutable Mutex mutex_;
  uint64_t next_id_ ABSL_GUARDED_BY(mutex_) = 1;
  std::map<uint64_t, std::shared_ptr<Session>> sessions_ ABSL_GUARDED_BY(mutex_);
};

}  // namespace weft::server
