// FakeHost and FakeChannel: a Host and a Channel for the unit tests of the replication roles
// (DESIGN.md §3: the protocol is sans-I/O, so a role's test is the role plus this fake).
//
// Nothing here runs by itself: the test decides when time passes and when each kind of work
// happens, so every test is deterministic.
//   - After/Post queue callbacks with their due times on a ManualClock; RunDue() runs those due
//     now, RunAll() runs everything, moving the clock forward to each callback's due time. Both
//     run in (due time, submission order) order, like the simulator's event queue.
//   - Open records the request; the test plays the host's part by calling OnOpened or
//     OnOpenFailed on the recorded session itself.
//   - Offload queues (work, done) pairs; RunOffloaded() runs them in submission order.
//   - Registry records requests; AnswerRegistry() answers the oldest one.
//   - FakeChannel records what a session sent, how often it woke the channel and whether it
//     closed it.
//
// Thread safety: Post may be called from any thread (as Host requires); everything else, and
// running the queued callbacks, belongs to the test's thread. Callbacks run without the queue's
// lock held, so they may queue more.
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/base/thread_annotations.h"

#include "weft/base/check.h"
#include "weft/base/clock.h"
#include "weft/base/mutex.h"
#include "weft/replication/host.h"

namespace weft::replication::testing {

// A Channel that remembers everything a session did to it.
class FakeChannel final : public Channel {
 public:
  struct Frame {
    uint8_t type = 0;
    std::string payload;
  };

  void Send(uint8_t type, std::string_view payload) override {
    frames_.push_back(Frame{type, std::string(payload)});
  }
  void Wake() override { ++wakes_; }
  void Close() override {
    closed_ = true;
    ++closes_;
  }

  // Every frame sent, oldest first.
  const std::vector<Frame>& frames() const { return frames_; }
  // The frames of one type, oldest first.
  std::vector<Frame> FramesOfType(uint8_t type) const {
    std::vector<Frame> matching;
    for (const Frame& frame : frames_) {
      if (frame.type == type) {
        matching.push_back(frame);
      }
    }
    return matching;
  }
  // REQUIRES: a frame was sent.
  const Frame& last_frame() const {
    WEFT_CHECK(!frames_.empty());
    return frames_.back();
  }
  void ClearFrames() { frames_.clear(); }
  int wakes() const { return wakes_; }
  bool closed() const { return closed_; }
  int closes() const { return closes_; }

 private:
  std::vector<Frame> frames_;
  int wakes_ = 0;
  bool closed_ = false;
  int closes_ = 0;
};

class FakeHost final : public Host {
 public:
  // One Open call, for the test to answer.
  struct OpenRequest {
    membership::MemberInfo peer;
    ChannelKind kind = ChannelKind::kLane;
    uint16_t index = 0;
    std::weak_ptr<ChannelSession> session;
  };
  // One Registry call, for the test to answer.
  struct RegistryCall {
    RegistryRequest request;
    std::function<void(RegistryReply)> done;
  };

  // A bound on the callbacks one RunDue/RunAll runs: a protocol that keeps rescheduling itself
  // with no delay fails the test instead of hanging it.
  static constexpr size_t kCallbacksPerRunMax = 100'000;

  explicit FakeHost(ManualClock& clock) : clock_(clock) {}
  FakeHost(const FakeHost&) = delete;
  FakeHost& operator=(const FakeHost&) = delete;

  // --- Host ---
  void After(int64_t delay_us, std::function<void()> fn) override {
    Queue(clock_.NowMonotonicUs() + std::max<int64_t>(delay_us, 0), std::move(fn));
  }
  void Post(std::function<void()> fn) override { Queue(clock_.NowMonotonicUs(), std::move(fn)); }
  void Open(const membership::MemberInfo& peer, ChannelKind kind, uint16_t index,
            std::weak_ptr<ChannelSession> session) override {
    opens_.push_back(OpenRequest{peer, kind, index, std::move(session)});
  }
  void Offload(std::function<void()> work, std::function<void()> done) override {
    offloaded_.emplace_back(std::move(work), std::move(done));
  }
  void Registry(RegistryRequest request, std::function<void(RegistryReply)> done) override {
    registry_calls_.push_back(RegistryCall{std::move(request), std::move(done)});
  }

