// InProcessRegistry: a Registry for members that live in one process (demo, tests, the
// deterministic simulator), with the same semantics as EtcdRegistry.
//
// The shared state (members, regions, the revision counter, watches) lives in an
// InProcessRegistryHub; each member gets its own InProcessRegistry bound to the hub, so that
// Register/EnterRegion know "self". Every change is one critical section of the hub, which
// makes EnterRegion and SetState atomic exactly as an etcd transaction is, and bumps the hub's
// revision once.
//
// Watch delivery: each change queues one task per watch of the region (holding the view as of
// that change). By default a hub-owned notifier thread runs them in revision order. A hub built
// with a `dispatch` function hands every task to it instead, in revision order, outside hub
// locks (a deterministic simulator runs them itself); the dispatcher must run the tasks it is
// given one at a time in the order given, and may run them inline. The queue holds one task per
// (watch, change): membership changes are few, so it is not bounded; a callback that blocks
// forever stalls every later delivery of the hub.
//
// Crashes: a member whose process died keeps its entries until its lease would run out;
// hub.Expire(member_id) models that moment (removes it from every region in one revision,
// notifies watchers, and calls its lease-lost callback). Destroying an InProcessRegistry without
// Deregister is such a crash: its entries stay until Expire.
//
// Thread safety: all methods of both classes are safe from any thread. REQUIRES: the hub
// outlives every registry and watch handle bound to it.
#pragma once

#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <thread>

#include "absl/base/thread_annotations.h"

#include "weft/base/mutex.h"
#include "weft/membership/callback_gate.h"
#include "weft/membership/registry.h"

namespace weft::membership {

class InProcessRegistry;

class InProcessRegistryHub {
 public:
  using Dispatcher = std::function<void(std::function<void()>)>;

  // An empty `dispatch` starts the hub's own notifier thread.
  explicit InProcessRegistryHub(Dispatcher dispatch = nullptr);
  // Stops the notifier thread (undelivered tasks are dropped).
  ~InProcessRegistryHub();
  InProcessRegistryHub(const InProcessRegistryHub&) = delete;
  InProcessRegistryHub& operator=(const InProcessRegistryHub&) = delete;

  // Models the lease of `member_id` running out: the member leaves every region (one revision)
  // and is forgotten; watchers see it vanish; its registry's lease-lost callback runs. Returns
  // false if no such member is registered.
  bool Expire(uint64_t member_id);

  // The latest revision (0 before any change).
  int64_t revision() const;
  // Whether `member_id` holds `region` (registry.h, holders): for tests and the simulator.
  bool Holds(const std::string& region, uint64_t member_id) const;

 private:
  friend class InProcessRegistry;
  class Watch;

  // Shared by a registry and the tasks that call its lease-lost callback: a task queued before
  // the registry is destroyed may run after; the gate then refuses it.
  struct LeaseLostListener {
    CallbackGate gate;
    Mutex mutex;
    Registry::LeaseLostCallback callback ABSL_GUARDED_BY(mutex);
  };

  struct MemberRecord {
    MemberInfo info;
    uint64_t registration = 0;  // see Registry::Reregister
    std::shared_ptr<LeaseLostListener> listener;
  };

  // Shared by a watch handle and the queued tasks that deliver to it (a task may outlive the
  // handle; the gate then refuses it).
  struct WatchTarget {
    std::string region;
    std::function<void(const GroupView&)> on_change;
    CallbackGate gate;
  };

  Status RegisterMember(const MemberInfo& info, uint64_t registration,
                        std::shared_ptr<LeaseLostListener> listener);
  StatusOr<EnterResult> EnterRegion(uint64_t member_id, const std::string& region);
  StatusOr<GroupView> SetState(uint64_t member_id, const std::string& region, MemberState state);
  GroupView ReadGroup(const std::string& region) const;
  Status LeaveRegion(uint64_t member_id, const std::string& region);
  // Removes `member_id` from `region` if `by` is ACTIVE there (one critical section).
  Status Expel(uint64_t by, uint64_t member_id, int64_t entered_at, const std::string& region);
  Status DropHolder(uint64_t by, uint64_t member_id, const std::string& region);
  Status GiveUpHolding(uint64_t member_id, const std::string& region);
  StatusOr<GroupView> Reform(uint64_t member_id, const std::string& region);
  std::unique_ptr<WatchHandle> AddWatch(const std::string& region,
                                        std::function<void(const GroupView&)> on_change);
  void CancelWatch(uint64_t watch_id);
  // Removes the member from everything; queues its lease-lost callback if `lease_lost`.
  bool RemoveMember(uint64_t member_id, bool lease_lost);

