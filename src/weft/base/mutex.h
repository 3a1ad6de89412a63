// Mutex: std::mutex with Clang thread-safety annotations, for every lock in weft.
//
// Why not absl::Mutex: Debian's Abseil is built without ThreadSanitizer instrumentation, so
// TSan cannot see the happens-before edges of absl::Mutex and reports every shard access as a
// race, which would make the `tsan` preset useless. std::mutex goes through
// pthread, which TSan intercepts. The annotations keep -Wthread-safety checking ABSL_GUARDED_BY
// members as absl::Mutex would.
//
// Thread safety: a mutex. AssertHeld checks, in debug builds, that the calling thread holds it.
#pragma once

#include <chrono>
#include <condition_variable>
#include <mutex>

#include "absl/base/thread_annotations.h"

#include "weft/base/check.h"

#ifndef NDEBUG
#include <atomic>
#include <thread>
#endif

namespace weft {

class ABSL_LOCKABLE Mutex {
 public:
  Mutex() = default;
  ~Mutex() = default;
  Mutex(const Mutex&) = delete;
  Mutex& operator=(const Mutex&) = delete;
  Mutex(Mutex&&) = delete;
  Mutex& operator=(Mutex&&) = delete;

  void Lock() ABSL_EXCLUSIVE_LOCK_FUNCTION() {
    mutex_.lock();
#ifndef NDEBUG
    owner_.store(std::this_thread::get_id(), std::memory_order_relaxed);
#endif
  }

  void Unlock() ABSL_UNLOCK_FUNCTION() {
#ifndef NDEBUG
    owner_.store(std::thread::id(), std::memory_order_relaxed);
#endif
    mutex_.unlock();
  }

  // Tells the analysis that the lock is held; checks it in debug builds.
  void AssertHeld() const ABSL_ASSERT_EXCLUSIVE_LOCK() {
#ifndef NDEBUG
    WEFT_DCHECK(owner_.load(std::memory_order_relaxed) == std::this_thread::get_id());
#endif
  }

 private:
  friend class CondVar;

  std::mutex mutex_;
#ifndef NDEBUG
  std::atomic<std::thread::id> owner_{};
#endif
};

// Holds a Mutex for its scope.
class ABSL_SCOPED_LOCKABLE MutexLock {
 public:
  explicit MutexLock(Mutex* mutex) ABSL_EXCLUSIVE_LOCK_FUNCTION(mutex) : mutex_(mutex) {
    mutex_->Lock();
  }
  ~MutexLock() ABSL_UNLOCK_FUNCTION() { mutex_->Unlock(); }
  MutexLock(const MutexLock&) = delete;
  MutexLock& operator=(const MutexLock&) = delete;
  MutexLock(MutexLock&&) = delete;
  MutexLock& operator=(MutexLock&&) = delete;

 private:
  Mutex* const mutex_;
};

// A condition variable for weft::Mutex (std::condition_variable underneath, so TSan sees it).
// Wait releases the mutex while blocked and holds it again on return; callers re-check their
// condition in a loop (spurious wake-ups happen).
class CondVar {
 public:
  void Wait(Mutex* mutex) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mutex) {
    std::unique_lock<std::mutex> lock(mutex->mutex_, std::adopt_lock);
    ForgetOwner(mutex);
    cv_.wait(lock);
    RecordOwner(mutex);
    lock.release();
  }

  // Returns false if `timeout` passed without a signal (the condition may still hold).
  bool WaitFor(Mutex* mutex, std::chrono::microseconds timeout)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mutex) {
    std::unique_lock<std::mutex> lock(mutex->mutex_, std::adopt_lock);
    ForgetOwner(mutex);
    const bool signalled = cv_.wait_for(lock, timeout) == std::cv_status::no_timeout;
    RecordOwner(mutex);
    lock.release();
    return signalled;
  }

  void Signal() { cv_.notify_one(); }
  void SignalAll() { cv_.notify_all(); }

 private:
  static void ForgetOwner(Mutex* mutex) {
#ifndef NDEBUG
    mutex->owner_.store(std::thread::id(), std::memory_order_relaxed);
#endif
  }
  static void RecordOwner(Mutex* mutex) {
#ifndef NDEBUG
    mutex->owner_.store(std::this_thread::get_id(), std::memory_order_relaxed);
#endif
  }

  std::condition_variable cv_;
};

}  // namespace weft
