#include "weft/membership/in_process_registry.h"

#include <utility>

#include "weft/base/logging.h"

#include <fmt/format.h>

namespace weft::membership {

class InProcessRegistryHub::Watch final : public WatchHandle {
 public:
  Watch(InProcessRegistryHub& hub, uint64_t watch_id, std::shared_ptr<WatchTarget> target)
      : hub_(hub), watch_id_(watch_id), target_(std::move(target)) {}
  ~Watch() override { Cancel(); }

  void Cancel() override {
    hub_.CancelWatch(watch_id_);
    target_->gate.Close();
  }

 private:
  InProcessRegistryHub& hub_;
  const uint64_t watch_id_;
  const std::shared_ptr<WatchTarget> target_;
};

InProcessRegistryHub::InProcessRegistryHub(Dispatcher dispatch) : dispatch_(std::move(dispatch)) {
  if (!dispatch_) {
    notifier_ = std::thread([this] { NotifierLoop(); });
  }
}

InProcessRegistryHub::~InProcessRegistryHub() {
  {
    MutexLock lock(&mutex_);
    stopping_ = true;
    tasks_ready_.SignalAll();
  }
  if (notifier_.joinable()) {
    notifier_.join();
  }
}

int64_t InProcessRegistryHub::revision() const {
  MutexLock lock(&mutex_);
  return revision_;
}

bool InProcessRegistryHub::Expire(uint64_t member_id) {
  return RemoveMember(member_id, /*lease_lost=*/true);
}

Status InProcessRegistryHub::RegisterMember(const MemberInfo& info, uint64_t registration,
                                            std::shared_ptr<LeaseLostListener> listener) {
  {
    MutexLock lock(&mutex_);
    if (members_.contains(info.member_id)) {
      return absl::AlreadyExistsError(
          fmt::format("member id {} is already registered", FormatMemberId(info.member_id)));
    }
    members_.emplace(info.member_id, MemberRecord{info, registration, std::move(listener)});
    ++revision_;
  }
  return absl::OkStatus();
}

Status InProcessRegistryHub::RequireMember(uint64_t member_id) const {
  if (!members_.contains(member_id)) {
    return absl::FailedPreconditionError(
        fmt::format("member {} is not registered (deregistered, or its lease expired)",
                    FormatMemberId(member_id)));
  }
  return absl::OkStatus();
}

StatusOr<EnterResult> InProcessRegistryHub::EnterRegion(uint64_t member_id,
                                                        const std::string& region) {
  EnterResult result;
  {
    MutexLock lock(&mutex_);
    WEFT_RETURN_IF_ERROR(RequireMember(member_id));
    std::map<uint64_t, RegionEntry>& group = regions_[region];
    if (group.contains(member_id)) {
      return absl::AlreadyExistsError(
          fmt::format("member {} is already in region {}", FormatMemberId(member_id), region));
    }
    bool has_active = false;
    for (const auto& [id, entry] : group) {
      has_active = has_active || entry.state == MemberState::kActive;
    }
    std::set<uint64_t>& holders = holders_[region];
    const bool holds = holders.contains(member_id);
    result.bootstrapped = !has_active && (holders.empty() || holds);
    result.reformed = result.bootstrapped && holds;
    ++revision_;
    group.emplace(member_id, RegionEntry{result.bootstrapped ? MemberState::kActive
                                                             : MemberState::kInitializing,
                                         revision_});
    if (result.bootstrapped) {
      holders.insert(member_id);
    }
    result.holds = !result.bootstrapped && holds;
    result.group = ViewLocked(region);
    NotifyLocked(region);
  }
  Flush();
  return result;
}

StatusOr<GroupView> InProcessRegistryHub::SetState(uint64_t member_id, const std::string& region,
                                                   MemberState state) {
  GroupView view;
  {
    MutexLock lock(&mutex_);
    WEFT_RETURN_IF_ERROR(RequireMember(member_id));
    auto group = regions_.find(region);
    if (group == regions_.end() || !group->second.contains(member_id)) {
      return absl::FailedPreconditionError(
          fmt::format("member {} is not in region {}", FormatMemberId(member_id), region));
    }
    group->second[member_id].state = state;
    if (state == MemberState::kActive) {
      holders_[region].insert(member_id);
    }
    ++revision_;
    view = ViewLocked(region);
    NotifyLocked(region);
  }
  Flush();
  return view;
}

GroupView InProcessRegistryHub::ReadGroup(const std::string& region) const {
  MutexLock lock(&mutex_);
  return ViewLocked(region);
}

Status InProcessRegistryHub::LeaveRegion(uint64_t member_id, const std::string& region) {
  {
    MutexLock lock(&mutex_);
    WEFT_RETURN_IF_ERROR(RequireMember(member_id));
    holders_[region].erase(member_id);
    auto group = regions_.find(region);
    if (group == regions_.end() || group->second.erase(member_id) == 0) {
      return absl::OkStatus();
    }
    if (group->second.empty()) {
      regions_.erase(group);
    }
    ++revision_;
    NotifyLocked(region);
  }
  Flush();
  return absl::OkStatus();
}

Status InProcessRegistryHub::Expel(uint64_t by, uint64_t member_id, int64_t entered_at,
                                   const std::string& region) {
  {
    MutexLock lock(&mutex_);
    WEFT_RETURN_IF_ERROR(RequireMember(by));
    auto group = regions_.find(region);
    auto self = group == regions_.end() ? decltype(group->second.end()){} : group->second.find(by);
    if (group == regions_.end() || self == group->second.end() ||
        self->second.state != MemberState::kActive) {
      return absl::FailedPreconditionError(
          fmt::format("member {} is not ACTIVE in region {}", FormatMemberId(by), region));
    }
    auto expelled = group->second.find(member_id);
    if (expelled == group->second.end() || expelled->second.entered_at != entered_at) {
      return absl::OkStatus();  // gone already, or entered again since
    }
    holders_[region].erase(member_id);
    group->second.erase(expelled);
    ++revision_;
    NotifyLocked(region);
  }
  Flush();
  return absl::OkStatus();
}

Status InProcessRegistryHub::DropHolder(uint64_t by, uint64_t member_id,
                                        const std::string& region) {
  MutexLock lock(&mutex_);
  WEFT_RETURN_IF_ERROR(RequireMember(by));
  auto group = regions_.find(region);
  if (group == regions_.end() || !group->second.contains(by) ||
      group->second.at(by).state != MemberState::kActive) {
    return absl::FailedPreconditionError(
        fmt::format("member {} is not ACTIVE in region {}", FormatMemberId(by), region));
  }
  holders_[region].erase(member_id);
  return absl::OkStatus();
}

bool InProcessRegistryHub::Holds(const std::string& region, uint64_t member_id) const {
  MutexLock lock(&mutex_);
  auto holders = holders_.find(region);
  return holders != holders_.end() && holders->second.contains(member_id);
}

Status InProcessRegistryHub::GiveUpHolding(uint64_t member_id, const std::string& region) {
  MutexLock lock(&mutex_);
  WEFT_RETURN_IF_ERROR(RequireMember(member_id));
  holders_[region].erase(member_id);
  return absl::OkStatus();
}

StatusOr<GroupView> InProcessRegistryHub::Reform(uint64_t member_id, const std::string& region) {
  GroupView view;
  {
    MutexLock lock(&mutex_);
    WEFT_RETURN_IF_ERROR(RequireMember(member_id));
    auto group = regions_.find(region);
    if (group == regions_.end() || !group->second.contains(member_id)) {
      return absl::FailedPreconditionError(
          fmt::format("member {} is not in region {}", FormatMemberId(member_id), region));
    }
    if (!holders_[region].contains(member_id)) {
      return absl::FailedPreconditionError(
          fmt::format("member {} no longer holds region {}", FormatMemberId(member_id), region));
    }
    for (const auto& [id, entry] : group->second) {
      if (entry.state == MemberState::kActive) {
        return absl::FailedPreconditionError(fmt::format(
            "member {} is ACTIVE in region {}: join from it", FormatMemberId(id), region));
      }
    }
    group->second[member_id].state = MemberState::kActive;
    ++revision_;
    view = ViewLocked(region);
    NotifyLocked(region);
  }
  Flush();
  return view;
}

bool InProcessRegistryHub::RemoveMember(uint64_t member_id, bool lease_lost) {
  {
    MutexLock lock(&mutex_);
    auto member = members_.find(member_id);
    if (member == members_.end()) {
      return false;
    }
    // Like a lease revocation in etcd: every key of the member goes in one revision. A lease
    // that runs out leaves its holdings (registry.h); a member that deregisters gives them up.
    ++revision_;
    if (!lease_lost) {
      for (auto& [region, holders] : holders_) {
        holders.erase(member_id);
      }
    }
    std::vector<std::string> changed;
    for (auto it = regions_.begin(); it != regions_.end();) {
      if (it->second.erase(member_id) == 0) {
        ++it;
        continue;
      }
      changed.push_back(it->first);
      it = it->second.empty() ? regions_.erase(it) : std::next(it);
    }
    for (const std::string& region : changed) {
      NotifyLocked(region);
    }
    if (lease_lost) {
      WEFT_LOG_WARN("in-process registry: the lease of member {} ({}) expired",
                    FormatMemberId(member_id), member->second.info.name);
      tasks_.push_back(
          [listener = member->second.listener, registration = member->second.registration] {
            listener->gate.Run([&listener, registration] {
              Registry::LeaseLostCallback callback;
              {
                MutexLock lock(&listener->mutex);
                callback = listener->callback;
              }
              if (callback) {
                callback(registration);
              }
            });
          });
      tasks_ready_.SignalAll();
    }
    members_.erase(member);
  }
  Flush();
  return true;
}

std::unique_ptr<WatchHandle> InProcessRegistryHub::AddWatch(
    const std::string& region, std::function<void(const GroupView&)> on_change) {
  auto target = std::make_shared<WatchTarget>();
  target->region = region;
  target->on_change = std::move(on_change);
  uint64_t watch_id = 0;
  {
    MutexLock lock(&mutex_);
    watch_id = next_watch_id_++;
    watches_.emplace(watch_id, target);
    tasks_.push_back([target, view = ViewLocked(region)] {
      target->gate.Run([&] { target->on_change(view); });
    });
    tasks_ready_.SignalAll();
  }
  Flush();
  return std::make_unique<Watch>(*this, watch_id, std::move(target));
}

void InProcessRegistryHub::CancelWatch(uint64_t watch_id) {
  MutexLock lock(&mutex_);
  watches_.erase(watch_id);
}

GroupView InProcessRegistryHub::ViewLocked(const std::string& region) const {
  GroupView view;
  view.region = region;
  view.revision = revision_;
  auto group = regions_.find(region);
  if (group == regions_.end()) {
    return view;
  }
  view.members.reserve(group->second.size());
  for (const auto& [id, entry] : group->second) {  // std::map: ascending member ids
    view.members.push_back(GroupMember{members_.at(id).info, entry.state, entry.entered_at});
  }
  return view;
}

void InProcessRegistryHub::NotifyLocked(const std::string& region) {
  bool queued = false;
  std::optional<GroupView> view;
  for (const auto& entry : watches_) {
    const std::shared_ptr<WatchTarget>& target = entry.second;
    if (target->region != region) {
      continue;
    }
    if (!view) {
      view = ViewLocked(region);
    }
    tasks_.push_back(
        [target, view = *view] { target->gate.Run([&] { target->on_change(view); }); });
    queued = true;
  }
  if (queued) {
    tasks_ready_.SignalAll();
  }
}

void InProcessRegistryHub::Flush() {
  if (!dispatch_) {
    return;  // the notifier thread was signalled when the tasks were queued
  }
  // One caller at a time hands tasks over, in queue order; a task that changes the registry
  // from inside the dispatcher queues more, which the same loop hands over next.
  mutex_.Lock();
  if (dispatching_) {
    mutex_.Unlock();
    return;
  }
  dispatching_ = true;
  while (!tasks_.empty()) {
    std::function<void()> task = std::move(tasks_.front());
    tasks_.pop_front();
    mutex_.Unlock();
    dispatch_(std::move(task));
    mutex_.Lock();
  }
  dispatching_ = false;
  mutex_.Unlock();
}

void InProcessRegistryHub::NotifierLoop() {
  mutex_.Lock();
  while (true) {
    while (tasks_.empty() && !stopping_) {
      tasks_ready_.Wait(&mutex_);
    }
    if (stopping_) {
      break;
    }
    std::function<void()> task = std::move(tasks_.front());
    tasks_.pop_front();
    mutex_.Unlock();
    task();
    task = nullptr;  // destroy captured views outside the lock
    mutex_.Lock();
  }
  mutex_.Unlock();
}

InProcessRegistry::InProcessRegistry(InProcessRegistryHub& hub)
    : hub_(hub), listener_(std::make_shared<InProcessRegistryHub::LeaseLostListener>()) {}

InProcessRegistry::~InProcessRegistry() {
  listener_->gate.Close();
}

StatusOr<uint64_t> InProcessRegistry::SelfId() const {
  MutexLock lock(&mutex_);
  if (!self_id_) {
    return absl::FailedPreconditionError(deregistered_ ? "this member has deregistered"
                                                       : "Register has not been called");
  }
  return *self_id_;
}

Status InProcessRegistry::Register(const MemberInfo& self) {
  if (self.member_id == 0) {
    return absl::InvalidArgumentError("member id 0 is reserved");
  }
  MutexLock lock(&mutex_);
  if (self_id_ || deregistered_) {
    return absl::FailedPreconditionError("Register may be called only once per registry");
  }
  WEFT_RETURN_IF_ERROR(hub_.RegisterMember(self, 1, listener_));
  registration_ = 1;
  self_id_ = self.member_id;
  self_info_ = self;
  return absl::OkStatus();
}

StatusOr<uint64_t> InProcessRegistry::Reregister() {
  MutexLock lock(&mutex_);
  if (!self_id_ || deregistered_) {
    return absl::FailedPreconditionError("Reregister needs a registered member");
  }
  const Status registered = hub_.RegisterMember(self_info_, registration_ + 1, listener_);
  if (absl::IsAlreadyExists(registered)) {
    return registration_;  // still registered (the lease was never lost): nothing to do
  }
  WEFT_RETURN_IF_ERROR(registered);
  return ++registration_;
}

Status InProcessRegistry::DropHolder(const std::string& region, uint64_t member_id) {
  WEFT_RETURN_IF_ERROR(ValidateRegionName(region));
  WEFT_ASSIGN_OR_RETURN(const uint64_t self, SelfId());
  return hub_.DropHolder(self, member_id, region);
}

StatusOr<EnterResult> InProcessRegistry::EnterRegion(const std::string& region) {
  WEFT_RETURN_IF_ERROR(ValidateRegionName(region));
  WEFT_ASSIGN_OR_RETURN(uint64_t self_id, SelfId());
  return hub_.EnterRegion(self_id, region);
}

Status InProcessRegistry::GiveUpHolding(const std::string& region) {
  WEFT_RETURN_IF_ERROR(ValidateRegionName(region));
  WEFT_ASSIGN_OR_RETURN(uint64_t self_id, SelfId());
  return hub_.GiveUpHolding(self_id, region);
}

StatusOr<GroupView> InProcessRegistry::Reform(const std::string& region) {
  WEFT_RETURN_IF_ERROR(ValidateRegionName(region));
  WEFT_ASSIGN_OR_RETURN(uint64_t self_id, SelfId());
  return hub_.Reform(self_id, region);
}

StatusOr<GroupView> InProcessRegistry::SetState(const std::string& region, MemberState state) {
  WEFT_RETURN_IF_ERROR(ValidateRegionName(region));
  WEFT_ASSIGN_OR_RETURN(uint64_t self_id, SelfId());
  return hub_.SetState(self_id, region, state);
}

StatusOr<GroupView> InProcessRegistry::ReadGroup(const std::string& region) {
  WEFT_RETURN_IF_ERROR(ValidateRegionName(region));
  return hub_.ReadGroup(region);
}

Status InProcessRegistry::LeaveRegion(const std::string& region) {
  WEFT_RETURN_IF_ERROR(ValidateRegionName(region));
  WEFT_ASSIGN_OR_RETURN(uint64_t self_id, SelfId());
  return hub_.LeaveRegion(self_id, region);
}

Status InProcessRegistry::ExpelFromRegion(const std::string& region, uint64_t member_id,
                                          int64_t entered_at) {
  WEFT_RETURN_IF_ERROR(ValidateRegionName(region));
  WEFT_ASSIGN_OR_RETURN(const uint64_t self, SelfId());
  return hub_.Expel(self, member_id, entered_at, region);
}

std::unique_ptr<WatchHandle> InProcessRegistry::Watch(
    const std::string& region, std::function<void(const GroupView&)> on_change) {
  if (Status valid = ValidateRegionName(region); !valid.ok()) {
    WEFT_LOG_ERROR("in-process registry: cannot watch: {}", valid.ToString());
    return nullptr;
  }
  return hub_.AddWatch(region, std::move(on_change));
}

Status InProcessRegistry::Deregister() {
  MutexLock lock(&mutex_);
  if (self_id_) {
    hub_.RemoveMember(*self_id_, /*lease_lost=*/false);
    self_id_.reset();
  }
  deregistered_ = true;
  return absl::OkStatus();
}

void InProcessRegistry::SetLeaseLostCallback(LeaseLostCallback on_lease_lost) {
  MutexLock lock(&listener_->mutex);
  listener_->callback = std::move(on_lease_lost);
}

}  // namespace weft::membership
