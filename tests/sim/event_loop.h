// EventLoop: the simulator's only source of time and order. One queue of events ordered by
// (simulated time, sequence number): two events at the same time run in the order they were
// scheduled, so a run is a pure function of its seed. Every executed event is folded into the
// trace hash (its time, its owner and its label); `weft-sim --seed N` prints the hash, and the
// same seed must give the same hash.
//
// An event may belong to an owner (a member incarnation): Cancel(owner) drops every event of an
// owner that crashed, as a killed process takes its timers and threads with it.
//
// SimClock: a member's view of time, with a fixed skew of its wall clock and a drift of both
// clocks, as real machines' clocks differ.
//
// Thread safety: none; the simulator runs on one thread.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <queue>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "weft/base/clock.h"

namespace weft::sim {

class EventLoop {
 public:
  // Schedules `fn` at now + delay_us (never in the past).
  void At(int64_t delay_us, uint64_t owner, std::string_view label, std::function<void()> fn);
  // Drops every pending and future event of `owner`.
  void Cancel(uint64_t owner);
  // Holds every event of `owner` due before `until_us` until then (a stopped process), in
  // their order.
  void Stall(uint64_t owner, int64_t until_us);
  int64_t StalledUntil(uint64_t owner) const;
  // Runs the next event; false if none is left or the next is past `until_us`.
  bool Step(int64_t until_us);
  // Runs events until `until_us` (or until none is left).
  void RunUntil(int64_t until_us);

  int64_t now_us() const { return now_us_; }
  uint64_t trace_hash() const { return trace_hash_; }
  uint64_t events_run() const { return events_run_; }
  // Folds a value into the trace hash (checkpoints: digests, counters).
  void Fold(uint64_t value);
  // Prints every event as it runs (--trace).
  void set_verbose(bool verbose) { verbose_ = verbose; }
  bool verbose() const { return verbose_; }
  size_t pending() const { return queue_.size(); }

 private:
  struct Event {
    int64_t time_us;
    uint64_t seq;
    uint64_t owner;
    std::string_view label;  // static strings only
    std::function<void()> fn;
  };
  struct Later {
    bool operator()(const Event& a, const Event& b) const {
      return a.time_us != b.time_us ? a.time_us > b.time_us : a.seq > b.seq;
    }
  };

  std::priority_queue<Event, std::vector<Event>, Later> queue_;
  std::set<uint64_t> cancelled_;
  std::map<uint64_t, int64_t> stalled_until_us_;
  int64_t now_us_ = 0;
  uint64_t next_seq_ = 0;
  uint64_t trace_hash_ = 0x9e3779b97f4a7c15ULL;
  uint64_t events_run_ = 0;
  bool verbose_ = false;
};

// A member's clocks: monotonic = t·(1+drift); wall = epoch + t·(1+drift) + skew.
class SimClock final : public Clock {
 public:
  SimClock(const EventLoop& loop, int64_t skew_ms, double drift)
      : loop_(loop), skew_ms_(skew_ms), drift_(drift) {}
  int64_t NowMonotonicUs() const override;
  int64_t NowUnixMs() const override;

 private:
  static constexpr int64_t kEpochUnixMs = 1'800'000'000'000;
  const EventLoop& loop_;
  const int64_t skew_ms_;
  const double drift_;
};

}  // namespace weft::sim
