// Clock: the only source of time for weft's protocol and storage layers.
//
// Layers below server/ never read the wall clock themselves; they are handed a Clock, so the
// same code runs against SystemClock in production and ManualClock in tests and simulation.
//
// Thread safety: SystemClock is safe from any thread. ManualClock is safe from any thread
// (its time is an atomic), but tests usually drive it from one.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>

namespace weft {

class Clock {
 public:
  virtual ~Clock() = default;

  // Milliseconds since the Unix epoch (wall time: comparable across processes, may jump).
  virtual int64_t NowUnixMs() const = 0;

  // Microseconds from an arbitrary origin that never goes backwards; for durations only.
  virtual int64_t NowMonotonicUs() const = 0;
};

class SystemClock final : public Clock {
 public:
  int64_t NowUnixMs() const override {
    return std::chrono::duration_cast<std::chrono::milliseconds>(
               std::chrono::system_clock::now().time_since_epoch())
        .count();
  }
  int64_t NowMonotonicUs() const override {
    return std::chrono::duration_cast<std::chrono::microseconds>(
               std::chrono::steady_clock::now().time_since_epoch())
        .count();
  }
};

// A clock that moves only when told to. Starts at a fixed, realistic epoch time so that
// expiry arithmetic in tests looks like production.
class ManualClock final : public Clock {
 public:
  static constexpr int64_t kDefaultStartUnixMs = 1'800'000'000'000;

  explicit ManualClock(int64_t start_unix_ms = kDefaultStartUnixMs)
      : now_us_(start_unix_ms * 1000) {}

  int64_t NowUnixMs() const override { return now_us_.load(std::memory_order_relaxed) / 1000; }
  int64_t NowMonotonicUs() const override { return now_us_.load(std::memory_order_relaxed); }

  void AdvanceMs(int64_t ms) { now_us_.fetch_add(ms * 1000, std::memory_order_relaxed); }
  void AdvanceUs(int64_t us) { now_us_.fetch_add(us, std::memory_order_relaxed); }

 private:
  std::atomic<int64_t> now_us_;
};

}  // namespace weft
