#include "weft/server/event_log.h"

namespace weft::server {
namespace {

std::optional<std::string> Own(std::optional<std::string_view> value) {
  return value ? std::optional<std::string>(*value) : std::nullopt;
}

}  // namespace

void EventLog::OnChange(const replication::ChangeEvent& event) {
  MutexLock lock(&mutex_);
  if (recorded_ >= capacity_) {
    ++dropped_;
    return;
  }
  ++recorded_;
  events_[std::string(event.key)].push_back(
      {Own(event.old_value), Own(event.new_value), event.version});
}

std::vector<RecordedEvent> EventLog::EventsOf(std::string_view key) const {
  MutexLock lock(&mutex_);
  const auto it = events_.find(std::string(key));
  return it == events_.end() ? std::vector<RecordedEvent>{} : it->second;
}

uint64_t EventLog::recorded() const {
  MutexLock lock(&mutex_);
  return recorded_;
}

uint64_t EventLog::dropped() const {
  MutexLock lock(&mutex_);
  return dropped_;
}

}  // namespace weft::server
