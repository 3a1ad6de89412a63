#include "weft/replication/recent_changes.h"

#include <algorithm>
#include <map>

namespace weft::replication {

size_t RecentChanges::Footprint(const Change& change) {
  constexpr size_t kOverheadBytes = 96;  // deque slot, string headers
  return kOverheadBytes + change.key.size() + (change.pre_value ? change.pre_value->size() : 0);
}

void RecentChanges::Record(std::string_view key, const storage::Version& version, bool pre_known,
                           std::optional<std::string_view> pre_value, int64_t now_ms) {
  Change change;
  change.key = std::string(key);
  change.version = version;
  change.pre_known = pre_known;
  if (pre_known && pre_value) {
    change.pre_value = std::string(*pre_value);
  }
  change.at_ms = now_ms;
  bytes_ += Footprint(change);
  items_.push_back(std::move(change));
  Trim(now_ms);
}

std::vector<RecentChanges::Change> RecentChanges::From(uint64_t origin, int64_t now_ms) {
  Trim(now_ms);
  // Key -> position of its latest change in items_; an ordered map keeps the output free of
  // hash order.
  std::map<std::string_view, size_t> latest;
  for (size_t i = 0; i < items_.size(); ++i) {
    if (items_[i].version.origin == origin) {
      latest[items_[i].key] = i;
    }
  }
  std::vector<size_t> positions;
  positions.reserve(latest.size());
  for (const auto& [key, position] : latest) {
    positions.push_back(position);
  }
  std::sort(positions.begin(), positions.end());
  std::vector<Change> changes;
  changes.reserve(positions.size());
  for (size_t position : positions) {
    changes.push_back(items_[position]);
  }
  return changes;
}

void RecentChanges::Trim(int64_t now_ms) {
  while (!items_.empty() && (items_.size() > capacity_ || bytes_ > bytes_max_ ||
                             now_ms - items_.front().at_ms > window_ms_)) {
    bytes_ -= Footprint(items_.front());
    items_.pop_front();
  }
}

}  // namespace weft::replication
