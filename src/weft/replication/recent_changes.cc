#include "weft/replication/recent_changes.h"

#include "absl/container/flat_hash_set.h"

namespace weft::replication {

void RecentChanges::Record(std::string_view key, uint64_t origin, int64_t now_ms) {
  MutexLock lock(&mutex_);
  items_.push_back(Item{std::string(key), origin, now_ms});
  Trim(now_ms);
}

std::vector<std::string> RecentChanges::KeysFrom(uint64_t origin, int64_t now_ms) {
  MutexLock lock(&mutex_);
  Trim(now_ms);
  std::vector<std::string> keys;
  absl::flat_hash_set<std::string> seen;
  for (const Item& item : items_) {
    if (item.origin == origin && seen.insert(item.key).second) {
      keys.push_back(item.key);
    }
  }
  return keys;
}

void RecentChanges::Trim(int64_t now_ms) {
  while (!items_.empty() &&
         (items_.size() > capacity_ || now_ms - items_.front().at_ms > window_ms_)) {
    items_.pop_front();
  }
}

}  // namespace weft::replication