  Status RequireMember(uint64_t member_id) const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mutex_);
  GroupView ViewLocked(const std::string& region) const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mutex_);
  // Queues the region's current view for each of its watches.
  void NotifyLocked(const std::string& region) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mutex_);
  // Hands queued tasks to the dispatcher or wakes the notifier. Call without mutex_ held.
  void Flush() ABSL_LOCKS_EXCLUDED(mutex_);
  void NotifierLoop();

  const Dispatcher dispatch_;

  mutable Mutex mutex_;
  MutexCondition tasks_ready_;
  int64_t revision_ ABSL_GUARDED_BY(mutex_) = 0;
  std::map<uint64_t, MemberRecord> members_ ABSL_GUARDED_BY(mutex_);
  // region → member id → state. A region with no members is erased.
  struct RegionEntry {
    MemberState state = MemberState::kInitializing;
    int64_t entered_at = 0;
  };
  std::map<std::string, std::map<uint64_t, RegionEntry>> regions_ ABSL_GUARDED_BY(mutex_);
  // region → the members holding a complete copy (beyond leases; registry.h).
  std::map<std::string, std::set<uint64_t>> holders_ ABSL_GUARDED_BY(mutex_);
  uint64_t next_watch_id_ ABSL_GUARDED_BY(mutex_) = 1;
  std::map<uint64_t, std::shared_ptr<WatchTarget>> watches_ ABSL_GUARDED_BY(mutex_);
  std::deque<std::function<void()>> tasks_ ABSL_GUARDED_BY(mutex_);
  bool dispatching_ ABSL_GUARDED_BY(mutex_) = false;
  bool stopping_ ABSL_GUARDED_BY(mutex_) = false;
  std::thread notifier_;
};

// One member's view of an InProcessRegistryHub. See Registry for each method's contract.
class InProcessRegistry final : public Registry {
 public:
  explicit InProcessRegistry(InProcessRegistryHub& hub);
  // Does not deregister (that models a crash; see the file comment). Waits for a running
  // lease-lost callback.
  ~InProcessRegistry() override;

  Status Register(const MemberInfo& self) override;
  StatusOr<EnterResult> EnterRegion(const std::string& region) override;
  StatusOr<GroupView> SetState(const std::string& region, MemberState state) override;
  StatusOr<GroupView> ReadGroup(const std::string& region) override;
  Status LeaveRegion(const std::string& region) override;
  Status ExpelFromRegion(const std::string& region, uint64_t member_id,
                         int64_t entered_at) override;
  Status DropHolder(const std::string& region, uint64_t member_id) override;
  Status GiveUpHolding(const std::string& region) override;
  StatusOr<GroupView> Reform(const std::string& region) override;
  StatusOr<uint64_t> Reregister() override;
  std::unique_ptr<WatchHandle> Watch(const std::string& region,
                                     std::function<void(const GroupView&)> on_change) override;
  Status Deregister() override;
  void SetLeaseLostCallback(LeaseLostCallback on_lease_lost) override;

 private:
  // The registered member id, or FailedPrecondition.
  StatusOr<uint64_t> SelfId() const;

  InProcessRegistryHub& hub_;
  const std::shared_ptr<InProcessRegistryHub::LeaseLostListener> listener_;
  mutable Mutex mutex_;
  std::optional<uint64_t> self_id_ ABSL_GUARDED_BY(mutex_);
  MemberInfo self_info_ ABSL_GUARDED_BY(mutex_);
  uint64_t registration_ ABSL_GUARDED_BY(mutex_) = 0;
  bool deregistered_ ABSL_GUARDED_BY(mutex_) = false;
};

}  // namespace weft::membership
