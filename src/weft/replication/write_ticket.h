// WriteTicket: how a client command in `sync` mode waits for its changes to be acknowledged
// (DESIGN.md §4 step 3) without blocking a thread; WriteContext: how the command hands it to the
// replication of its changes.
//
// The server makes a ticket per batch of commands and passes it explicitly, as a WriteContext,
// through Store::WithKey to the WritePath (the store's ChangeObserver); every change takes one
// pending count per recipient lane it is enqueued on, and the outbox releases it when that
// recipient acknowledges the change, or when the recipient leaves the region's group (the sync
// contract, docs/design/replication.md: a broken channel alone releases nothing). Arm() is called
// once the batch has issued all its changes: it returns true if nothing is outstanding any more,
// and then `on_done` never runs; otherwise `on_done` runs exactly once, later, on the thread that
// releases the last acknowledgement (the protocol's thread, possibly with an outbox lock held:
// it should only post).
//
// Thread safety: AddPending/Release/Arm are safe from any thread.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>

#include "weft/storage/store.h"

namespace weft::replication {

class WriteTicket {
 public:
  // `on_done(acknowledged)`: true when every recipient acknowledged (or left the group); false
  // when the ticket was abandoned — this member was dropped from the group before it could
  // confirm the writes, so their outcome is unknown and must not be reported as success.
  explicit WriteTicket(std::function<void(bool acknowledged)> on_done)
      : on_done_(std::move(on_done)) {}
  WriteTicket(const WriteTicket&) = delete;
  WriteTicket& operator=(const WriteTicket&) = delete;

  void AddPending() { pending_.fetch_add(1, std::memory_order_relaxed); }
  void Release() {
    if (pending_.fetch_sub(1, std::memory_order_acq_rel) == 1) {
      on_done_(!abandoned());
    }
  }
  // Releases one pending count as unconfirmed: on_done will say so.
  void Abandon() {
    SetAbandoned();
    Release();
  }
  // A change of the command could not be sent where it must go (its member was dropped from
  // the group): whenever the ticket completes, it completes unconfirmed.
  void SetAbandoned() { abandoned_.store(true, std::memory_order_release); }
  // The command issued every change it will make. Call once. True: already done (then
  // on_done will not run; check abandoned()).
  [[nodiscard]] bool Arm() { return pending_.fetch_sub(1, std::memory_order_acq_rel) == 1; }
  bool abandoned() const { return abandoned_.load(std::memory_order_acquire); }

  // Acknowledgements still awaited (plus one until Arm): for tests and diagnostics.
  int64_t pending() const { return pending_.load(std::memory_order_relaxed); }

 private:
  std::atomic<int64_t> pending_{1};  // the Arm reference
  std::atomic<bool> abandoned_{false};
  std::function<void(bool)> on_done_;
};

struct RecipientSet;

// What a write command passes, through Store::WithKey, to the replication of its changes.
struct WriteContext final : storage::ChangeContext {
  WriteContext() = default;
  explicit WriteContext(std::shared_ptr<WriteTicket> ticket) : ticket(std::move(ticket)) {}

  // Sync regions: the command's reply waits for it. Null: nothing waits (async, or no client).
  std::shared_ptr<WriteTicket> ticket;
  // The recipient snapshot this change uses, taken by the caller as a step of its own
  // (WritePath::Begin; the simulator separates a write's steps this way). Null in production:
  // the WritePath takes the snapshot itself, under the key's shard lock.
  const RecipientSet* snapshot = nullptr;
};

}  // namespace weft::replication
