#include "weft/replication/recipients.h"

#include <chrono>
#include <iterator>

#include "weft/base/logging.h"

namespace weft::replication {

std::shared_ptr<const RecipientSet> Recipients::Begin() {
  MutexLock lock(&mutex_);
  ++in_flight_[current_->epoch];
  return current_;
}

void Recipients::End(const RecipientSet& snapshot) {
  MutexLock lock(&mutex_);
  auto it = in_flight_.find(snapshot.epoch);
  // The current epoch keeps its (possibly zero) count: no map node churn per write.
  if (--it->second == 0 && snapshot.epoch != current_->epoch) {
    in_flight_.erase(it);
    drained_.SignalAll();
  }
}

void Recipients::Replace(std::vector<Recipient> members) {
  MutexLock lock(&mutex_);
  auto next = std::make_shared<RecipientSet>();
  next->epoch = current_->epoch + 1;
  next->members = std::move(members);
  current_ = std::move(next);
  const uint64_t epoch = current_->epoch;
  for (auto it = in_flight_.begin(); it != in_flight_.end();) {
    it = it->second == 0 ? in_flight_.erase(it) : std::next(it);
  }
  int waits = 0;
  while (!in_flight_.empty() && in_flight_.begin()->first < epoch) {
    if (!drained_.WaitFor(&mutex_, std::chrono::seconds(1))) {
      ++waits;
      WEFT_LOG_WARN("recipient change to epoch {} waits {} s for {} write(s) of epoch {}", epoch,
                    waits, in_flight_.begin()->second, in_flight_.begin()->first);
    }
  }
}

std::shared_ptr<const RecipientSet> Recipients::Current() const {
  MutexLock lock(&mutex_);
  return current_;
}

}  // namespace weft::replication