  // --- callbacks ---
  // Runs every queued callback due now (also those that callbacks queue due now), in (due time,
  // submission order) order. Returns how many ran.
  size_t RunDue() { return Run(/*advance_clock=*/false); }
  // Runs every queued callback, including those queued meanwhile, advancing the clock to each
  // one's due time when that is later than now. Returns how many ran.
  size_t RunAll() { return Run(/*advance_clock=*/true); }
  // Callbacks queued and not yet run.
  size_t pending_callbacks() const {
    MutexLock lock(&mutex_);
    return timers_.size();
  }
  // The earliest due time (monotonic microseconds) among the queued callbacks.
  std::optional<int64_t> NextDueUs() const {
    MutexLock lock(&mutex_);
    if (timers_.empty()) {
      return std::nullopt;
    }
    return timers_[Earliest()].due_us;
  }

  // --- channels ---
  const std::vector<OpenRequest>& opens() const { return opens_; }

  // --- offloaded work ---
  // Runs every queued (work, done) pair in submission order, each work then its done, including
  // pairs queued meanwhile. Returns how many ran.
  size_t RunOffloaded() {
    size_t ran = 0;
    while (!offloaded_.empty()) {
      auto [work, done] = std::move(offloaded_.front());
      offloaded_.pop_front();
      work();
      done();
      ++ran;
    }
    return ran;
  }
  size_t pending_offloads() const { return offloaded_.size(); }

  // --- registry ---
  // Requests not answered yet, oldest first.
  const std::deque<RegistryCall>& registry_calls() const { return registry_calls_; }
  // Answers the oldest unanswered request with `reply`. REQUIRES: one waits.
  void AnswerRegistry(RegistryReply reply) {
    WEFT_CHECK(!registry_calls_.empty());
    RegistryCall call = std::move(registry_calls_.front());
    registry_calls_.pop_front();
    call.done(std::move(reply));
  }

 private:
  struct Timer {
    int64_t due_us = 0;
    uint64_t order = 0;
    std::function<void()> fn;
  };

  void Queue(int64_t due_us, std::function<void()> fn) {
    MutexLock lock(&mutex_);
    timers_.push_back(Timer{due_us, next_order_++, std::move(fn)});
  }

  // The index of the timer to run first. REQUIRES: mutex_ held, timers_ not empty.
  size_t Earliest() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mutex_) {
    size_t earliest = 0;
    for (size_t i = 1; i < timers_.size(); ++i) {
      const Timer& timer = timers_[i];
      const Timer& best = timers_[earliest];
      if (timer.due_us < best.due_us || (timer.due_us == best.due_us && timer.order < best.order)) {
        earliest = i;
      }
    }
    return earliest;
  }

  size_t Run(bool advance_clock) {
    size_t ran = 0;
    while (true) {
      std::function<void()> fn;
      {
        MutexLock lock(&mutex_);
        if (timers_.empty()) {
          break;
        }
        const size_t index = Earliest();
        const int64_t now_us = clock_.NowMonotonicUs();
        if (timers_[index].due_us > now_us) {
          if (!advance_clock) {
            break;
          }
          clock_.AdvanceUs(timers_[index].due_us - now_us);
        }
        fn = std::move(timers_[index].fn);
        timers_.erase(timers_.begin() + static_cast<std::ptrdiff_t>(index));
      }
      WEFT_CHECK(++ran <= kCallbacksPerRunMax);
      fn();
    }
    return ran;
  }

  ManualClock& clock_;
  mutable Mutex mutex_;
  std::vector<Timer> timers_ ABSL_GUARDED_BY(mutex_);
  uint64_t next_order_ ABSL_GUARDED_BY(mutex_) = 0;
  std::vector<OpenRequest> opens_;
  std::deque<std::pair<std::function<void()>, std::function<void()>>> offloaded_;
  std::deque<RegistryCall> registry_calls_;
};

}  // namespace weft::replication::testing
