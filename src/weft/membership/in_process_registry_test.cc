#include "weft/membership/in_process_registry.h"

#include <chrono>
#include <deque>
#include <memory>
#include <string>
#include <vector>

#include "gtest/gtest.h"

#include "weft/membership/registry_contract_test.h"

namespace weft::membership {
namespace {

using std::chrono::milliseconds;

class InProcessBackend {
 public:
  static constexpr int kRacers = 16;
  static constexpr int kRaceRounds = 50;
  static constexpr milliseconds kWaitMax{5000};

  Status Ready() { return absl::OkStatus(); }
  std::unique_ptr<Registry> NewRegistry() { return std::make_unique<InProcessRegistry>(hub_); }
  void Crash(Registry& registry, uint64_t member_id) { hub_.Expire(member_id); }

 private:
  InProcessRegistryHub hub_;
};

INSTANTIATE_TYPED_TEST_SUITE_P(InProcess, RegistryContractTest, InProcessBackend);

MemberInfo Info(uint64_t id, std::string name) {
  MemberInfo info;
  info.member_id = id;
  info.name = std::move(name);
  return info;
}

TEST(InProcessRegistryTest, ExpireRemovesTheMemberEverywhereAndReportsTheLostLease) {
  InProcessRegistryHub hub;
  InProcessRegistry a(hub);
  InProcessRegistry b(hub);
  ASSERT_TRUE(a.Register(Info(1, "a")).ok());
  ASSERT_TRUE(b.Register(Info(2, "b")).ok());
  Mutex mutex;
  MutexCondition changed;
  bool lost = false;
  b.SetLeaseLostCallback([&](uint64_t /*registration*/) {
    MutexLock lock(&mutex);
    lost = true;
    changed.SignalAll();
  });
  ASSERT_TRUE(a.EnterRegion("r1").ok());
  ASSERT_TRUE(b.EnterRegion("r1").ok());
  ASSERT_TRUE(b.EnterRegion("r2").ok());
  const int64_t before = hub.revision();
  EXPECT_TRUE(hub.Expire(2));
  EXPECT_FALSE(hub.Expire(2));
  EXPECT_EQ(hub.revision(), before + 1);  // one revision for the whole member, like a lease
  {
    MutexLock lock(&mutex);
    while (!lost) {
      ASSERT_TRUE(changed.WaitFor(&mutex, milliseconds(5000)));
    }
  }
  EXPECT_EQ(Summary(*a.ReadGroup("r1")), "a:ACTIVE");
  EXPECT_EQ(Summary(*a.ReadGroup("r2")), "");
  EXPECT_TRUE(absl::IsFailedPrecondition(b.EnterRegion("r3").status()));
  EXPECT_TRUE(absl::IsFailedPrecondition(b.SetState("r1", MemberState::kActive).status()));
}

TEST(InProcessRegistryTest, ADestroyedRegistryStaysListedUntilExpired) {
  InProcessRegistryHub hub;
  InProcessRegistry a(hub);
  ASSERT_TRUE(a.Register(Info(1, "a")).ok());
  ASSERT_TRUE(a.EnterRegion("r").ok());
  {
    InProcessRegistry crashed(hub);
    ASSERT_TRUE(crashed.Register(Info(2, "crashed")).ok());
    crashed.SetLeaseLostCallback(
        [](uint64_t /*registration*/) { ADD_FAILURE() << "called after its registry was gone"; });
    ASSERT_TRUE(crashed.EnterRegion("r").ok());
  }
  EXPECT_EQ(Summary(*a.ReadGroup("r")), "a:ACTIVE crashed:INITIALIZING");
  EXPECT_TRUE(hub.Expire(2));
  EXPECT_EQ(Summary(*a.ReadGroup("r")), "a:ACTIVE");
}

// A simulator owns delivery: nothing is delivered until it runs the tasks, and then in order.
TEST(InProcessRegistryTest, ADispatcherDecidesWhenCallbacksRun) {
  std::deque<std::function<void()>> tasks;  // touched only by this thread
  InProcessRegistryHub hub(
      [&tasks](std::function<void()> task) { tasks.push_back(std::move(task)); });
  InProcessRegistry a(hub);
  InProcessRegistry b(hub);
  ASSERT_TRUE(a.Register(Info(1, "a")).ok());
  ASSERT_TRUE(b.Register(Info(2, "b")).ok());
  std::vector<GroupView> views;
  std::unique_ptr<WatchHandle> watch =
      a.Watch("r", [&views](const GroupView& view) { views.push_back(view); });
  ASSERT_TRUE(a.EnterRegion("r").ok());
  ASSERT_TRUE(b.EnterRegion("r").ok());
  ASSERT_TRUE(a.EnterRegion("other").ok());  // not watched
  EXPECT_TRUE(views.empty());
  ASSERT_EQ(tasks.size(), 3u);
  while (!tasks.empty()) {
    std::function<void()> task = std::move(tasks.front());
    tasks.pop_front();
    task();
  }
  ASSERT_EQ(views.size(), 3u);
  EXPECT_EQ(Summary(views[0]), "");
  EXPECT_EQ(Summary(views[1]), "a:ACTIVE");
  EXPECT_EQ(Summary(views[2]), "a:ACTIVE b:INITIALIZING");
  EXPECT_LT(views[0].revision, views[1].revision);
  EXPECT_LT(views[1].revision, views[2].revision);

  // A task queued before the watch is cancelled does not call it afterwards.
  ASSERT_TRUE(b.SetState("r", MemberState::kActive).ok());
  ASSERT_EQ(tasks.size(), 1u);
  watch.reset();
  tasks.front()();
  EXPECT_EQ(views.size(), 3u);
}

// A dispatcher may run tasks inline; a callback that changes the registry then queues the next
// view instead of re-entering itself, and order is kept.
TEST(InProcessRegistryTest, AnInlineDispatcherKeepsOrderWhenCallbacksChangeTheRegistry) {
  InProcessRegistryHub hub([](std::function<void()> task) { task(); });
  InProcessRegistry a(hub);
  InProcessRegistry b(hub);
  ASSERT_TRUE(a.Register(Info(1, "a")).ok());
  ASSERT_TRUE(b.Register(Info(2, "b")).ok());
  std::vector<std::string> summaries;
  std::unique_ptr<WatchHandle> watch = a.Watch("r", [&](const GroupView& view) {
    summaries.push_back(Summary(view));
    // Reacting to b's entry by promoting it, from inside the callback.
    const GroupMember* member_b = view.Find(2);
    if (member_b != nullptr && member_b->state == MemberState::kInitializing) {
      EXPECT_TRUE(b.SetState("r", MemberState::kActive).ok());
      summaries.push_back("(promoted)");
    }
  });
  ASSERT_TRUE(a.EnterRegion("r").ok());
  ASSERT_TRUE(b.EnterRegion("r").ok());
  EXPECT_EQ(summaries, (std::vector<std::string>{"", "a:ACTIVE", "a:ACTIVE b:INITIALIZING",
                                                 "(promoted)", "a:ACTIVE b:ACTIVE"}));
}

TEST(InProcessRegistryTest, GroupViewHelpers) {
  GroupView view;
  view.members = {GroupMember{Info(3, "c"), MemberState::kActive},
                  GroupMember{Info(7, "g"), MemberState::kInitializing},
                  GroupMember{Info(9, "i"), MemberState::kLeaving}};
  EXPECT_EQ(view.Find(7)->info.name, "g");
  EXPECT_EQ(view.Find(8), nullptr);
  EXPECT_TRUE(view.Contains(9));
  EXPECT_EQ(view.ActiveIds(), std::vector<uint64_t>{3});
  EXPECT_EQ(view.InitializingIds(), std::vector<uint64_t>{7});
  EXPECT_EQ(view.IdsInState(MemberState::kLeaving), std::vector<uint64_t>{9});
  EXPECT_TRUE(view.HasActive());
  EXPECT_EQ(MemberStateName(MemberState::kInitializing), "INITIALIZING");
  EXPECT_EQ(ParseMemberState("LEAVING"), MemberState::kLeaving);
  EXPECT_EQ(ParseMemberState("active"), std::nullopt);
  EXPECT_EQ(FormatMemberId(0xab), "00000000000000ab");
}

}  // namespace
}  // namespace weft::membership
