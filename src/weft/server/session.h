// Session: the state of one client connection that commands read and change (selected region,
// protocol version, authentication, name), plus what CLIENT LIST reports about it.
//
// A Session is owned jointly by its Connection (which runs its commands) and the
// ClientRegistry (which lists and kills it); see client_registry.h for why it is shared.
//
// Thread safety: the plain fields (db_index, protocol, authenticated, close_after_reply) are
// touched only by the connection's I/O thread, which runs every command of the session. The
// fields other threads read for CLIENT LIST are atomics or guarded by `mutex_`.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <mutex>
#include <string>

#include "absl/base/thread_annotations.h"

#include "weft/base/mutex.h"
#include "weft/storage/store.h"

namespace weft::server {

class Session {
 public:
  Session(uint64_t id, std::string peer_address, std::string local_address, int fd,
          int64_t created_unix_ms);

  Session(const Session&) = delete;
  Session& operator=(const Session&) = delete;

  uint64_t id() const { return id_; }
  const std::string& peer_address() const { return peer_address_; }
  const std::string& local_address() const { return local_address_; }
  int fd() const { return fd_; }
  int64_t created_unix_ms() const { return created_unix_ms_; }

  std::string name() const;
  void set_name(std::string name);

  // Set by the Connection: asks it to close, from any thread. The connection closes on its own
  // thread after finishing the command it is running.
  void set_closer(std::function<void()> closer);
  void RequestClose();

  // Called by the connection's thread before each command.
  void NoteCommand(const char* command_name, int64_t now_unix_ms) {
    last_command_.store(command_name, std::memory_order_relaxed);
    last_interaction_unix_ms_.store(now_unix_ms, std::memory_order_relaxed);
  }
  const char* last_command() const { return last_command_.load(std::memory_order_relaxed); }
  int64_t last_interaction_unix_ms() const {
    return last_interaction_unix_ms_.load(std::memory_order_relaxed);
  }

  // Buffer sizes the connection publishes for CLIENT LIST (qbuf, omem).
  void PublishBufferSizes(size_t query_bytes, size_t output_bytes) {
    query_bytes_.store(query_bytes, std::memory_order_relaxed);
    output_bytes_.store(output_bytes, std::memory_order_relaxed);
  }
  size_t query_bytes() const { return query_bytes_.load(std::memory_order_relaxed); }
  size_t output_bytes() const { return output_bytes_.load(std::memory_order_relaxed); }

  int db_index() const { return db_index_.load(std::memory_order_relaxed); }
  void set_db_index(int index) { db_index_.store(index, std::memory_order_relaxed); }

  // RESP version (2 or 3). Written by the session's thread, read by CLIENT LIST elsewhere.
  int protocol() const { return protocol_.load(std::memory_order_relaxed); }
  void set_protocol(int protocol) { protocol_.store(protocol, std::memory_order_relaxed); }

  // Owned by the connection's thread.
  bool authenticated = false;
  bool close_after_reply = false;

  // What the commands being run tell the replication layer about their writes (the sync ticket
  // of the current batch); null outside a batch. The connection's thread only.
  const storage::ChangeContext* change_context() const { return change_context_; }
  void set_change_context(const storage::ChangeContext* context) { change_context_ = context; }

 private:
  const uint64_t id_;
  const std::string peer_address_;
  const std::string local_address_;
  const int fd_;
  const int64_t created_unix_ms_;

  std::atomic<int> db_index_{0};
  std::atomic<int> protocol_{2};
  std::atomic<const char*> last_command_{"NULL"};
  std::atomic<int64_t> last_interaction_unix_ms_;
  std::atomic<size_t> query_bytes_{0};
  std::atomic<size_t> output_bytes_{0};

  mutable Mutex mutex_;
  std::string name_ ABSL_GUARDED_BY(mutex_);
  std::function<void()> closer_ ABSL_GUARDED_BY(mutex_);
  const storage::ChangeContext* change_context_ = nullptr;
};

}  // namespace weft::server
