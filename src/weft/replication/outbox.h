// Outbox: the sending half of one lane (region, this member -> peer, lane).
//
// Records are appended in wire order and numbered 1, 2, 3, ...: the number of the last one is
// the lane's transmission counter `sent` (DESIGN.md §2), incremented at enqueue. A record stays
// until the receiver acknowledges it (its reception counter reaches the record's number), so a
// broken channel can be resumed: the receiver reports what it applied, Rewind() moves the send
// position back to the first record after that, and the receiver drops any duplicate by number.
//
// The transport pulls: FillPayload() hands out the next unsent records as one LaneItems payload,
// so records that pile up while the socket is busy leave in one frame. Append() reports whether
// the lane needs a wake-up, which happens once per idle-to-busy transition rather than once per
// record.
//
// Memory is bounded by `bytes_max`: an outbox over it (a peer that stopped acknowledging) is
// reported by overflowed(), and the owner expels the peer rather than growing without end.
//
// Tickets (sync writes) are released by acknowledgements only, or all at once by Retire() when
// the recipient leaves the region's group: a broken channel releases nothing (the sync contract
// in docs/design/replication.md); the records wait for the lane to resume.
//
// A lane's records belong to one stream: `stream_id` names it, so that a receiver can tell a
// lane that was re-created for the same member (numbered from 1 again) from a resumed one.
//
// Thread safety: every method is safe from any thread (one mutex per lane). Writers Append;
// the protocol thread does the rest.
#pragma once

#include <cstddef>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <optional>
#include <string>

#include "absl/base/thread_annotations.h"

#include "weft/base/mutex.h"
#include "weft/replication/messages.h"
#include "weft/replication/write_ticket.h"

namespace weft::replication {

class Outbox {
 public:
  Outbox(size_t bytes_max, uint64_t stream_id) : bytes_max_(bytes_max), stream_id_(stream_id) {}
  Outbox(const Outbox&) = delete;
  Outbox& operator=(const Outbox&) = delete;

  // Appends a record; `ticket` (may be null) waits for its acknowledgement. Calls the waker (set
  // by the lane's sender) when the lane had nothing to send before. `now_us` (monotonic, 0:
  // unknown) times the record until its acknowledgement (TakeMaxAckLatencyUs).
  void Append(RecordKind kind, std::shared_ptr<const std::string> body,
              const std::shared_ptr<WriteTicket>* ticket, int64_t now_us = 0);
  // Called with the outbox's lock held, from whichever thread appends: it must only post.
  void set_waker(std::function<void()> waker);

  // Appends the unsent records (at least one if any, then while the payload stays under
  // max_bytes) to *payload as one LaneItems payload. Returns false if nothing was unsent.
  bool FillPayload(std::string* payload, size_t max_bytes);

  // The receiver applied every record through `through`: forget them, release their tickets.
  // `now_us` (0: unknown) samples how long they waited for it.
  void Acknowledge(uint64_t through, int64_t now_us = 0);
  // The longest enqueue-to-acknowledgement time sampled since the last call, or nullopt if no
  // timed record was acknowledged since (live traffic is what the image yields to).
  std::optional<int64_t> TakeMaxAckLatencyUs();

  // A (re)connected receiver has applied through `through`: acknowledge those and send
  // everything after again.
  void Rewind(uint64_t through);

  // The recipient left the group: release every ticket now, and take none from later appends
  // (a writer may still hold a recipient snapshot that lists it).
  void Retire();
  // This member was dropped from the group: the writes waiting here cannot be confirmed.
  // Abandons every ticket (their clients learn the outcome is unknown) and takes no more.
  void AbandonTickets();
  // Releases every ticket but keeps the records: only the simulator's release_tickets_on_close
  // break calls it (the sync contract forbids it).
  void ReleaseTicketsKeepRecords();
  // Whether unsent records wait (the sender has something to pull).
  bool has_unsent() const;

  uint64_t stream_id() const { return stream_id_; }
  uint64_t sent() const;
  uint64_t acked() const;
  size_t bytes() const;
  bool overflowed() const;

 private:
  struct Item {
    uint64_t seq;
    RecordKind kind;
    std::shared_ptr<const std::string> body;
    std::shared_ptr<WriteTicket> ticket;
    int64_t enqueued_us = 0;
  };

  void DropAcknowledged(uint64_t through, int64_t now_us) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mutex_);

  const size_t bytes_max_;
  const uint64_t stream_id_;
  mutable Mutex mutex_;
  std::function<void()> waker_ ABSL_GUARDED_BY(mutex_);
  std::deque<Item> items_ ABSL_GUARDED_BY(mutex_);   // unacknowledged, in seq order
  size_t unsent_index_ ABSL_GUARDED_BY(mutex_) = 0;  // first item not handed to the transport
  uint64_t sent_ ABSL_GUARDED_BY(mutex_) = 0;
  uint64_t acked_ ABSL_GUARDED_BY(mutex_) = 0;
  size_t bytes_ ABSL_GUARDED_BY(mutex_) = 0;
  bool wake_pending_ ABSL_GUARDED_BY(mutex_) = false;
  std::optional<int64_t> max_ack_latency_us_ ABSL_GUARDED_BY(mutex_);
  bool retired_ ABSL_GUARDED_BY(mutex_) = false;
  bool abandoned_ ABSL_GUARDED_BY(mutex_) = false;  // later tickets complete unconfirmed
};

}  // namespace weft::replication
