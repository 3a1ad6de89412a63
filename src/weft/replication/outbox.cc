#include "weft/replication/outbox.h"

#include <algorithm>
#include <utility>

namespace weft::replication {
namespace {

// Bookkeeping bytes per record on top of its body (deque slot, shared_ptr control block).
constexpr size_t kItemOverheadBytes = 64;

}  // namespace

void Outbox::Append(RecordKind kind, std::shared_ptr<const std::string> body,
                    const std::shared_ptr<WriteTicket>* ticket, int64_t now_us) {
  MutexLock lock(&mutex_);
  Item item{++sent_, kind, std::move(body), nullptr, now_us};
  if (ticket != nullptr && *ticket != nullptr) {
    if (abandoned_) {
      (*ticket)->SetAbandoned();  // a writer with a snapshot from before this member was dropped
    } else if (!retired_) {
      item.ticket = *ticket;
      item.ticket->AddPending();
    }
  }
  bytes_ += item.body->size() + kItemOverheadBytes;
  items_.push_back(std::move(item));
  if (!wake_pending_) {
    wake_pending_ = true;
    if (waker_) {
      waker_();
    }
  }
}

void Outbox::set_waker(std::function<void()> waker) {
  MutexLock lock(&mutex_);
  waker_ = std::move(waker);
  if (unsent_index_ < items_.size() && waker_) {
    wake_pending_ = true;
    waker_();
  }
}

bool Outbox::has_unsent() const {
  MutexLock lock(&mutex_);
  return unsent_index_ < items_.size();
}

bool Outbox::FillPayload(std::string* payload, size_t max_bytes) {
  MutexLock lock(&mutex_);
  if (unsent_index_ == items_.size()) {
    wake_pending_ = false;
    return false;
  }
  const size_t start = payload->size();
  while (unsent_index_ < items_.size() &&
         (payload->size() == start || payload->size() - start < max_bytes)) {
    const Item& item = items_[unsent_index_++];
    AppendRecord(payload, item.kind, item.seq, *item.body);
  }
  return true;
}

void Outbox::DropAcknowledged(uint64_t through, int64_t now_us) {
  if (through > sent_) {
    through = sent_;  // a confused receiver cannot acknowledge what was never sent
  }
  if (through > acked_) {
    acked_ = through;
  }
  while (!items_.empty() && items_.front().seq <= acked_) {
    Item& item = items_.front();
    if (now_us > 0 && item.enqueued_us > 0) {
      max_ack_latency_us_ = std::max(max_ack_latency_us_.value_or(0), now_us - item.enqueued_us);
    }
    bytes_ -= item.body->size() + kItemOverheadBytes;
    if (item.ticket != nullptr) {
      item.ticket->Release();
    }
    items_.pop_front();
    if (unsent_index_ > 0) {
      --unsent_index_;
    }
  }
}

void Outbox::Acknowledge(uint64_t through, int64_t now_us) {
  MutexLock lock(&mutex_);
  DropAcknowledged(through, now_us);
}

std::optional<int64_t> Outbox::TakeMaxAckLatencyUs() {
  MutexLock lock(&mutex_);
  return std::exchange(max_ack_latency_us_, std::nullopt);
}

void Outbox::Rewind(uint64_t through) {
  MutexLock lock(&mutex_);
  DropAcknowledged(through, /*now_us=*/0);
  unsent_index_ = 0;
  wake_pending_ = true;  // the caller pulls next
}

void Outbox::AbandonTickets() {
  MutexLock lock(&mutex_);
  retired_ = true;
  abandoned_ = true;
  waker_ = nullptr;
  for (Item& item : items_) {
    if (item.ticket != nullptr) {
      std::exchange(item.ticket, nullptr)->Abandon();
    }
  }
}

void Outbox::ReleaseTicketsKeepRecords() {
  MutexLock lock(&mutex_);
  for (Item& item : items_) {
    if (item.ticket != nullptr) {
      item.ticket->Release();
      item.ticket.reset();
    }
  }
}

void Outbox::Retire() {
  MutexLock lock(&mutex_);
  retired_ = true;
  waker_ = nullptr;
  for (Item& item : items_) {
    if (item.ticket != nullptr) {
      item.ticket->Release();
      item.ticket.reset();
    }
  }
}

uint64_t Outbox::sent() const {
  MutexLock lock(&mutex_);
  return sent_;
}

uint64_t Outbox::acked() const {
  MutexLock lock(&mutex_);
  return acked_;
}

size_t Outbox::bytes() const {
  MutexLock lock(&mutex_);
  return bytes_;
}

bool Outbox::overflowed() const {
  MutexLock lock(&mutex_);
  return bytes_ > bytes_max_;
}

}  // namespace weft::replication
