// WriteTicket: how a client command in `sync` mode waits for its changes to be acknowledged
// (DESIGN.md §4 step 3) without blocking a thread.
//
// The server makes a ticket per write command and installs it for the command's duration with
// ScopedWriteTicket; every change the command makes takes one pending count per recipient lane
// it is enqueued on, and the outbox releases it when the receiver acknowledges (or when the
// receiver leaves the group or its channel breaks). Arm() is called once the command has issued
// all its changes: it returns true if nothing is outstanding any more, and then `on_done` never
// runs; otherwise `on_done` runs exactly once, later, on the thread that releases the last
// acknowledgement (an outbox's, possibly with the outbox's lock held: it should only post).
//
// Thread safety: AddPending/Release/Arm are safe from any thread.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>

namespace weft::replication {

class WriteTicket {
 public:
  explicit WriteTicket(std::function<void()> on_done) : on_done_(std::move(on_done)) {}
  WriteTicket(const WriteTicket&) = delete;
  WriteTicket& operator=(const WriteTicket&) = delete;

  void AddPending() { pending_.fetch_add(1, std::memory_order_relaxed); }
  void Release() {
    if (pending_.fetch_sub(1, std::memory_order_acq_rel) == 1) {
      on_done_();
    }
  }
  // The command issued every change it will make. Call once. True: already acknowledged by
  // everyone (on_done will not run).
  [[nodiscard]] bool Arm() { return pending_.fetch_sub(1, std::memory_order_acq_rel) == 1; }

  // Acknowledgements still awaited (plus one until Arm): for tests and diagnostics.
  int64_t pending() const { return pending_.load(std::memory_order_relaxed); }

 private:
  std::atomic<int64_t> pending_{1};  // the Arm reference
  std::function<void()> on_done_;
};

// Makes `ticket` the current thread's ticket for its scope: the changes the thread makes to a
// sync region wait on it. Nesting is not supported (one command at a time per thread).
class ScopedWriteTicket {
 public:
  explicit ScopedWriteTicket(std::shared_ptr<WriteTicket> ticket);
  ~ScopedWriteTicket();
  ScopedWriteTicket(const ScopedWriteTicket&) = delete;
  ScopedWriteTicket& operator=(const ScopedWriteTicket&) = delete;

  // The ticket installed on this thread, or null.
  static const std::shared_ptr<WriteTicket>* Current();
};

}  // namespace weft::replication
