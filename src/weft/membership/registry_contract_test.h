// The Registry contract as one typed test suite, run against every implementation
// (in_process_registry_test.cc, etcd_registry_test.cc).
//
// A backend type supplies:
//   Status Ready();                               // NotFound skips the suite (no etcd binary)
//   std::unique_ptr<Registry> NewRegistry();      // a fresh, unregistered registry
//   void Crash(Registry& registry, uint64_t id);   // the member stops renewing its lease; its
//                                                 // entries vanish (at once, or after the TTL)
//   static constexpr int kRacers;                 // registries in each bootstrap race
//   static constexpr int kRaceRounds;             // races, each in a fresh region
//   static constexpr std::chrono::milliseconds kWaitMax;  // deadline for awaited views
// Registries must be destroyed before the backend (test bodies hold them as locals).
#pragma once

#include <algorithm>
#include <atomic>
#include <chrono>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "gtest/gtest.h"

#include "weft/base/mutex.h"
#include "weft/membership/callback_gate.h"
#include "weft/membership/registry.h"

namespace weft::membership {

// Collects the views a watch delivers and lets a test wait for one.
class ViewRecorder {
 public:
  std::function<void(const GroupView&)> Callback() {
    return [this](const GroupView& view) {
      MutexLock lock(&mutex_);
      views_.push_back(view);
      changed_.SignalAll();
    };
  }

  // Waits until some delivered view satisfies `predicate`; returns false at the deadline.
  bool WaitFor(const std::function<bool(const GroupView&)>& predicate,
               std::chrono::milliseconds wait_max) {
    const auto deadline = std::chrono::steady_clock::now() + wait_max;
    MutexLock lock(&mutex_);
    while (true) {
      for (const GroupView& view : views_) {
        if (predicate(view)) {
          return true;
        }
      }
      if (std::chrono::steady_clock::now() >= deadline) {
        return false;
      }
      changed_.WaitUntil(&mutex_, deadline);
    }
  }

  std::vector<GroupView> views() const {
    MutexLock lock(&mutex_);
    return views_;
  }

 private:
  mutable Mutex mutex_;
  MutexCondition changed_;
  std::vector<GroupView> views_ ABSL_GUARDED_BY(mutex_);
};

// "A:ACTIVE B:INITIALIZING" with the members' names, for comparing view sequences.
inline std::string Summary(const GroupView& view) {
  std::string out;
  for (const GroupMember& member : view.members) {
    if (!out.empty()) {
      out.push_back(' ');
    }
    out += member.info.name;
    out.push_back(':');
    out += std::string(MemberStateName(member.state));
  }
  return out;
}

template <typename Backend>
class RegistryContractTest : public ::testing::Test {
 protected:
  void SetUp() override {
    const Status ready = backend_.Ready();
    if (absl::IsNotFound(ready)) {
      GTEST_SKIP() << ready;
    }
    ASSERT_TRUE(ready.ok()) << ready;
  }

  // A registered member named `name` (ids increase with each call, so views list members in
  // creation order).
  std::unique_ptr<Registry> Member(const std::string& name) {
    std::unique_ptr<Registry> registry = backend_.NewRegistry();
    MemberInfo info;
    info.member_id = NextId();
    info.name = name;
    info.peer_address = "127.0.0.1:" + std::to_string(7000 + info.member_id % 1000);
    info.client_address = "127.0.0.1:" + std::to_string(6000 + info.member_id % 1000);
    const Status status = registry->Register(info);
    EXPECT_TRUE(status.ok()) << status;
    ids_[registry.get()] = info.member_id;
    return registry;
  }

  uint64_t IdOf(const Registry& registry) { return ids_.at(&registry); }
  uint64_t NextId() { return next_id_++; }

  std::string NewRegion() { return "region" + std::to_string(region_counter_++); }

