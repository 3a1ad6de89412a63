#include "weft/replication/applier.h"

#include <vector>

#include "weft/base/check.h"

namespace weft::replication {

Applier::Applier(std::string region, storage::Store& base, storage::VersionSource& versions,
                 ChangeConsumer* consumer, RecentChanges& recent, const Clock& clock,
                 size_t index_shard_count)
    : region_(std::move(region)),
      base_(base),
      versions_(versions),
      consumer_(consumer),
      recent_(recent),
      clock_(clock),
      index_shard_count_(index_shard_count) {}

void Applier::BeginJoin() {
  WEFT_CHECK(mode_ == Mode::kActive);
  index_ = std::make_unique<EventIndex>(index_shard_count_, clock_);
  mode_ = Mode::kJoining;
}

void Applier::CancelJoin() {
  WEFT_CHECK(mode_ == Mode::kJoining);
  index_.reset();
  mode_ = Mode::kActive;
}

void Applier::BeginMerge() {
  WEFT_CHECK(mode_ == Mode::kJoining);
  mode_ = Mode::kMerging;
}

std::unique_ptr<EventIndex> Applier::EndJoin() {
  WEFT_CHECK(mode_ == Mode::kMerging);
  return ReleaseIndex();
}

std::unique_ptr<EventIndex> Applier::ReleaseIndex() {
  mode_ = Mode::kActive;
  if (index_ != nullptr) {
    index_->released.store(true, std::memory_order_release);
  }
  return std::move(index_);
}

uint64_t Applier::index_entries() const {
  return index_ == nullptr ? 0 : index_->store.KeyCount() + index_->store.TombstoneCount();
}

void Applier::Apply(const ChangeRecord& change) {
  versions_.Observe(change.post.version.stamp);
  switch (mode_) {
    case Mode::kActive:
      ApplyActive(change);
      return;
    case Mode::kJoining:
      if (change.has_pre) {
        ApplyIndexed(change, nullptr, /*write_base=*/false);
      } else {
        // Lock order: base, then index.
        base_.WithKey(change.post.key, [&](storage::LockedKeys& base) {
          ApplyIndexed(change, &base, /*write_base=*/false);
        });
      }
      return;
    case Mode::kMerging:
      base_.WithKey(change.post.key, [&](storage::LockedKeys& base) {
        ApplyIndexed(change, &base, /*write_base=*/true);
      });
      return;
  }
}

void Applier::ApplyActive(const ChangeRecord& change) {
  const storage::EntryView& post = change.post;
  base_.WithKey(post.key, [&](storage::LockedKeys& keys) {
    const std::optional<storage::EntryView> held = keys.FindAny(post.key);
    if (held && !storage::Supersedes(post, *held)) {
      return;  // a loser or a duplicate: no event
    }
    if (held && storage::IsExpiryOf(post, *held)) {
      keys.ApplyIfNewer(post);  // expired on a clock ahead of ours: silent, as expiry is here
      return;
    }
    const std::optional<std::string_view> old_value = LiveValue(held);
    EmitChange(consumer_, region_, post.key, old_value, post);
    recent_.Record(post.key, post.version, /*pre_known=*/true, old_value, clock_.NowUnixMs());
    keys.ApplyIfNewer(post);
  });
}

void Applier::ApplyIndexed(const ChangeRecord& change, storage::LockedKeys* base, bool write_base) {
  const storage::EntryView& post = change.post;
  index_->store.WithKey(post.key, [&](storage::LockedKeys& index) {
    const std::optional<storage::EntryView> last = index.FindAny(post.key);
    if (last && !storage::Supersedes(post, *last)) {
      return;  // the key's last event is as new: a duplicate or a loser
    }
    // The expiry of the write the key holds (noticed on a clock ahead of ours) makes no event,
    // as expiry makes none here; the index and the base store both take it, so that they agree.
    bool expiry = false;
    std::optional<std::string_view> old_value;
    if (last) {
      expiry = storage::IsExpiryOf(post, *last);
      old_value = LiveValue(last);
    } else if (change.has_pre) {
      if (change.pre_present) {
        old_value = change.pre_value;
      }
    } else {
      // Senders ship pre-images to a joiner until it releases its join; a change without one
      // is a departure repair of a change whose pre-image nobody knew. The base store is the
      // best account left of what the key held.
      ++without_pre_image_;
      WEFT_CHECK(base != nullptr);
      const std::optional<storage::EntryView> held = base->FindAny(post.key);
      expiry = held && storage::IsExpiryOf(post, *held);
      old_value = LiveValue(held);
    }
    if (!expiry) {
      EmitChange(consumer_, region_, post.key, old_value, post);
      recent_.Record(post.key, post.version, /*pre_known=*/true, old_value, clock_.NowUnixMs());
      ++postimage_changes_;
    }
    index.ApplyIfNewer(post);
  });
  if (write_base) {
    base->ApplyIfNewer(post);
  }
}

uint64_t Applier::Reconcile(uint64_t cursor, size_t count) {
  WEFT_CHECK(mode_ == Mode::kMerging);
  if (break_stale_reconcile) {
    return ReconcileFromCopies(cursor, count);
  }
  // Keys only: each is reconciled from what both stores hold under their locks, never from a
  // copy that a change applied in between could have made stale.
  std::vector<std::string> keys;
  cursor =
      index_->store.Scan(cursor, count, /*include_tombstones=*/true,
                         [&](const storage::EntryView& entry) { keys.emplace_back(entry.key); });
  for (const std::string& key : keys) {
    ReconcileKey(key);
  }
  return cursor;
}

uint64_t Applier::ReconcileFromCopies(uint64_t cursor, size_t count) {
  // What the merge did before issue 8: copy a batch, merge the copies later, while live changes
  // go on in between.
  for (const CopiedEntry& copy : copied_) {
    const storage::EntryView view{copy.key, copy.value, copy.version, copy.expire_at_unix_ms,
                                  copy.tombstone};
    base_.WithKey(copy.key, [&](storage::LockedKeys& base) {
      const std::optional<storage::EntryView> held = base.FindAny(copy.key);
      if (!held || view.version.NewerThan(held->version)) {
        base.ApplyIfNewer(view);
      } else if (!(held->version == view.version)) {
        EmitChange(consumer_, region_, copy.key,
                   copy.tombstone ? std::nullopt : std::optional<std::string_view>(copy.value),
                   *held);
        index_->store.WithKey(copy.key,
                              [&](storage::LockedKeys& index) { index.ApplyIfNewer(*held); });
        ++corrections_;
      }
    });
  }
  copied_.clear();
  if (copied_last_) {
    copied_last_ = false;
    return 0;
  }
  cursor = index_->store.Scan(
      cursor, count, /*include_tombstones=*/true, [&](const storage::EntryView& entry) {
        copied_.push_back(CopiedEntry{std::string(entry.key), std::string(entry.value),
                                      entry.version, entry.expire_at_unix_ms, entry.tombstone});
      });
  copied_last_ = cursor == 0;
  return copied_last_ ? 1 : cursor;  // one more step merges the last copies
}

void Applier::ReconcileKey(std::string_view key) {
  base_.WithKey(key, [&](storage::LockedKeys& base) {
    index_->store.WithKey(key, [&](storage::LockedKeys& index) {
      const std::optional<storage::EntryView> last = index.FindAny(key);
      if (!last) {
        return;
      }
      const std::optional<storage::EntryView> held = base.FindAny(key);
      if (!held || storage::Supersedes(*last, *held)) {
        if (!break_image_overwrites_postimage) {
          base.ApplyIfNewer(*last);
        }
        return;
      }
      if (held->version == last->version) {
        if (storage::IsExpiryOf(*held, *last)) {
          index.ApplyIfNewer(*held);  // the image brought the write's expiry: taken silently
        }
        return;  // otherwise the same write
      }
      // The base store holds a newer change than the key's last event: that change becomes
      // the key's next event, as on a member that received it after the last one.
      EmitChange(consumer_, region_, key, LiveValue(last), *held);
      index.ApplyIfNewer(*held);
      ++corrections_;
    });
  });
}

}  // namespace weft::replication
