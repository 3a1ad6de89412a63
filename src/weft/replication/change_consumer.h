// The seam through which continuous queries, change streams and listeners see changes with
// their old values (DESIGN.md §5 "Meanwhile on N", §7).
//
// Every change that a member applies and that wins by version is delivered once, as it is
// applied: local writes, live changes from peers, and — on a joining member — every live change
// the moment it arrives, before the image is complete. A change that loses to a newer version,
// or a duplicate, gives no event; image entries never give events.
//
// `old_value` is the key's previous live value (nullopt if absent or deleted). On a joining
// member it is the post-image store's previous value for the key, or else the pre-image its
// sender shipped; so per key, each event's old value is the previous event's new value.
//
// Thread safety: OnChange is called concurrently from several threads (one per shard lock
// holder), with the key's shard lock held, so it must be quick and must not call into the
// store. Per key, calls are serialised and in version order.
#pragma once

#include <optional>
#include <string_view>

#include "weft/storage/entry.h"
#include "weft/storage/version.h"

namespace weft::replication {

struct ChangeEvent {
  std::string_view region;
  std::string_view key;
  std::optional<std::string_view> old_value;  // nullopt: absent
  std::optional<std::string_view> new_value;  // nullopt: deleted
  storage::Version version;                   // version.origin is the member that made it
};

class ChangeConsumer {
 public:
  virtual ~ChangeConsumer() = default;
  virtual void OnChange(const ChangeEvent& event) = 0;
};

// Delivers the event of a change from `old_value` to `post` (a tombstone: deleted) to `consumer`
// (may be null). Deleting an absent key changes nothing anyone can observe: no event.
inline void EmitChange(ChangeConsumer* consumer, std::string_view region, std::string_view key,
                       std::optional<std::string_view> old_value, const storage::EntryView& post) {
  if (consumer == nullptr || (!old_value && post.tombstone)) {
    return;
  }
  ChangeEvent event;
  event.region = region;
  event.key = key;
  event.old_value = old_value;
  if (!post.tombstone) {
    event.new_value = post.value;
  }
  event.version = post.version;
  consumer->OnChange(event);
}

// The live value an entry holds for an event's old value: nullopt for none or a tombstone.
inline std::optional<std::string_view> LiveValue(const std::optional<storage::EntryView>& entry) {
  if (!entry || entry->tombstone) {
    return std::nullopt;
  }
  return entry->value;
}

}  // namespace weft::replication
