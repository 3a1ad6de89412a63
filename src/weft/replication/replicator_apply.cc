// RegionReplicator's receive path: inbound lanes, applying changes by region state, events.
#include "weft/base/logging.h"
#include "weft/replication/replicator.h"

namespace weft::replication {

StatusOr<uint64_t> RegionReplicator::OnChannelOpen(const ChannelOpen& open) {
  if (open.region != options_.region) {
    return absl::InvalidArgumentError(
        fmt::format("channel for region '{}' reached region '{}'", open.region, options_.region));
  }
  if (open.to != self_.member_id) {
    return absl::InvalidArgumentError(fmt::format(
        "channel addressed to member {:016x}, this is {:016x}", open.to, self_.member_id));
  }
  if (open.lanes != options_.lanes) {
    return absl::InvalidArgumentError(fmt::format("peer {:016x} uses {} lanes, this member {}",
                                                  open.from, open.lanes, options_.lanes));
  }
  return Inbound(open.from, open.lane).received.load(std::memory_order_acquire);
}

StatusOr<uint64_t> RegionReplicator::OnLaneItems(uint64_t from, uint32_t lane,
                                                 std::string_view payload) {
  InboundLane& inbound = Inbound(from, lane);
  {
    MutexLock lock(&inbound.mutex);
    uint64_t received = inbound.received.load(std::memory_order_relaxed);
    RecordReader reader(payload);
    Record record;
    while (true) {
      StatusOr<bool> next = reader.Next(&record);
      if (!next.ok()) {
        return next.status();
      }
      if (!*next) {
        break;
      }
      if (record.seq <= received) {
        continue;  // resent after a reconnect: already applied
      }
      if (record.seq != received + 1) {
        return absl::DataLossError(fmt::format("lane {} from {:016x}: record {} after {}", lane,
                                               from, record.seq, received));
      }
      if (record.kind == RecordKind::kChange) {
        ApplyChange(record.change);
      } else {
        ApplyControl(from, lane, record);
      }
      received = record.seq;
      // Applied, then counted: the reception counter never runs ahead of the store.
      inbound.received.store(received, std::memory_order_release);
    }
  }
  if (stabilizing_.load(std::memory_order_acquire)) {
    MutexLock lock(&mutex_);
    CheckStabilizations();
  }
  return inbound.received.load(std::memory_order_acquire);
}

void RegionReplicator::ApplyChange(const ChangeRecord& change) {
  versions_.Observe(change.post.version.stamp);
  recent_.Record(change.post.key, change.post.version.origin, clock_.NowUnixMs());
  switch (apply_mode_.load(std::memory_order_acquire)) {
    case ApplyMode::kBase:
      ApplyToBase(change, /*emit_event=*/true);
      break;
    case ApplyMode::kPostImage:
      ApplyToPostImage(change, /*also_base=*/false);
      break;
    case ApplyMode::kBoth:
      ApplyToPostImage(change, /*also_base=*/true);
      break;
  }
}

void RegionReplicator::ApplyToBase(const ChangeRecord& change, bool emit_event) {
  const storage::EntryView& post = change.post;
  store_.WithKey(post.key, [&](storage::LockedKeys& keys) {
    const std::optional<storage::EntryView> existing = keys.FindAny(post.key);
    if (existing && !post.version.NewerThan(existing->version)) {
      return;  // a loser or a duplicate: no event
    }
    if (emit_event && consumer_ != nullptr) {
      Emit(post.key,
           existing && !existing->tombstone ? std::optional<std::string_view>(existing->value)
                                            : std::nullopt,
           post);
    }
    keys.ApplyIfNewer(post);
  });
}

void RegionReplicator::ApplyToPostImage(const ChangeRecord& change, bool also_base) {
  const storage::EntryView& post = change.post;
  // Decides the event against the post-image store (DESIGN §5: the image never decides) and
  // records the change there. `base` is the locked base store in the flush phase, where a key
  // the post-image store does not know and that came without a pre-image takes its old value
  // from the (by then complete) base store.
  auto decide = [&](storage::LockedKeys* base) {
    postimage_->WithKey(post.key, [&](storage::LockedKeys& keys) {
      const std::optional<storage::EntryView> existing = keys.FindAny(post.key);
      if (existing && !post.version.NewerThan(existing->version)) {
        return;
      }
      std::optional<std::string_view> old_value;
      if (existing) {
        if (!existing->tombstone) {
          old_value = existing->value;
        }
      } else if (change.has_pre) {
        if (change.pre_present) {
          old_value = change.pre_value;
        }
      } else if (base != nullptr) {
        const std::optional<storage::EntryView> held = base->Find(post.key);
        if (held) {
          old_value = held->value;
        }
      }
      if (consumer_ != nullptr) {
        Emit(post.key, old_value, post);
      }
      keys.ApplyIfNewer(post);
      postimage_changes_.fetch_add(1, std::memory_order_relaxed);
    });
  };
  if (!also_base) {
    decide(nullptr);
    return;
  }
  store_.WithKey(post.key, [&](storage::LockedKeys& base) {
    decide(&base);
    base.ApplyIfNewer(post);
  });
}

void RegionReplicator::Emit(std::string_view key, std::optional<std::string_view> old_value,
                            const storage::EntryView& post) {
  if (!old_value && post.tombstone) {
    return;  // deleting an absent key changes nothing anyone can observe
  }
  ChangeEvent event;
  event.region = options_.region;
  event.key = key;
  event.old_value = old_value;
  if (!post.tombstone) {
    event.new_value = post.value;
  }
  event.version = post.version;
  consumer_->OnChange(event);
}

}  // namespace weft::replication
