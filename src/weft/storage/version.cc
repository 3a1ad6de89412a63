#include "weft/storage/version.h"

#include <algorithm>

namespace weft::storage {

Version VersionSource::Next() {
  // Read the clock outside the lock: a slow clock read must not serialise every writer.
  const uint64_t physical = StampAtUnixMs(std::max<int64_t>(clock_.NowUnixMs(), 0));
  MutexLock lock(&mu_);
  last_stamp_ = std::max(physical, last_stamp_ + 1);
  ++last_seq_;
  return Version{last_stamp_, origin_, last_seq_};
}

void VersionSource::Observe(uint64_t stamp) {
  MutexLock lock(&mu_);
  last_stamp_ = std::max(last_stamp_, stamp);
}

uint64_t VersionSource::last_stamp() const {
  MutexLock lock(&mu_);
  return last_stamp_;
}

}  // namespace weft::storage
