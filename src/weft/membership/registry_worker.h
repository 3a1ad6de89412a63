// RegistryWorker: runs Registry calls (RegistryRequest) on a thread of its own, one at a time in
// submission order, and hands each answer to the caller's callback on that thread. The etcd
// registry blocks in curl for as long as etcd takes (seconds in an outage); the protocol thread
// must never wait for it, so it submits requests here and hears the answers as events.
//
// Thread safety: Submit from any thread. Stop() (and the destructor) finishes the call in
// progress, drops the queued ones (their callbacks never run) and joins the thread.
#pragma once

#include <deque>
#include <functional>
#include <thread>

#include "absl/base/thread_annotations.h"

#include "weft/base/mutex.h"
#include "weft/membership/registry.h"
#include "weft/membership/registry_request.h"

namespace weft::membership {

class RegistryWorker {
 public:
  // `registry` must outlive the worker.
  explicit RegistryWorker(Registry& registry);
  ~RegistryWorker();
  RegistryWorker(const RegistryWorker&) = delete;
  RegistryWorker& operator=(const RegistryWorker&) = delete;

  // `done` runs on the worker's thread with the answer.
  void Submit(RegistryRequest request, std::function<void(RegistryReply)> done);
  void Stop();

 private:
  struct Job {
    RegistryRequest request;
    std::function<void(RegistryReply)> done;
  };
  void Loop();

  Registry& registry_;
  Mutex mutex_;
  CondVar ready_;
  std::deque<Job> jobs_ ABSL_GUARDED_BY(mutex_);
  bool stopping_ ABSL_GUARDED_BY(mutex_) = false;
  std::thread thread_;
};

}  // namespace weft::membership
