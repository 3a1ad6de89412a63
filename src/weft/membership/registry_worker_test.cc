#include "weft/membership/registry_worker.h"

#include <gtest/gtest.h>

#include "weft/base/mutex.h"
#include "weft/membership/in_process_registry.h"

namespace weft::membership {
namespace {

MemberInfo Member(uint64_t id) {
  return MemberInfo{id, "m" + std::to_string(id), "127.0.0.1:1", "127.0.0.1:2"};
}

TEST(RegistryWorkerTest, AnswersInSubmissionOrderOnItsOwnThread) {
  InProcessRegistryHub hub;
  InProcessRegistry registry(hub);
  ASSERT_TRUE(registry.Register(Member(1)).ok());
  RegistryWorker worker(registry);
  Mutex mutex;
  CondVar answered;
  std::vector<RegistryReply> replies;
  std::vector<std::thread::id> threads;
  auto collect = [&](RegistryReply reply) {
    MutexLock lock(&mutex);
    replies.push_back(std::move(reply));
    threads.push_back(std::this_thread::get_id());
    answered.SignalAll();
  };
  worker.Submit({RegistryRequest::Op::kEnterRegion, "r"}, collect);
  worker.Submit({RegistryRequest::Op::kSetState, "r", MemberState::kActive}, collect);
  worker.Submit({RegistryRequest::Op::kEnterRegion, "bad/name"}, collect);
  {
    MutexLock lock(&mutex);
    while (replies.size() < 3) {
      answered.Wait(&mutex);
    }
  }
  ASSERT_TRUE(replies[0].status.ok());
  EXPECT_TRUE(replies[0].entered.bootstrapped);
  ASSERT_TRUE(replies[1].status.ok());
  EXPECT_EQ(replies[1].view.members.size(), 1u);
  EXPECT_TRUE(absl::IsInvalidArgument(replies[2].status));
  EXPECT_NE(threads[0], std::this_thread::get_id());
}

TEST(RegistryWorkerTest, StopDropsQueuedRequests) {
  InProcessRegistryHub hub;
  InProcessRegistry registry(hub);
  ASSERT_TRUE(registry.Register(Member(1)).ok());
  auto worker = std::make_unique<RegistryWorker>(registry);
  worker->Stop();
  bool called = false;
  worker->Submit({RegistryRequest::Op::kReadGroup, "r"}, [&](RegistryReply) { called = true; });
  worker.reset();
  EXPECT_FALSE(called);
}

}  // namespace
}  // namespace weft::membership
