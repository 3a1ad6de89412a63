// Small synchronization pieces the registries share: a condition variable for weft::Mutex and
// the gate that makes watch (and lease-lost) callbacks cancellable.
//
// Thread safety: both classes are safe from any thread.
#pragma once

#include <chrono>
#include <condition_variable>
#include <functional>
#include <thread>

#include "absl/base/thread_annotations.h"

#include "weft/base/mutex.h"

namespace weft::membership {

// A condition variable for weft::Mutex. std::condition_variable_any underneath (it locks
// through pthread, so TSan sees the edges). Callers re-check their condition in a loop.
class MutexCondition {
 public:
  // Releases *mutex while blocked; holds it again on return.
  void Wait(Mutex* mutex) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mutex) {
    Adapter adapter{mutex};
    condition_.wait(adapter);
  }

  // Returns false if `timeout` passed without a signal (the condition may still hold).
  template <typename Rep, typename Period>
  bool WaitFor(Mutex* mutex, std::chrono::duration<Rep, Period> timeout)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mutex) {
    Adapter adapter{mutex};
    return condition_.wait_for(adapter, timeout) == std::cv_status::no_timeout;
  }

  // Waits until `deadline` at most. Returns false if it passed.
  bool WaitUntil(Mutex* mutex, std::chrono::steady_clock::time_point deadline)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mutex) {
    Adapter adapter{mutex};
    return condition_.wait_until(adapter, deadline) == std::cv_status::no_timeout;
  }

  void SignalAll() { condition_.notify_all(); }

 private:
  // BasicLockable over weft::Mutex for condition_variable_any. The analysis cannot follow the
  // unlock/relock inside wait, so the adapter is exempt from it.
  struct Adapter {
    Mutex* mutex;
    void lock() ABSL_NO_THREAD_SAFETY_ANALYSIS { mutex->Lock(); }
    void unlock() ABSL_NO_THREAD_SAFETY_ANALYSIS { mutex->Unlock(); }
  };

  std::condition_variable_any condition_;
};

// Lets a callback be cancelled safely: Run calls it unless the gate is closed; Close stops
// future calls and waits for one that is running on another thread. Calls through one gate
// never overlap (a second Run waits for the first), which gives watches their "never
// concurrently with itself" promise whatever thread delivers.
class CallbackGate {
 public:
  // Calls `callback` unless the gate is closed. Returns false if it did not run.
  // REQUIRES: not called from inside a callback running through this same gate.
  bool Run(const std::function<void()>& callback) {
    {
      MutexLock lock(&mutex_);
      while (running_ && !closed_) {
        idle_.Wait(&mutex_);
      }
      if (closed_) {
        return false;
      }
      running_ = true;
      runner_ = std::this_thread::get_id();
    }
    callback();
    MutexLock lock(&mutex_);
    running_ = false;
    runner_ = std::thread::id();
    idle_.SignalAll();
    return true;
  }

  // After Close returns, no callback starts, and none runs except (if Close was called from
  // inside a callback) the caller's own. Idempotent.
  void Close() {
    MutexLock lock(&mutex_);
    closed_ = true;
    idle_.SignalAll();
    if (runner_ == std::this_thread::get_id()) {
      return;
    }
    while (running_) {
      idle_.Wait(&mutex_);
    }
  }

  bool closed() const {
    MutexLock lock(&mutex_);
    return closed_;
  }

 private:
  mutable Mutex mutex_;
  MutexCondition idle_;
  bool closed_ ABSL_GUARDED_BY(mutex_) = false;
  bool running_ ABSL_GUARDED_BY(mutex_) = false;
  std::thread::id runner_ ABSL_GUARDED_BY(mutex_);
};

}  // namespace weft::membership
