#include "weft/replication/write_path.h"

#include <utility>

#include "weft/replication/messages.h"

namespace weft::replication {

EventIndex::EventIndex(size_t shard_count, const Clock& clock)
    : store(storage::StoreOptions{.shard_count = shard_count}, clock) {
  // The index must keep every deletion it saw: a tombstone there is the key's last event.
  store.PauseTombstonePurge();
}

std::string_view ReplicationModeName(ReplicationMode mode) {
  return mode == ReplicationMode::kSync ? "sync" : "async";
}

WritePath::WritePath(std::string region, ReplicationMode mode, uint32_t lanes,
                     const storage::Store& store, ChangeConsumer* consumer, const Clock& clock,
                     std::function<void(uint64_t)> on_drained)
    : region_(std::move(region)),
      mode_(mode),
      lanes_(lanes),
      store_(store),
      consumer_(consumer),
      clock_(clock),
      on_drained_(std::move(on_drained)),
      current_(std::make_shared<RecipientSet>()) {}

uint32_t WritePath::LaneOf(std::string_view key) const {
  return store_.ShardIndexOf(key) % lanes_;
}

std::shared_ptr<const RecipientSet> WritePath::Begin() {
  MutexLock lock(&mutex_);
  ++in_flight_[current_->epoch];
  return current_;
}

void WritePath::End(const RecipientSet& set) {
  uint64_t drained = 0;
  {
    MutexLock lock(&mutex_);
    auto it = in_flight_.find(set.epoch);
    // The current epoch keeps its (possibly zero) count: no map node churn per write.
    if (--it->second != 0 || set.epoch == current_->epoch) {
      return;
    }
    in_flight_.erase(it);
    if (in_flight_.empty() || in_flight_.begin()->first > set.epoch) {
      // The oldest epoch still in flight (or the current one) is now the drained boundary.
      drained = in_flight_.empty() ? current_->epoch : in_flight_.begin()->first;
    }
  }
  if (drained != 0) {
    on_drained_(drained);
  }
}

void WritePath::Enqueue(const RecipientSet& set, const storage::EntryView* before,
                        const storage::EntryView& after,
                        const std::shared_ptr<WriteTicket>* ticket) {
  std::optional<std::string_view> old_value =
      before != nullptr ? std::optional<std::string_view>(before->value) : std::nullopt;
  if (set.event_index != nullptr && !set.event_index->released.load(std::memory_order_acquire)) {
    // A joiner's flush phase: the index holds the key's last event if it has the key (the base
    // store may hold a newer image entry whose event is still to come).
    set.event_index->store.WithKey(after.key, [&](storage::LockedKeys& index) {
      if (const std::optional<storage::EntryView> last = index.FindAny(after.key)) {
        old_value = LiveValue(last);
      }
      EmitChange(consumer_, region_, after.key, old_value, after);
      index.ApplyIfNewer(after);
    });
  } else {
    EmitChange(consumer_, region_, after.key, old_value, after);
  }
  if (set.unconfirmable && ticket != nullptr && *ticket != nullptr &&
      mode_ == ReplicationMode::kSync) {
    (*ticket)->SetAbandoned();
  }
  if (set.members.empty()) {
    return;
  }
  const uint32_t lane = LaneOf(after.key);
  // Acknowledgements are timed only while an image paces itself by them: no clock read on the
  // write path otherwise.
  const int64_t now_us = timing_acks_.load(std::memory_order_relaxed) ? clock_.NowMonotonicUs() : 0;
  const std::shared_ptr<WriteTicket>* waiting = mode_ == ReplicationMode::kSync ? ticket : nullptr;
  // One encoding per flavour, shared by every recipient's outbox.
  std::shared_ptr<std::string> plain;
  std::shared_ptr<std::string> with_pre;
  for (const Recipient& recipient : set.members) {
    std::shared_ptr<std::string>& body = recipient.wants_pre_image ? with_pre : plain;
    if (body == nullptr) {
      body = std::make_shared<std::string>();
      EncodeChangeBody(body.get(), after, before, recipient.wants_pre_image);
    }
    const bool skip_ticket = break_joiner_tickets_ && recipient.wants_pre_image;
    recipient.outboxes->lanes[lane]->Append(RecordKind::kChange, body,
                                            skip_ticket ? nullptr : waiting, now_us);
  }
}

void WritePath::Resend(const RecipientSet& set, const storage::EntryView& entry, bool pre_known,
                       std::optional<std::string_view> pre_value) {
  const uint32_t lane = LaneOf(entry.key);
  const storage::EntryView pre{entry.key, pre_value.value_or(std::string_view()), {}, 0, false};
  std::shared_ptr<std::string> plain;
  std::shared_ptr<std::string> with_pre;
  for (const Recipient& recipient : set.members) {
    const bool ship_pre = recipient.wants_pre_image && pre_known;
    std::shared_ptr<std::string>& body = ship_pre ? with_pre : plain;
    if (body == nullptr) {
      body = std::make_shared<std::string>();
      EncodeChangeBody(body.get(), entry, pre_value ? &pre : nullptr, ship_pre);
    }
    recipient.outboxes->lanes[lane]->Append(RecordKind::kChange, body, nullptr);
  }
}

void WritePath::OnLocalChange(const storage::EntryView* before, const storage::EntryView& after,
                              const storage::ChangeContext* context) {
  const auto* write = static_cast<const WriteContext*>(context);
  const std::shared_ptr<WriteTicket>* ticket =
      write != nullptr && write->ticket != nullptr ? &write->ticket : nullptr;
  if (write != nullptr && write->snapshot != nullptr) {
    Enqueue(*write->snapshot, before, after, ticket);
    return;
  }
  const std::shared_ptr<const RecipientSet> set = Begin();
  Enqueue(*set, before, after, ticket);
  End(*set);
}

uint64_t WritePath::Replace(std::vector<Recipient> members, EventIndex* event_index,
                            bool unconfirmable) {
  MutexLock lock(&mutex_);
  auto next = std::make_shared<RecipientSet>();
  next->epoch = current_->epoch + 1;
  next->members = std::move(members);
  next->event_index = event_index;
  next->unconfirmable = unconfirmable;
  if (auto it = in_flight_.find(current_->epoch); it != in_flight_.end() && it->second == 0) {
    in_flight_.erase(it);
  }
  current_ = std::move(next);
  return current_->epoch;
}

bool WritePath::Drained(uint64_t epoch) const {
  MutexLock lock(&mutex_);
  for (const auto& [begun, writes] : in_flight_) {
    if (begun >= epoch) {
      break;
    }
    if (writes > 0) {
      return false;
    }
  }
  return true;
}

void WritePath::RetireIndex(std::unique_ptr<EventIndex> index, uint64_t epoch) {
  if (index == nullptr) {
    return;
  }
  WEFT_CHECK(index->released.load(std::memory_order_relaxed));
  retired_indexes_.emplace_back(epoch, std::move(index));
  FreeRetiredIndexes();
}

void WritePath::FreeRetiredIndexes() {
  std::erase_if(retired_indexes_, [this](const auto& retired) { return Drained(retired.first); });
}

std::shared_ptr<const RecipientSet> WritePath::Current() const {
  MutexLock lock(&mutex_);
  return current_;
}

}  // namespace weft::replication
