// EventLog: the test consumer of the pre-image seam (replication/change_consumer.h). It records
// every change event a member delivers, per key and in delivery order, so that a test outside
// the process (DEBUG EVENTS) can check what a continuous query would have seen: one event per
// winning change, each with its old value. Only for tests: it keeps every value it is given, so
// it holds at most `capacity` events and counts the rest as dropped (a test must fail then, not
// pass on a partial record).
//
// Thread safety: OnChange is called concurrently from shard-lock holders; everything is behind
// one mutex, which is fine for a test hook and never taken by anything OnChange calls.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"

#include "weft/base/mutex.h"
#include "weft/replication/change_consumer.h"

namespace weft::server {

struct RecordedEvent {
  std::optional<std::string> old_value;
  std::optional<std::string> new_value;
  storage::Version version;
};

class EventLog : public replication::ChangeConsumer {
 public:
  explicit EventLog(size_t capacity) : capacity_(capacity) {}

  void OnChange(const replication::ChangeEvent& event) override;

  // The events of `key`, oldest first.
  std::vector<RecordedEvent> EventsOf(std::string_view key) const;
  uint64_t recorded() const;
  uint64_t dropped() const;

 private:
  const size_t capacity_;
  mutable Mutex mutex_;
  absl::flat_hash_map<std::string, std::vector<RecordedEvent>> events_ ABSL_GUARDED_BY(mutex_);
  uint64_t recorded_ ABSL_GUARDED_BY(mutex_) = 0;
  uint64_t dropped_ ABSL_GUARDED_BY(mutex_) = 0;
};

}  // namespace weft::server
