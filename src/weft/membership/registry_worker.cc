#include "weft/membership/registry_worker.h"

#include <utility>

#include "weft/base/thread_name.h"

namespace weft::membership {

RegistryWorker::RegistryWorker(Registry& registry) : registry_(registry) {
  thread_ = std::thread([this] {
    SetThreadName("weft-registry");
    Loop();
  });
}

RegistryWorker::~RegistryWorker() {
  Stop();
}

void RegistryWorker::Submit(RegistryRequest request, std::function<void(RegistryReply)> done) {
  MutexLock lock(&mutex_);
  if (stopping_) {
    return;
  }
  jobs_.push_back(Job{std::move(request), std::move(done)});
  ready_.Signal();
}

void RegistryWorker::Stop() {
  {
    MutexLock lock(&mutex_);
    stopping_ = true;
    jobs_.clear();
    ready_.SignalAll();
  }
  if (thread_.joinable()) {
    thread_.join();
  }
}

void RegistryWorker::Loop() {
  while (true) {
    Job job;
    {
      MutexLock lock(&mutex_);
      while (jobs_.empty() && !stopping_) {
        ready_.Wait(&mutex_);
      }
      if (stopping_) {
        return;
      }
      job = std::move(jobs_.front());
      jobs_.pop_front();
    }
    job.done(CallRegistry(registry_, job.request));
  }
}

}  // namespace weft::membership