  Backend backend_;
  std::map<const Registry*, uint64_t> ids_;
  // High bits make a clash with ids of another run unlikely; the low bits keep creation order.
  uint64_t next_id_ = 0x5eed000000000001ULL;
  int region_counter_ = 0;
};

TYPED_TEST_SUITE_P(RegistryContractTest);

TYPED_TEST_P(RegistryContractTest, FirstMemberOfAnEmptyRegionBootstrapsIt) {
  auto a = this->Member("a");
  const std::string region = this->NewRegion();
  StatusOr<EnterResult> entered = a->EnterRegion(region);
  ASSERT_TRUE(entered.ok()) << entered.status();
  EXPECT_TRUE(entered->bootstrapped);
  EXPECT_EQ(entered->group.region, region);
  EXPECT_GT(entered->group.revision, 0);
  EXPECT_EQ(Summary(entered->group), "a:ACTIVE");
  EXPECT_EQ(entered->group.ActiveIds(), std::vector<uint64_t>{this->IdOf(*a)});
}

TYPED_TEST_P(RegistryContractTest, LaterMembersJoinAsInitializingAndSeeTheGroup) {
  auto a = this->Member("a");
  auto b = this->Member("b");
  auto c = this->Member("c");
  const std::string region = this->NewRegion();
  StatusOr<EnterResult> entered_a = a->EnterRegion(region);
  ASSERT_TRUE(entered_a.ok()) << entered_a.status();
  StatusOr<EnterResult> entered_b = b->EnterRegion(region);
  ASSERT_TRUE(entered_b.ok()) << entered_b.status();
  EXPECT_FALSE(entered_b->bootstrapped);
  EXPECT_EQ(Summary(entered_b->group), "a:ACTIVE b:INITIALIZING");
  EXPECT_GT(entered_b->group.revision, entered_a->group.revision);
  StatusOr<EnterResult> entered_c = c->EnterRegion(region);
  ASSERT_TRUE(entered_c.ok()) << entered_c.status();
  EXPECT_FALSE(entered_c->bootstrapped);
  EXPECT_EQ(Summary(entered_c->group), "a:ACTIVE b:INITIALIZING c:INITIALIZING");
  const GroupMember* member_a = entered_c->group.Find(this->IdOf(*a));
  ASSERT_NE(member_a, nullptr);
  EXPECT_EQ(member_a->info.name, "a");
  EXPECT_EQ(member_a->info.peer_address,
            "127.0.0.1:" + std::to_string(7000 + this->IdOf(*a) % 1000));

  StatusOr<GroupView> read = c->ReadGroup(region);
  ASSERT_TRUE(read.ok()) << read.status();
  EXPECT_EQ(read->members, entered_c->group.members);
  EXPECT_GE(read->revision, entered_c->group.revision);
}

TYPED_TEST_P(RegistryContractTest, ConcurrentEntriesIntoAnEmptyRegionBootstrapExactlyOnce) {
  constexpr int kRacers = TypeParam::kRacers;
  std::vector<std::unique_ptr<Registry>> members;
  for (int i = 0; i < kRacers; ++i) {
    members.push_back(this->Member("m" + std::to_string(i)));
  }
  for (int round = 0; round < TypeParam::kRaceRounds; ++round) {
    const std::string region = this->NewRegion();
    std::vector<StatusOr<EnterResult>> results(kRacers, absl::UnknownError("not run"));
    std::atomic<int> ready{0};
    std::vector<std::thread> threads;
    for (int i = 0; i < kRacers; ++i) {
      threads.emplace_back([&, i] {
        // Start together: spin until every racer is here.
        ready.fetch_add(1);
        while (ready.load() < kRacers) {
          std::this_thread::yield();
        }
        results[i] = members[i]->EnterRegion(region);
      });
    }
    for (std::thread& thread : threads) {
      thread.join();
    }
    int bootstrapped = 0;
    uint64_t first = 0;
    for (int i = 0; i < kRacers; ++i) {
      ASSERT_TRUE(results[i].ok()) << results[i].status();
      if (results[i]->bootstrapped) {
        ++bootstrapped;
        first = this->IdOf(*members[i]);
      }
    }
    ASSERT_EQ(bootstrapped, 1) << "round " << round;
    for (int i = 0; i < kRacers; ++i) {
      const GroupView& group = results[i]->group;
      // Everyone sees the one bootstrapper ACTIVE, and itself.
      EXPECT_EQ(group.ActiveIds(), std::vector<uint64_t>{first}) << GroupViewToString(group);
      const GroupMember* self = group.Find(this->IdOf(*members[i]));
      ASSERT_NE(self, nullptr) << GroupViewToString(group);
      EXPECT_EQ(self->state,
                results[i]->bootstrapped ? MemberState::kActive : MemberState::kInitializing);
    }
    StatusOr<GroupView> final_group = members[0]->ReadGroup(region);
    ASSERT_TRUE(final_group.ok()) << final_group.status();
    EXPECT_EQ(final_group->members.size(), static_cast<size_t>(kRacers));
    EXPECT_EQ(final_group->ActiveIds().size(), 1u);
  }
}

TYPED_TEST_P(RegistryContractTest, ConcurrentJoinersAllJoinTheActiveMember) {
  auto a = this->Member("a");
  const std::string region = this->NewRegion();
  ASSERT_TRUE(a->EnterRegion(region).ok());
  constexpr int kJoiners = 6;
  std::vector<std::unique_ptr<Registry>> joiners;
  for (int i = 0; i < kJoiners; ++i) {
    joiners.push_back(this->Member("j" + std::to_string(i)));
  }
  std::vector<StatusOr<EnterResult>> results(kJoiners, absl::UnknownError("not run"));
  std::vector<std::thread> threads;
  for (int i = 0; i < kJoiners; ++i) {
    threads.emplace_back([&, i] { results[i] = joiners[i]->EnterRegion(region); });
  }
  for (std::thread& thread : threads) {
    thread.join();
  }
  std::vector<int64_t> revisions;
  for (int i = 0; i < kJoiners; ++i) {
    ASSERT_TRUE(results[i].ok()) << results[i].status();
    EXPECT_FALSE(results[i]->bootstrapped);
    EXPECT_EQ(results[i]->group.ActiveIds(), std::vector<uint64_t>{this->IdOf(*a)});
    ASSERT_NE(results[i]->group.Find(this->IdOf(*joiners[i])), nullptr);
    revisions.push_back(results[i]->group.revision);
  }
  // Each entry is its own transaction.
  std::sort(revisions.begin(), revisions.end());
  EXPECT_EQ(std::unique(revisions.begin(), revisions.end()), revisions.end());
  StatusOr<GroupView> group = a->ReadGroup(region);
  ASSERT_TRUE(group.ok());
  EXPECT_EQ(group->InitializingIds().size(), static_cast<size_t>(kJoiners));
}

TYPED_TEST_P(RegistryContractTest, SetStateReturnsTheGroupAsOfThatChange) {
  auto a = this->Member("a");
  auto b = this->Member("b");
  auto c = this->Member("c");
  const std::string region = this->NewRegion();
  ASSERT_TRUE(a->EnterRegion(region).ok());
  StatusOr<EnterResult> entered_b = b->EnterRegion(region);
  ASSERT_TRUE(entered_b.ok());
  ASSERT_TRUE(c->EnterRegion(region).ok());
  StatusOr<GroupView> view = b->SetState(region, MemberState::kActive);
  ASSERT_TRUE(view.ok()) << view.status();
  EXPECT_EQ(Summary(*view), "a:ACTIVE b:ACTIVE c:INITIALIZING");
  EXPECT_GT(view->revision, entered_b->group.revision);
  StatusOr<GroupView> leaving = a->SetState(region, MemberState::kLeaving);
  ASSERT_TRUE(leaving.ok()) << leaving.status();
  EXPECT_EQ(Summary(*leaving), "a:LEAVING b:ACTIVE c:INITIALIZING");
  EXPECT_GT(leaving->revision, view->revision);
}

// DESIGN §6 / issue 3: a member becoming ACTIVE while another joins. Either the joiner's entry
// committed first (then the new ACTIVE member's view lists it), or the state change did (then
// the joiner's view shows that member ACTIVE): never neither, never both.
TYPED_TEST_P(RegistryContractTest, BecomingActiveWhileAnotherJoinsNeverMissesTheJoiner) {
  auto a = this->Member("a");
  const int rounds = TypeParam::kRaceRounds * 2;
  for (int round = 0; round < rounds; ++round) {
    auto b = this->Member("b" + std::to_string(round));
    auto c = this->Member("c" + std::to_string(round));
    const std::string region = this->NewRegion();
    ASSERT_TRUE(a->EnterRegion(region).ok());
    ASSERT_TRUE(b->EnterRegion(region).ok());
    StatusOr<GroupView> activated = absl::UnknownError("not run");
    StatusOr<EnterResult> joined = absl::UnknownError("not run");
    std::atomic<int> ready{0};
    std::thread activate([&] {
      ready.fetch_add(1);
      while (ready.load() < 2) {
        std::this_thread::yield();
      }
      activated = b->SetState(region, MemberState::kActive);
    });
    std::thread join([&] {
      ready.fetch_add(1);
      while (ready.load() < 2) {
        std::this_thread::yield();
      }
      joined = c->EnterRegion(region);
    });
    activate.join();
    join.join();
    ASSERT_TRUE(activated.ok()) << activated.status();
    ASSERT_TRUE(joined.ok()) << joined.status();
    const bool b_sees_c = activated->Contains(this->IdOf(*c));
    const GroupMember* b_in_c = joined->group.Find(this->IdOf(*b));
    ASSERT_NE(b_in_c, nullptr);
    const bool c_sees_b_active = b_in_c->state == MemberState::kActive;
    EXPECT_NE(b_sees_c, c_sees_b_active)
        << GroupViewToString(*activated) << " vs " << GroupViewToString(joined->group);
    EXPECT_EQ(b_sees_c, activated->revision > joined->group.revision);
  }
}

TYPED_TEST_P(RegistryContractTest, MisuseGetsClearErrors) {
  auto unregistered = this->backend_.NewRegistry();
  EXPECT_TRUE(absl::IsFailedPrecondition(unregistered->EnterRegion("r").status()));
  EXPECT_TRUE(absl::IsFailedPrecondition(unregistered->LeaveRegion("r")));
  MemberInfo zero;
  EXPECT_TRUE(absl::IsInvalidArgument(unregistered->Register(zero)));

  auto a = this->Member("a");
  MemberInfo again;
  again.member_id = this->NextId();
  EXPECT_TRUE(absl::IsFailedPrecondition(a->Register(again)));
  auto twin = this->backend_.NewRegistry();
  MemberInfo same_id;
  same_id.member_id = this->IdOf(*a);
  EXPECT_TRUE(absl::IsAlreadyExists(twin->Register(same_id)));

  const std::string region = this->NewRegion();
  EXPECT_TRUE(absl::IsFailedPrecondition(a->SetState(region, MemberState::kActive).status()));
  ASSERT_TRUE(a->EnterRegion(region).ok());
  EXPECT_TRUE(absl::IsAlreadyExists(a->EnterRegion(region).status()));
  for (const std::string& bad :
       std::vector<std::string>{"", "a/b", "has space", std::string(300, 'x')}) {
    EXPECT_TRUE(absl::IsInvalidArgument(a->EnterRegion(bad).status())) << bad;
    EXPECT_TRUE(absl::IsInvalidArgument(a->ReadGroup(bad).status())) << bad;
    EXPECT_EQ(a->Watch(bad, [](const GroupView&) {}), nullptr);
  }
}

TYPED_TEST_P(RegistryContractTest, UnknownRegionIsAnEmptyGroup) {
  auto reader = this->backend_.NewRegistry();  // reading needs no registration
  StatusOr<GroupView> group = reader->ReadGroup(this->NewRegion());
  ASSERT_TRUE(group.ok()) << group.status();
  EXPECT_TRUE(group->members.empty());
  EXPECT_FALSE(group->HasActive());
}

TYPED_TEST_P(RegistryContractTest, LeavingRemovesTheMemberAndAnEmptiedRegionBootstrapsAgain) {
  auto a = this->Member("a");
  auto b = this->Member("b");
  auto c = this->Member("c");
  const std::string region = this->NewRegion();
  ASSERT_TRUE(a->EnterRegion(region).ok());
  ASSERT_TRUE(b->EnterRegion(region).ok());
  ASSERT_TRUE(a->LeaveRegion(region).ok());
  EXPECT_TRUE(a->LeaveRegion(region).ok());  // leaving twice is fine
  EXPECT_TRUE(absl::IsFailedPrecondition(a->SetState(region, MemberState::kActive).status()));
  StatusOr<GroupView> group = b->ReadGroup(region);
  ASSERT_TRUE(group.ok());
  EXPECT_EQ(Summary(*group), "b:INITIALIZING");
  // No ACTIVE member is left (b never finished joining): the next entrant bootstraps.
  StatusOr<EnterResult> entered_c = c->EnterRegion(region);
  ASSERT_TRUE(entered_c.ok());
  EXPECT_TRUE(entered_c->bootstrapped);
  EXPECT_EQ(Summary(entered_c->group), "b:INITIALIZING c:ACTIVE");
}

TYPED_TEST_P(RegistryContractTest, ExpellingRemovesAnotherMemberFromTheRegionOnly) {
  auto a = this->Member("a");
  auto b = this->Member("b");
  const std::string region = this->NewRegion();
  const std::string other = this->NewRegion();
  ASSERT_TRUE(a->EnterRegion(region).ok());
  ASSERT_TRUE(b->EnterRegion(region).ok());
  ASSERT_TRUE(b->EnterRegion(other).ok());
  StatusOr<GroupView> before = a->ReadGroup(region);
  ASSERT_TRUE(before.ok());
  ASSERT_EQ(before->members.size(), 2u);
  uint64_t b_id = 0;
  int64_t b_entry = 0;
  for (const GroupMember& member : before->members) {
    if (member.info.name == "b") {
      b_id = member.info.member_id;
      b_entry = member.entered_at;
    }
  }
  ASSERT_NE(b_id, 0u);
  ASSERT_GT(b_entry, 0);
  ASSERT_TRUE(a->ExpelFromRegion(region, b_id, b_entry).ok());
  EXPECT_TRUE(a->ExpelFromRegion(region, b_id, b_entry).ok());  // expelling twice is fine
  StatusOr<GroupView> after = b->ReadGroup(region);
  ASSERT_TRUE(after.ok());
  EXPECT_EQ(Summary(*after), "a:ACTIVE");
  // b is still registered and still in its other region.
  StatusOr<GroupView> kept = a->ReadGroup(other);
  ASSERT_TRUE(kept.ok());
  EXPECT_EQ(Summary(*kept), "b:ACTIVE");
  // b enters again: a later entry, which an expel aimed at the earlier one leaves alone.
  StatusOr<EnterResult> again = b->EnterRegion(region);
  ASSERT_TRUE(again.ok()) << again.status();
  const GroupMember* entry = again->group.Find(b_id);
  ASSERT_NE(entry, nullptr);
  EXPECT_GT(entry->entered_at, b_entry);
  EXPECT_TRUE(a->ExpelFromRegion(region, b_id, b_entry).ok());
  EXPECT_EQ(Summary(*a->ReadGroup(region)), "a:ACTIVE b:INITIALIZING");
  ASSERT_TRUE(b->SetState(region, MemberState::kActive).ok());
  EXPECT_EQ(a->ReadGroup(region)->Find(b_id)->entered_at, entry->entered_at);  // a state change
  auto unregistered = this->backend_.NewRegistry();
  EXPECT_TRUE(
      absl::IsFailedPrecondition(unregistered->ExpelFromRegion(region, b_id, entry->entered_at)));
}

TYPED_TEST_P(RegistryContractTest, OnlyAnActiveMemberExpelsSoTwoCannotExpelEachOther) {
  auto a = this->Member("a");
  auto b = this->Member("b");
  auto c = this->Member("c");
  const std::string region = this->NewRegion();
  ASSERT_TRUE(a->EnterRegion(region).ok());
  ASSERT_TRUE(b->EnterRegion(region).ok());
  ASSERT_TRUE(c->EnterRegion(region).ok());  // stays INITIALIZING
  ASSERT_TRUE(b->SetState(region, MemberState::kActive).ok());
  StatusOr<GroupView> group = a->ReadGroup(region);
  ASSERT_TRUE(group.ok());
  std::map<std::string, const GroupMember*> by_name;
  for (const GroupMember& member : group->members) {
    by_name[member.info.name] = &member;
  }
  const GroupMember& ma = *by_name.at("a");
  const GroupMember& mb = *by_name.at("b");
  // A joining member judges nobody.
  EXPECT_TRUE(
      absl::IsFailedPrecondition(c->ExpelFromRegion(region, ma.info.member_id, ma.entered_at)));
  // a and b cut off from each other both try: the first wins, the second is no longer ACTIVE.
  ASSERT_TRUE(a->ExpelFromRegion(region, mb.info.member_id, mb.entered_at).ok());
  EXPECT_TRUE(
      absl::IsFailedPrecondition(b->ExpelFromRegion(region, ma.info.member_id, ma.entered_at)));
  StatusOr<GroupView> after = c->ReadGroup(region);
  ASSERT_TRUE(after.ok());
  EXPECT_EQ(Summary(*after), "a:ACTIVE c:INITIALIZING");
}

// Waits (bounded) until `region`'s group is empty, as read by `reader`.
template <typename Backend>
bool WaitWithout(Registry& reader, const std::string& region, std::vector<uint64_t> gone) {
  const auto deadline = std::chrono::steady_clock::now() + Backend::kWaitMax;
  while (std::chrono::steady_clock::now() < deadline) {
    StatusOr<GroupView> group = reader.ReadGroup(region);
    if (group.ok() && std::none_of(gone.begin(), gone.end(),
                                   [&](uint64_t id) { return group->Find(id) != nullptr; })) {
      return true;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  return false;
}

template <typename Backend>
bool WaitEmpty(Registry& reader, const std::string& region) {
  const auto deadline = std::chrono::steady_clock::now() + Backend::kWaitMax;
  while (std::chrono::steady_clock::now() < deadline) {
    StatusOr<GroupView> group = reader.ReadGroup(region);
    if (group.ok() && group->members.empty()) {
      return true;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  return false;
}

TYPED_TEST_P(RegistryContractTest, HoldersReFormAGroupWhoseMembersAllLostTheirLeases) {
  auto a = this->Member("a");
  auto b = this->Member("b");
  auto d = this->Member("d");
  const std::string region = this->NewRegion();
  ASSERT_TRUE(a->EnterRegion(region)->bootstrapped);
  ASSERT_FALSE(b->EnterRegion(region)->bootstrapped);
  ASSERT_TRUE(b->SetState(region, MemberState::kActive).ok());
  ASSERT_FALSE(d->EnterRegion(region)->bootstrapped);
  ASSERT_TRUE(d->SetState(region, MemberState::kActive).ok());
  // d vanishes with its lease while the group goes on: an ACTIVE member drops its holding.
  EXPECT_TRUE(absl::IsFailedPrecondition(this->Member("x")->DropHolder(region, this->IdOf(*d))));
  ASSERT_TRUE(a->DropHolder(region, this->IdOf(*d)).ok());
  // A member whose lease is alive keeps its registration.
  StatusOr<uint64_t> kept = a->Reregister();
  ASSERT_TRUE(kept.ok()) << kept.status();
  EXPECT_EQ(*kept, 1u);
  // Then every member loses its lease at once (etcd frozen and thawed, say).
  this->backend_.Crash(*a, this->IdOf(*a));
  this->backend_.Crash(*b, this->IdOf(*b));
  this->backend_.Crash(*d, this->IdOf(*d));
  auto reader = this->backend_.NewRegistry();
  ASSERT_TRUE(WaitEmpty<TypeParam>(*reader, region));
  // A member that holds nothing does not bootstrap a region others hold: it waits.
  auto c = this->Member("c");
  StatusOr<EnterResult> waits = c->EnterRegion(region);
  ASSERT_TRUE(waits.ok()) << waits.status();
  EXPECT_FALSE(waits->bootstrapped);
  // Neither does the dropped one, registered again under a new registration.
  StatusOr<uint64_t> again = d->Reregister();
  ASSERT_TRUE(again.ok()) << again.status();
  EXPECT_EQ(*again, 2u);
  StatusOr<EnterResult> dropped = d->EnterRegion(region);
  ASSERT_TRUE(dropped.ok()) << dropped.status();
  EXPECT_FALSE(dropped->bootstrapped);
  // A holder comes back with its copy: the group re-forms around it.
  ASSERT_TRUE(b->Reregister().ok());
  StatusOr<EnterResult> reformed = b->EnterRegion(region);
  ASSERT_TRUE(reformed.ok()) << reformed.status();
  EXPECT_TRUE(reformed->bootstrapped);
  EXPECT_TRUE(reformed->reformed);
  EXPECT_EQ(Summary(reformed->group), "b:ACTIVE d:INITIALIZING c:INITIALIZING");
  // The other holder, back later, joins the ACTIVE one.
  ASSERT_TRUE(a->Reregister().ok());
  EXPECT_FALSE(a->EnterRegion(region)->bootstrapped);
}

TYPED_TEST_P(RegistryContractTest, AHolderJoiningKeepsItsHoldingUntilItGivesItUpOrReForms) {
  auto a = this->Member("a");
  auto b = this->Member("b");
  auto c = this->Member("c");
  auto reader = this->backend_.NewRegistry();
  const std::string region = this->NewRegion();
  ASSERT_TRUE(a->EnterRegion(region)->bootstrapped);
  ASSERT_FALSE(b->EnterRegion(region)->bootstrapped);
  ASSERT_TRUE(b->SetState(region, MemberState::kActive).ok());
  // b loses its lease and comes back while a is still listed ACTIVE: it joins, still holding.
  this->backend_.Crash(*b, this->IdOf(*b));
  ASSERT_TRUE(WaitWithout<TypeParam>(*reader, region, {this->IdOf(*b)}));
  ASSERT_TRUE(b->Reregister().ok());
  StatusOr<EnterResult> back = b->EnterRegion(region);
  ASSERT_TRUE(back.ok()) << back.status();
  EXPECT_FALSE(back->bootstrapped);
  EXPECT_TRUE(back->holds);
  StatusOr<EnterResult> newcomer = c->EnterRegion(region);
  ASSERT_TRUE(newcomer.ok()) << newcomer.status();
  EXPECT_FALSE(newcomer->holds);
  // Nobody re-forms while a member is ACTIVE, nor without holding the region.
  EXPECT_TRUE(absl::IsFailedPrecondition(b->Reform(region).status()));
  EXPECT_TRUE(absl::IsFailedPrecondition(c->Reform(region).status()));
  // a vanishes for good (crashed): b re-forms the group from its copy.
  this->backend_.Crash(*a, this->IdOf(*a));
  ASSERT_TRUE(WaitWithout<TypeParam>(*reader, region, {this->IdOf(*a)}));
  EXPECT_TRUE(absl::IsFailedPrecondition(c->Reform(region).status()));
  StatusOr<GroupView> reformed = b->Reform(region);
  ASSERT_TRUE(reformed.ok()) << reformed.status();
  EXPECT_EQ(Summary(*reformed), "b:ACTIVE c:INITIALIZING");
  EXPECT_TRUE(absl::IsFailedPrecondition(b->Reform(region).status()));  // b is ACTIVE now
}

TYPED_TEST_P(RegistryContractTest, AHoldingGivenUpCannotReFormTheGroup) {
  auto a = this->Member("a");
  auto b = this->Member("b");
  auto reader = this->backend_.NewRegistry();
  const std::string region = this->NewRegion();
  ASSERT_TRUE(a->EnterRegion(region)->bootstrapped);
  ASSERT_FALSE(b->EnterRegion(region)->bootstrapped);
  ASSERT_TRUE(b->SetState(region, MemberState::kActive).ok());
  this->backend_.Crash(*b, this->IdOf(*b));
  ASSERT_TRUE(WaitWithout<TypeParam>(*reader, region, {this->IdOf(*b)}));
  ASSERT_TRUE(b->Reregister().ok());
  ASSERT_TRUE(b->EnterRegion(region)->holds);
  // An image is about to replace b's copy.
  ASSERT_TRUE(b->GiveUpHolding(region).ok());
  ASSERT_TRUE(b->GiveUpHolding(region).ok());  // twice is OK
  this->backend_.Crash(*a, this->IdOf(*a));
  ASSERT_TRUE(WaitWithout<TypeParam>(*reader, region, {this->IdOf(*a)}));
  EXPECT_TRUE(absl::IsFailedPrecondition(b->Reform(region).status()));
  // a still holds the region (it crashed with its holding): b waits for it, it never
  // bootstraps an empty copy over a's.
  StatusOr<GroupView> group = reader->ReadGroup(region);
  ASSERT_TRUE(group.ok());
  EXPECT_EQ(Summary(*group), "b:INITIALIZING");
}

TYPED_TEST_P(RegistryContractTest, LeavingAndDeregisteringGiveUpTheHolding) {
  auto a = this->Member("a");
  const std::string region = this->NewRegion();
  ASSERT_TRUE(a->EnterRegion(region)->bootstrapped);
  ASSERT_TRUE(a->Deregister().ok());
  // Nobody holds the region any more: a newcomer bootstraps it.
  auto b = this->Member("b");
  EXPECT_TRUE(b->EnterRegion(region)->bootstrapped);
}

TYPED_TEST_P(RegistryContractTest, WatchDeliversEveryChangeInRevisionOrder) {
  const std::string region = this->NewRegion();
  auto a = this->Member("a");
  auto b = this->Member("b");
  ViewRecorder recorder;
  std::unique_ptr<WatchHandle> watch = a->Watch(region, recorder.Callback());
  ASSERT_NE(watch, nullptr);
  // The first view is the group at the watch's start.
  ASSERT_TRUE(recorder.WaitFor([](const GroupView&) { return true; }, TypeParam::kWaitMax));
  ASSERT_TRUE(a->EnterRegion(region).ok());
  ASSERT_TRUE(b->EnterRegion(region).ok());
  ASSERT_TRUE(b->SetState(region, MemberState::kActive).ok());
  ASSERT_TRUE(a->LeaveRegion(region).ok());
  ASSERT_TRUE(recorder.WaitFor([](const GroupView& view) { return Summary(view) == "b:ACTIVE"; },
                               TypeParam::kWaitMax));
  const std::vector<GroupView> views = recorder.views();
  std::vector<std::string> summaries;
  for (size_t i = 0; i < views.size(); ++i) {
    EXPECT_EQ(views[i].region, region);
    if (i > 0) {
      EXPECT_GT(views[i].revision, views[i - 1].revision);
    }
    summaries.push_back(Summary(views[i]));
  }
  EXPECT_EQ(summaries, (std::vector<std::string>{"", "a:ACTIVE", "a:ACTIVE b:INITIALIZING",
                                                 "a:ACTIVE b:ACTIVE", "b:ACTIVE"}));
}

TYPED_TEST_P(RegistryContractTest, WatchSeesACrashedMemberVanish) {
  const std::string region = this->NewRegion();
  auto a = this->Member("a");
  auto b = this->Member("b");
  ASSERT_TRUE(a->EnterRegion(region).ok());
  ASSERT_TRUE(b->EnterRegion(region).ok());
  ViewRecorder recorder;
  std::unique_ptr<WatchHandle> watch = a->Watch(region, recorder.Callback());
  ASSERT_TRUE(recorder.WaitFor(
      [](const GroupView& view) { return Summary(view) == "a:ACTIVE b:INITIALIZING"; },
      TypeParam::kWaitMax));
  this->backend_.Crash(*b, this->IdOf(*b));
  ASSERT_TRUE(recorder.WaitFor([](const GroupView& view) { return Summary(view) == "a:ACTIVE"; },
                               TypeParam::kWaitMax));
  StatusOr<GroupView> group = a->ReadGroup(region);
  ASSERT_TRUE(group.ok());
  EXPECT_EQ(Summary(*group), "a:ACTIVE");
}

TYPED_TEST_P(RegistryContractTest, DeregisterLeavesEveryRegion) {
  const std::string first = this->NewRegion();
  const std::string second = this->NewRegion();
  auto a = this->Member("a");
  auto b = this->Member("b");
  ASSERT_TRUE(a->EnterRegion(first).ok());
  ASSERT_TRUE(a->EnterRegion(second).ok());
  ASSERT_TRUE(b->EnterRegion(second).ok());
  ViewRecorder recorder;
  std::unique_ptr<WatchHandle> watch = b->Watch(second, recorder.Callback());
  ASSERT_TRUE(a->Deregister().ok());
  EXPECT_TRUE(a->Deregister().ok());
  EXPECT_TRUE(absl::IsFailedPrecondition(a->EnterRegion(this->NewRegion()).status()));
  StatusOr<GroupView> group_first = b->ReadGroup(first);
  StatusOr<GroupView> group_second = b->ReadGroup(second);
  ASSERT_TRUE(group_first.ok() && group_second.ok());
  EXPECT_EQ(Summary(*group_first), "");
  EXPECT_EQ(Summary(*group_second), "b:INITIALIZING");
  EXPECT_TRUE(
      recorder.WaitFor([](const GroupView& view) { return Summary(view) == "b:INITIALIZING"; },
                       TypeParam::kWaitMax));
  // The id is free again only for a new incarnation's registry, not this one.
  MemberInfo next_incarnation;
  next_incarnation.member_id = this->NextId();
  EXPECT_TRUE(absl::IsFailedPrecondition(a->Register(next_incarnation)));
}

TYPED_TEST_P(RegistryContractTest, CancelledWatchGetsNoMoreViews) {
  const std::string region = this->NewRegion();
  auto a = this->Member("a");
  ViewRecorder cancelled;
  ViewRecorder witness;
  std::unique_ptr<WatchHandle> watch = a->Watch(region, cancelled.Callback());
  ASSERT_TRUE(cancelled.WaitFor([](const GroupView&) { return true; }, TypeParam::kWaitMax));
  watch->Cancel();
  watch->Cancel();  // idempotent
  const size_t before = cancelled.views().size();
  std::unique_ptr<WatchHandle> witness_watch = a->Watch(region, witness.Callback());
  ASSERT_TRUE(a->EnterRegion(region).ok());
  ASSERT_TRUE(witness.WaitFor([](const GroupView& view) { return Summary(view) == "a:ACTIVE"; },
                              TypeParam::kWaitMax));
  witness_watch.reset();
  watch.reset();
  EXPECT_EQ(cancelled.views().size(), before);
}

TYPED_TEST_P(RegistryContractTest, WatchMayBeDestroyedFromItsOwnCallback) {
  const std::string region = this->NewRegion();
  auto a = this->Member("a");
  Mutex mutex;
  MutexCondition changed;
  std::unique_ptr<WatchHandle> watch;
  int calls = 0;
  bool destroyed = false;
  {
    MutexLock lock(&mutex);  // the first view waits until `watch` is set
    watch = a->Watch(region, [&](const GroupView& view) {
      std::unique_ptr<WatchHandle> self;
      {
        MutexLock lock(&mutex);
        ++calls;
        if (view.members.empty()) {
          return;
        }
        self = std::move(watch);
      }
      self.reset();  // must neither deadlock nor cut this call short
      MutexLock lock(&mutex);
      destroyed = true;
      changed.SignalAll();
    });
  }
  ASSERT_TRUE(a->EnterRegion(region).ok());
  int calls_then = 0;
  {
    MutexLock lock(&mutex);
    while (!destroyed) {
      ASSERT_TRUE(changed.WaitFor(&mutex, TypeParam::kWaitMax));
    }
    calls_then = calls;
  }
  auto b = this->Member("b");
  ASSERT_TRUE(b->EnterRegion(region).ok());
  ViewRecorder witness;
  std::unique_ptr<WatchHandle> witness_watch = a->Watch(region, witness.Callback());
  ASSERT_TRUE(witness.WaitFor([](const GroupView& view) { return view.members.size() == 2; },
                              TypeParam::kWaitMax));
  MutexLock lock(&mutex);
  EXPECT_EQ(calls, calls_then);
}

TYPED_TEST_P(RegistryContractTest, CancelWaitsForARunningCallback) {
  const std::string region = this->NewRegion();
  auto a = this->Member("a");
  Mutex mutex;
  MutexCondition changed;
  bool entered = false;
  bool release = false;
  std::atomic<bool> finished{false};
  std::unique_ptr<WatchHandle> watch = a->Watch(region, [&](const GroupView&) {
    MutexLock lock(&mutex);
    if (entered) {
      return;
    }
    entered = true;
    changed.SignalAll();
    while (!release) {
      changed.Wait(&mutex);
    }
    finished = true;
  });
  {
    MutexLock lock(&mutex);
    while (!entered) {
      ASSERT_TRUE(changed.WaitFor(&mutex, TypeParam::kWaitMax));
    }
  }
  std::atomic<bool> finished_when_cancel_returned{false};
  std::thread canceller([&] {
    watch.reset();
    finished_when_cancel_returned = finished.load();
  });
  // Give the canceller time to block in Cancel; then let the callback finish.
  std::this_thread::sleep_for(std::chrono::milliseconds(50));
  {
    MutexLock lock(&mutex);
    release = true;
    changed.SignalAll();
  }
  canceller.join();
  EXPECT_TRUE(finished_when_cancel_returned);
}

REGISTER_TYPED_TEST_SUITE_P(
    RegistryContractTest, FirstMemberOfAnEmptyRegionBootstrapsIt,
    LaterMembersJoinAsInitializingAndSeeTheGroup,
    ConcurrentEntriesIntoAnEmptyRegionBootstrapExactlyOnce, ConcurrentJoinersAllJoinTheActiveMember,
    SetStateReturnsTheGroupAsOfThatChange, BecomingActiveWhileAnotherJoinsNeverMissesTheJoiner,
    MisuseGetsClearErrors, UnknownRegionIsAnEmptyGroup,
    LeavingRemovesTheMemberAndAnEmptiedRegionBootstrapsAgain,
    ExpellingRemovesAnotherMemberFromTheRegionOnly,
    OnlyAnActiveMemberExpelsSoTwoCannotExpelEachOther,
    HoldersReFormAGroupWhoseMembersAllLostTheirLeases,
    AHolderJoiningKeepsItsHoldingUntilItGivesItUpOrReForms, AHoldingGivenUpCannotReFormTheGroup,
    LeavingAndDeregisteringGiveUpTheHolding, WatchDeliversEveryChangeInRevisionOrder,
    WatchSeesACrashedMemberVanish, DeregisterLeavesEveryRegion, CancelledWatchGetsNoMoreViews,
    WatchMayBeDestroyedFromItsOwnCallback, CancelWaitsForARunningCallback);

}  // namespace weft::membership
