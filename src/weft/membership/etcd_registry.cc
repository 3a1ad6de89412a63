#include "weft/membership/etcd_registry.h"

#include <algorithm>
#include <charconv>
#include <map>
#include <utility>

#include "weft/base/logging.h"
#include "weft/base/thread_name.h"
#include "weft/membership/etcd_layout.h"

#include <fmt/format.h>

namespace weft::membership {

using std::chrono::milliseconds;
using std::chrono::steady_clock;

StatusOr<std::string> ParseEtcdUrl(std::string_view url) {
  constexpr std::string_view kScheme = "etcd://";
  if (url.substr(0, kScheme.size()) != kScheme) {
    return absl::InvalidArgumentError(
        fmt::format("registry URL '{}' does not start with etcd://", url));
  }
  std::string_view endpoint = url.substr(kScheme.size());
  if (!endpoint.empty() && endpoint.back() == '/') {
    endpoint.remove_suffix(1);
  }
  const size_t colon = endpoint.rfind(':');
  int port = 0;
  if (colon == std::string_view::npos || colon == 0) {
    return absl::InvalidArgumentError(fmt::format("registry URL '{}' needs host:port", url));
  }
  const std::string_view port_text = endpoint.substr(colon + 1);
  const auto [end, error] =
      std::from_chars(port_text.data(), port_text.data() + port_text.size(), port);
  if (port_text.empty() || error != std::errc() || end != port_text.data() + port_text.size() ||
      port <= 0 || port > 65535) {
    return absl::InvalidArgumentError(fmt::format("registry URL '{}' has a bad port", url));
  }
  return std::string(endpoint);
}

// Shared by the watch's thread and its handle: a handle cancelled from inside the callback is
// destroyed while the thread still runs to its end.
class EtcdRegistry::WatchWorker {
 public:
  WatchWorker(std::string region_name, std::function<void(const GroupView&)> callback)
      : region(std::move(region_name)), on_change(std::move(callback)) {}

  const std::string region;
  const std::function<void(const GroupView&)> on_change;
  CallbackGate gate;
  EtcdInterrupt interrupt;
};

class EtcdRegistry::EtcdWatch final : public WatchHandle {
 public:
  EtcdWatch(EtcdRegistry& registry, std::shared_ptr<WatchWorker> worker, std::thread thread)
      : registry_(registry), worker_(std::move(worker)), thread_(std::move(thread)) {}
  ~EtcdWatch() override { Cancel(); }

  void Cancel() override {
    MutexLock lock(&mutex_);
    if (!thread_.joinable()) {
      return;
    }
    worker_->gate.Close();
    worker_->interrupt.Interrupt();
    if (thread_.get_id() == std::this_thread::get_id()) {
      registry_.AdoptFinishingThread(std::move(thread_));
    } else {
      thread_.join();
    }
  }

 private:
  EtcdRegistry& registry_;
  const std::shared_ptr<WatchWorker> worker_;
  Mutex mutex_;
  std::thread thread_ ABSL_GUARDED_BY(mutex_);
};

StatusOr<std::unique_ptr<EtcdRegistry>> EtcdRegistry::Create(EtcdRegistryOptions options) {
  if (options.endpoint.empty() || options.endpoint.find(':') == std::string::npos) {
    return absl::InvalidArgumentError(
        fmt::format("etcd endpoint '{}' is not host:port", options.endpoint));
  }
  WEFT_RETURN_IF_ERROR(etcd_layout::ValidateClusterName(options.cluster));
  if (options.lease_ttl_s < 1) {
    return absl::InvalidArgumentError("lease_ttl_s must be at least 1");
  }
  if (options.connect_timeout_ms <= 0 || options.request_timeout_ms <= 0 ||
      options.watch_retry_ms <= 0 || options.watch_retry_ms_max < options.watch_retry_ms ||
      options.enter_attempts_max < 1) {
    return absl::InvalidArgumentError("etcd registry timeouts and limits must be positive");
  }
  return std::make_unique<EtcdRegistry>(std::move(options));
}

EtcdRegistry::EtcdRegistry(EtcdRegistryOptions options)
    : options_(std::move(options)),
      client_(EtcdClientOptions{.endpoint = options_.endpoint,
                                .connect_timeout_ms = options_.connect_timeout_ms,
                                .request_timeout_ms = options_.request_timeout_ms}) {}

EtcdRegistry::~EtcdRegistry() {
  StopKeepAliveThread();
  std::vector<std::thread> finishing;
  {
    MutexLock lock(&mutex_);
    finishing.swap(finishing_threads_);
  }
  for (std::thread& thread : finishing) {
    thread.join();
  }
}

int64_t EtcdRegistry::lease_id() const {
  MutexLock lock(&mutex_);
  return self_ ? self_->lease_id : 0;
}

int64_t EtcdRegistry::lease_ttl_s() const {
  MutexLock lock(&mutex_);
  return lease_ttl_s_;
}

void EtcdRegistry::SetLeaseLostCallback(LeaseLostCallback on_lease_lost) {
  MutexLock lock(&mutex_);
  on_lease_lost_ = std::move(on_lease_lost);
}

StatusOr<EtcdRegistry::Self> EtcdRegistry::RequireSelf() const {
  MutexLock lock(&mutex_);
  if (deregistered_) {
    return absl::FailedPreconditionError("this member has deregistered");
  }
  if (!self_) {
    return absl::FailedPreconditionError("Register has not been called");
  }
  if (lease_lost_) {
    return absl::FailedPreconditionError(
        fmt::format("member {} lost its lease {:x}; it is no longer a member",
                    FormatMemberId(self_->info.member_id), self_->lease_id));
  }
  return *self_;
}

Status EtcdRegistry::LeaseAware(Status status) const {
  if (absl::IsNotFound(status) &&
      status.message().find("lease not found") != absl::string_view::npos) {
    return absl::FailedPreconditionError(fmt::format(
        "this member's lease is gone (expired or revoked): {}", std::string(status.message())));
  }
  return status;
}

Status EtcdRegistry::Register(const MemberInfo& self) {
  if (self.member_id == 0) {
    return absl::InvalidArgumentError("member id 0 is reserved");
  }
  MutexLock lifecycle(&lifecycle_mutex_);
  {
    MutexLock lock(&mutex_);
    if (self_ || deregistered_) {
      return absl::FailedPreconditionError("Register may be called only once per registry");
    }
  }
  const steady_clock::time_point granted_at = steady_clock::now();
  WEFT_ASSIGN_OR_RETURN(EtcdLease lease, client_.GrantLease(options_.lease_ttl_s));
  const std::string key = etcd_layout::MemberKey(options_.cluster, self.member_id);
  StatusOr<EtcdTxnResult> txn = client_.Txn(
      {EtcdCompare::Number(key, EtcdCompare::Target::kCreate, EtcdCompare::Result::kEqual, 0)},
      {EtcdOp::Put(key, etcd_layout::EncodeMember(self, std::nullopt), lease.id)}, {});
  if (!txn.ok() || !txn->succeeded) {
    client_.RevokeLease(lease.id).IgnoreError();  // best effort; it expires anyway
    if (!txn.ok()) {
      return txn.status();
    }
    return absl::AlreadyExistsError(fmt::format("member id {} is already registered in {}",
                                                FormatMemberId(self.member_id), key));
  }
  MutexLock lock(&mutex_);
  self_ = Self{self, lease.id};
  lease_ttl_s_ = lease.ttl_s;
  keepalive_ = std::thread([this, id = lease.id, ttl_s = lease.ttl_s, granted_at] {
    SetThreadName("weft-lease");
    KeepAliveLoop(id, ttl_s, granted_at);
  });
  WEFT_LOG_INFO("etcd registry: member {} ({}) registered at {} with lease {:x} (TTL {} s)",
                FormatMemberId(self.member_id), self.name, options_.endpoint, lease.id,
                lease.ttl_s);
  return absl::OkStatus();
}

void EtcdRegistry::KeepAliveLoop(int64_t lease_id, int64_t ttl_s,
                                 steady_clock::time_point granted_at) {
  // etcd extends the lease to `ttl` from when it handles a renewal, which is after the request
  // started: the start time is a safe lower bound of the lease's life.
  milliseconds ttl(ttl_s * 1000);
  steady_clock::time_point renewed_at = granted_at;
  steady_clock::time_point next = renewed_at + ttl / 3;
  bool failing = false;
  steady_clock::time_point last_warned;
  std::string reason;
  while (true) {
    {
      MutexLock lock(&mutex_);
      while (!keepalive_stop_ && steady_clock::now() < next) {
        keepalive_wake_.WaitUntil(&mutex_, next);
      }
      if (keepalive_stop_) {
        return;
      }
    }
    const steady_clock::time_point started = steady_clock::now();
    const int64_t timeout_ms =
        std::max<int64_t>(200, std::min<int64_t>(options_.request_timeout_ms, ttl.count() / 3));
    StatusOr<int64_t> remaining_s = client_.KeepAliveOnce(lease_id, &keepalive_abort_, timeout_ms);
    if (keepalive_abort_.load()) {
      return;
    }
    if (remaining_s.ok() && *remaining_s > 0) {
      if (failing) {
        WEFT_LOG_INFO("etcd registry: lease {:x} renewed again at {}", lease_id, options_.endpoint);
        failing = false;
      }
      renewed_at = started;
      ttl = milliseconds(*remaining_s * 1000);
      next = renewed_at + ttl / 3;
      continue;
    }
    if (remaining_s.ok()) {
      reason = "etcd says the lease no longer exists";
      break;
    }
    // etcd cannot be reached. Its leases do not run out while it is down, and a new leader
    // gives every lease a fresh TTL, so only etcd's own answer says whether this member lost
    // its place: never this member's clock (DESIGN §6). Keep trying, and say so now and then.
    const steady_clock::time_point now = steady_clock::now();
    if (!failing || now - last_warned >= std::chrono::seconds(10)) {
      WEFT_LOG_WARN(
          "etcd registry: cannot renew lease {:x} for {} ms: {}; retrying (only etcd's answer "
          "can end this member's registration)",
          lease_id, std::chrono::duration_cast<milliseconds>(now - renewed_at).count(),
          remaining_s.status().ToString());
      last_warned = now;
    }
    failing = true;
    next = now + std::min(milliseconds(500), std::max(milliseconds(100), ttl / 6));
  }
  LeaseLost(reason);
}

void EtcdRegistry::LeaseLost(const std::string& reason) {
  LeaseLostCallback callback;
  MemberInfo info;
  int64_t lease_id = 0;
  uint64_t registration = 0;
  {
    MutexLock lock(&mutex_);
    if (lease_lost_ || keepalive_stop_ || !self_) {
      return;
    }
    lease_lost_ = true;
    callback = on_lease_lost_;
    info = self_->info;
    lease_id = self_->lease_id;
    registration = self_->registration;
  }
  WEFT_LOG_ERROR(
      "etcd registry: member {} ({}) LOST ITS LEASE {:x} at {}: {}. It has vanished "
      "from every region and must stop acting as a member.",
      FormatMemberId(info.member_id), info.name, lease_id, options_.endpoint, reason);
  if (callback) {
    callback(registration);
  }
}

void EtcdRegistry::StopKeepAliveThread() {
  std::thread thread;
  {
    MutexLock lock(&mutex_);
    keepalive_stop_ = true;
    keepalive_abort_.store(true);
    keepalive_wake_.SignalAll();
    // From inside the lease-lost callback (on the keep-alive thread) the thread cannot join
    // itself; it ends when the callback returns and the destructor joins it.
    if (keepalive_.joinable() && keepalive_.get_id() != std::this_thread::get_id()) {
      thread = std::move(keepalive_);
    }
  }
  if (thread.joinable()) {
    thread.join();
  }
}

void EtcdRegistry::StopKeepAlive() {
  StopKeepAliveThread();
}

void EtcdRegistry::AdoptFinishingThread(std::thread thread) {
  MutexLock lock(&mutex_);
  finishing_threads_.push_back(std::move(thread));
}

Status EtcdRegistry::Deregister() {
  MutexLock lifecycle(&lifecycle_mutex_);
  int64_t lease_id = 0;
  bool lease_lost = false;
  MemberInfo info;
  {
    MutexLock lock(&mutex_);
    if (deregistered_) {
      return absl::OkStatus();
    }
    deregistered_ = true;
    if (!self_) {
      return absl::OkStatus();
    }
    lease_id = self_->lease_id;
    lease_lost = lease_lost_;
    info = self_->info;
  }
  StopKeepAliveThread();
  std::set<std::string> entered;
  {
    MutexLock lock(&mutex_);
    entered.swap(entered_);
  }
  // A member that shuts down gives up the copies it held (its lease takes its region entries).
  for (const std::string& region : entered) {
    client_.DeleteRange(etcd_layout::HolderKey(options_.cluster, region, info.member_id), "")
        .status()
        .IgnoreError();
  }
  Status status = lease_lost ? absl::OkStatus() : client_.RevokeLease(lease_id);
  {
    MutexLock lock(&mutex_);
    self_.reset();
  }
  if (absl::IsNotFound(status)) {
    status = absl::OkStatus();  // already expired: its keys are gone too
  }
  if (!status.ok()) {
    return Status(status.code(),
                  fmt::format("could not revoke lease {:x} (the member vanishes after its TTL "
                              "instead): {}",
                              lease_id, std::string(status.message())));
  }
  WEFT_LOG_INFO("etcd registry: member {} ({}) deregistered", FormatMemberId(info.member_id),
                info.name);
  return absl::OkStatus();
}

std::vector<EtcdRegistry::StoredMember> EtcdRegistry::DecodeGroup(
    std::string_view prefix, const std::vector<EtcdKeyValue>& kvs) {
  std::vector<StoredMember> members;
  members.reserve(kvs.size());
  for (const EtcdKeyValue& kv : kvs) {
    const std::string_view key = kv.key;
    if (key.substr(0, prefix.size()) != prefix) {
      continue;
    }
    const std::optional<uint64_t> id = etcd_layout::ParseMemberId(key.substr(prefix.size()));
    if (!id) {
      WEFT_LOG_WARN("etcd registry: ignoring unexpected key {}", key);
      continue;
    }
    StatusOr<GroupMember> member = etcd_layout::DecodeRegionMember(kv.value);
    if (!member.ok() || member->info.member_id != *id) {
      WEFT_LOG_WARN("etcd registry: ignoring malformed member at {}: {}", key,
                    member.ok() ? "member_id differs from the key" : member.status().ToString());
      continue;
    }
    member->entered_at = kv.create_revision;
    members.push_back(StoredMember{*std::move(member), kv.key, kv.mod_revision});
  }
  std::sort(members.begin(), members.end(), [](const StoredMember& a, const StoredMember& b) {
    return a.member.info.member_id < b.member.info.member_id;
  });
  return members;
}

GroupView EtcdRegistry::MakeView(const std::string& region, int64_t revision,
                                 const std::vector<StoredMember>& members) {
  GroupView view;
  view.region = region;
  view.revision = revision;
  view.members.reserve(members.size());
  for (const StoredMember& stored : members) {
    view.members.push_back(stored.member);
  }
  return view;
}

StatusOr<EnterResult> EtcdRegistry::EnterRegion(const std::string& region) {
  WEFT_RETURN_IF_ERROR(ValidateRegionName(region));
  WEFT_ASSIGN_OR_RETURN(Self self, RequireSelf());
  const std::string prefix = etcd_layout::RegionPrefix(options_.cluster, region);
  const std::string end = etcd_layout::PrefixEnd(prefix);
  const std::string holders_prefix = etcd_layout::HoldersPrefix(options_.cluster, region);
  const std::string holders_end = etcd_layout::PrefixEnd(holders_prefix);
  const std::string self_key =
      etcd_layout::RegionMemberKey(options_.cluster, region, self.info.member_id);
  const std::string self_holder =
      etcd_layout::HolderKey(options_.cluster, region, self.info.member_id);
  // The group and its holders, read at one revision.
  StatusOr<EtcdTxnResult> read =
      client_.Txn({}, {EtcdOp::Range(prefix, end), EtcdOp::Range(holders_prefix, holders_end)}, {});
  if (!read.ok()) {
    return LeaseAware(read.status());
  }
  EtcdRangeResult range = std::move(read->responses[0]);
  EtcdRangeResult holders = std::move(read->responses[1]);
  for (int attempt = 0; attempt < options_.enter_attempts_max; ++attempt) {
    const std::vector<StoredMember> members = DecodeGroup(prefix, range.kvs);
    const StoredMember* active = nullptr;
    for (const StoredMember& stored : members) {
      if (stored.member.info.member_id == self.info.member_id) {
        return absl::AlreadyExistsError(fmt::format("member {} is already in region {}",
                                                    FormatMemberId(self.info.member_id), region));
      }
      if (active == nullptr && stored.member.state == MemberState::kActive) {
        active = &stored;
      }
    }
    bool holds = false;
    for (const EtcdKeyValue& kv : holders.kvs) {
      holds |= kv.key == self_holder;
    }
    // An ACTIVE member A: join if A's key is unchanged since (still there, still ACTIVE).
    // No ACTIVE member, and nobody holds the region or this member does: enter ACTIVE
    // (bootstrap, or re-form from this member's own copy) if nothing in the region or its
    // holders changed since the read (every key's mod_revision <= r; an empty range compares as
    // one absent key and passes). No ACTIVE member, others hold it: join and wait for a holder,
    // if still nobody is ACTIVE.
    std::vector<EtcdCompare> compares;
    MemberState state = MemberState::kInitializing;
    if (active != nullptr) {
      compares.push_back(EtcdCompare::Number(active->key, EtcdCompare::Target::kMod,
                                             EtcdCompare::Result::kEqual, active->mod_revision));
    } else {
      compares.push_back(EtcdCompare::Number(prefix, EtcdCompare::Target::kMod,
                                             EtcdCompare::Result::kLess, range.revision + 1, end));
      if (holders.kvs.empty() || holds) {
        state = MemberState::kActive;
        compares.push_back(EtcdCompare::Number(holders_prefix, EtcdCompare::Target::kMod,
                                               EtcdCompare::Result::kLess, range.revision + 1,
                                               holders_end));
      }
    }
    std::vector<EtcdOp> ops = {
        EtcdOp::Put(self_key, etcd_layout::EncodeMember(self.info, state), self.lease_id)};
    if (state == MemberState::kActive && !holds) {
      ops.push_back(EtcdOp::Put(self_holder, "", 0));
    }
    const size_t range_index = ops.size();
    ops.push_back(EtcdOp::Range(prefix, end));
    StatusOr<EtcdTxnResult> txn = client_.Txn(
        compares, ops, {EtcdOp::Range(prefix, end), EtcdOp::Range(holders_prefix, holders_end)});
    if (!txn.ok()) {
      return LeaseAware(txn.status());
    }
    if (txn->succeeded) {
      EnterResult result;
      result.bootstrapped = state == MemberState::kActive;
      result.reformed = result.bootstrapped && holds;
      result.holds = !result.bootstrapped && holds;
      result.group =
          MakeView(region, txn->revision, DecodeGroup(prefix, txn->responses[range_index].kvs));
      {
        MutexLock lock(&mutex_);
        entered_.insert(region);
      }
      WEFT_LOG_INFO("etcd registry: member {} entered region {} as {}{} (revision {})",
                    FormatMemberId(self.info.member_id), region, MemberStateName(state),
                    result.reformed ? ", re-forming it from its own copy" : "", txn->revision);
      return result;
    }
    // Someone else's entry or state change committed first; decide again on the fresh group.
    WEFT_LOG_DEBUG("etcd registry: region {} changed under entry attempt {} of member {}; retrying",
                   region, attempt + 1, FormatMemberId(self.info.member_id));
    range = std::move(txn->responses[0]);
    holders = std::move(txn->responses[1]);
  }
  return absl::AbortedError(fmt::format("region {} kept changing during {} attempts to enter it",
                                        region, options_.enter_attempts_max));
}

StatusOr<GroupView> EtcdRegistry::SetState(const std::string& region, MemberState state) {
  WEFT_RETURN_IF_ERROR(ValidateRegionName(region));
  WEFT_ASSIGN_OR_RETURN(Self self, RequireSelf());
  const std::string prefix = etcd_layout::RegionPrefix(options_.cluster, region);
  const std::string end = etcd_layout::PrefixEnd(prefix);
  const std::string self_key =
      etcd_layout::RegionMemberKey(options_.cluster, region, self.info.member_id);
  // Only while our key exists (create_revision > 0): a member that left, or whose key vanished
  // with its lease, must enter again instead of reappearing.
  std::vector<EtcdOp> ops = {
      EtcdOp::Put(self_key, etcd_layout::EncodeMember(self.info, state), self.lease_id)};
  if (state == MemberState::kActive) {
    // An ACTIVE member holds a complete copy, beyond its lease.
    ops.push_back(
        EtcdOp::Put(etcd_layout::HolderKey(options_.cluster, region, self.info.member_id), "", 0));
  }
  const size_t range_index = ops.size();
  ops.push_back(EtcdOp::Range(prefix, end));
  StatusOr<EtcdTxnResult> txn =
      client_.Txn({EtcdCompare::Number(self_key, EtcdCompare::Target::kCreate,
                                       EtcdCompare::Result::kGreater, 0)},
                  ops, {});
  if (!txn.ok()) {
    return LeaseAware(txn.status());
  }
  if (!txn->succeeded) {
    return absl::FailedPreconditionError(
        fmt::format("member {} is not in region {}", FormatMemberId(self.info.member_id), region));
  }
  return MakeView(region, txn->revision, DecodeGroup(prefix, txn->responses[range_index].kvs));
}

StatusOr<GroupView> EtcdRegistry::ReadGroup(const std::string& region) {
  WEFT_RETURN_IF_ERROR(ValidateRegionName(region));
  const std::string prefix = etcd_layout::RegionPrefix(options_.cluster, region);
  WEFT_ASSIGN_OR_RETURN(EtcdRangeResult range,
                        client_.Range(prefix, etcd_layout::PrefixEnd(prefix)));
  return MakeView(region, range.revision, DecodeGroup(prefix, range.kvs));
}

Status EtcdRegistry::LeaveRegion(const std::string& region) {
  WEFT_RETURN_IF_ERROR(ValidateRegionName(region));
  WEFT_ASSIGN_OR_RETURN(Self self, RequireSelf());
  // A member that leaves gives up its copy.
  StatusOr<EtcdTxnResult> txn = client_.Txn(
      {},
      {EtcdOp::DeleteRange(
           etcd_layout::RegionMemberKey(options_.cluster, region, self.info.member_id), ""),
       EtcdOp::DeleteRange(etcd_layout::HolderKey(options_.cluster, region, self.info.member_id),
                           "")},
      {});
  if (txn.ok()) {
    MutexLock lock(&mutex_);
    entered_.erase(region);
  }
  return txn.status();
}

Status EtcdRegistry::ExpelFromRegion(const std::string& region, uint64_t member_id,
                                     int64_t entered_at) {
  WEFT_RETURN_IF_ERROR(ValidateRegionName(region));
  WEFT_ASSIGN_OR_RETURN(Self self, RequireSelf());
  const std::string self_key =
      etcd_layout::RegionMemberKey(options_.cluster, region, self.info.member_id);
  // Only while this member is ACTIVE in the region, as its own key says (the exact bytes it
  // wrote when it became ACTIVE): two members cut off from each other cannot both win.
  EtcdCompare active;
  active.key = self_key;
  active.target = EtcdCompare::Target::kValue;
  active.result = EtcdCompare::Result::kEqual;
  active.value = etcd_layout::EncodeMember(self.info, MemberState::kActive);
  // And only the entry made at `entered_at`.
  const std::string expelled_key =
      etcd_layout::RegionMemberKey(options_.cluster, region, member_id);
  StatusOr<EtcdTxnResult> txn = client_.Txn(
      {active, EtcdCompare::Number(expelled_key, EtcdCompare::Target::kCreate,
                                   EtcdCompare::Result::kEqual, entered_at)},
      {EtcdOp::DeleteRange(expelled_key, ""),
       EtcdOp::DeleteRange(etcd_layout::HolderKey(options_.cluster, region, member_id), "")},
      {EtcdOp::Range(self_key, "")});
  if (!txn.ok()) {
    return LeaseAware(txn.status());
  }
  if (!txn->succeeded) {
    // Which compare failed: our own key (read in the same transaction) says.
    const std::vector<EtcdKeyValue>& own = txn->responses[0].kvs;
    if (own.empty() || own.front().value != active.value) {
      return absl::FailedPreconditionError(fmt::format(
          "member {} is not ACTIVE in region {}", FormatMemberId(self.info.member_id), region));
    }
    // The member is gone already, or entered again since: nothing to expel.
  }
  return absl::OkStatus();
}

Status EtcdRegistry::DropHolder(const std::string& region, uint64_t member_id) {
  WEFT_RETURN_IF_ERROR(ValidateRegionName(region));
  WEFT_ASSIGN_OR_RETURN(Self self, RequireSelf());
  EtcdCompare active;
  active.key = etcd_layout::RegionMemberKey(options_.cluster, region, self.info.member_id);
  active.target = EtcdCompare::Target::kValue;
  active.result = EtcdCompare::Result::kEqual;
  active.value = etcd_layout::EncodeMember(self.info, MemberState::kActive);
  StatusOr<EtcdTxnResult> txn = client_.Txn(
      {active},
      {EtcdOp::DeleteRange(etcd_layout::HolderKey(options_.cluster, region, member_id), "")}, {});
  if (!txn.ok()) {
    return LeaseAware(txn.status());
  }
  if (!txn->succeeded) {
    return absl::FailedPreconditionError(fmt::format("member {} is not ACTIVE in region {}",
                                                     FormatMemberId(self.info.member_id), region));
  }
  return absl::OkStatus();
}

Status EtcdRegistry::GiveUpHolding(const std::string& region) {
  WEFT_RETURN_IF_ERROR(ValidateRegionName(region));
  WEFT_ASSIGN_OR_RETURN(Self self, RequireSelf());
  StatusOr<EtcdTxnResult> txn =
      client_.Txn({},
                  {EtcdOp::DeleteRange(
                      etcd_layout::HolderKey(options_.cluster, region, self.info.member_id), "")},
                  {});
  return txn.ok() ? absl::OkStatus() : LeaseAware(txn.status());
}

StatusOr<GroupView> EtcdRegistry::Reform(const std::string& region) {
  WEFT_RETURN_IF_ERROR(ValidateRegionName(region));
  WEFT_ASSIGN_OR_RETURN(Self self, RequireSelf());
  const std::string prefix = etcd_layout::RegionPrefix(options_.cluster, region);
  const std::string end = etcd_layout::PrefixEnd(prefix);
  const std::string self_key =
      etcd_layout::RegionMemberKey(options_.cluster, region, self.info.member_id);
  const std::string self_holder =
      etcd_layout::HolderKey(options_.cluster, region, self.info.member_id);
  StatusOr<EtcdTxnResult> read = client_.Txn({}, {EtcdOp::Range(prefix, end)}, {});
  if (!read.ok()) {
    return LeaseAware(read.status());
  }
  EtcdRangeResult range = std::move(read->responses[0]);
  for (int attempt = 0; attempt < options_.enter_attempts_max; ++attempt) {
    bool present = false;
    for (const StoredMember& stored : DecodeGroup(prefix, range.kvs)) {
      present |= stored.member.info.member_id == self.info.member_id;
      if (stored.member.state == MemberState::kActive) {
        return absl::FailedPreconditionError(
            fmt::format("member {} is ACTIVE in region {}: join from it",
                        FormatMemberId(stored.member.info.member_id), region));
      }
    }
    if (!present) {
      return absl::FailedPreconditionError(fmt::format(
          "member {} is not in region {}", FormatMemberId(self.info.member_id), region));
    }
    // Nothing in the group changed since the read (so still nobody is ACTIVE, and this member
    // is still in it), and this member still holds the region.
    const std::vector<EtcdCompare> compares = {
        EtcdCompare::Number(prefix, EtcdCompare::Target::kMod, EtcdCompare::Result::kLess,
                            range.revision + 1, end),
        EtcdCompare::Number(self_holder, EtcdCompare::Target::kCreate,
                            EtcdCompare::Result::kGreater, 0)};
    StatusOr<EtcdTxnResult> txn = client_.Txn(
        compares,
        {EtcdOp::Put(self_key, etcd_layout::EncodeMember(self.info, MemberState::kActive),
                     self.lease_id),
         EtcdOp::Range(prefix, end)},
        {EtcdOp::Range(prefix, end), EtcdOp::Range(self_holder, "")});
    if (!txn.ok()) {
      return LeaseAware(txn.status());
    }
    if (txn->succeeded) {
      WEFT_LOG_INFO("etcd registry: member {} re-formed region {} from its own copy (revision {})",
                    FormatMemberId(self.info.member_id), region, txn->revision);
      return MakeView(region, txn->revision, DecodeGroup(prefix, txn->responses[1].kvs));
    }
    if (txn->responses[1].kvs.empty()) {
      return absl::FailedPreconditionError(fmt::format(
          "member {} no longer holds region {}", FormatMemberId(self.info.member_id), region));
    }
    range = std::move(txn->responses[0]);
  }
  return absl::AbortedError(fmt::format("region {} kept changing during {} attempts to re-form it",
                                        region, options_.enter_attempts_max));
}

StatusOr<uint64_t> EtcdRegistry::Reregister() {
  MutexLock lifecycle(&lifecycle_mutex_);
  MemberInfo info;
  uint64_t registration = 0;
  int64_t lease_id = 0;
  bool lost = false;
  {
    MutexLock lock(&mutex_);
    if (!self_ || deregistered_) {
      return absl::FailedPreconditionError("Reregister needs a registered member");
    }
    info = self_->info;
    registration = self_->registration;
    lease_id = self_->lease_id;
    lost = lease_lost_ || keepalive_stop_;
  }
  if (!lost) {
    // The keep-alive thread may not have noticed yet that the lease ran out (the member learned
    // it from a view that no longer lists it): only etcd's answer says.
    WEFT_ASSIGN_OR_RETURN(const int64_t remaining_s,
                          client_.KeepAliveOnce(lease_id, nullptr, options_.request_timeout_ms));
    if (remaining_s > 0) {
      return registration;  // still registered
    }
    MutexLock lock(&mutex_);
    lease_lost_ = true;  // known now; the keep-alive thread's own news would be stale
  }
  StopKeepAliveThread();  // it ended with the lost lease; join it
  const steady_clock::time_point granted_at = steady_clock::now();
  WEFT_ASSIGN_OR_RETURN(EtcdLease lease, client_.GrantLease(options_.lease_ttl_s));
  const std::string key = etcd_layout::MemberKey(options_.cluster, info.member_id);
  StatusOr<EtcdTxnResult> txn = client_.Txn(
      {EtcdCompare::Number(key, EtcdCompare::Target::kCreate, EtcdCompare::Result::kEqual, 0)},
      {EtcdOp::Put(key, etcd_layout::EncodeMember(info, std::nullopt), lease.id)}, {});
  if (!txn.ok() || !txn->succeeded) {
    client_.RevokeLease(lease.id).IgnoreError();
    return txn.ok() ? absl::AlreadyExistsError(
                          fmt::format("member id {} is registered again by someone else in {}",
                                      FormatMemberId(info.member_id), key))
                    : txn.status();
  }
  MutexLock lock(&mutex_);
  self_ = Self{info, lease.id, registration + 1};
  lease_ttl_s_ = lease.ttl_s;
  lease_lost_ = false;
  keepalive_stop_ = false;
  keepalive_abort_.store(false);
  keepalive_ = std::thread([this, id = lease.id, ttl_s = lease.ttl_s, granted_at] {
    SetThreadName("weft-lease");
    KeepAliveLoop(id, ttl_s, granted_at);
  });
  WEFT_LOG_INFO("etcd registry: member {} ({}) registered again with lease {:x} (registration {})",
                FormatMemberId(info.member_id), info.name, lease.id, registration + 1);
  return registration + 1;
}

std::unique_ptr<WatchHandle> EtcdRegistry::Watch(const std::string& region,
                                                 std::function<void(const GroupView&)> on_change) {
  if (Status valid = ValidateRegionName(region); !valid.ok()) {
    WEFT_LOG_ERROR("etcd registry: cannot watch: {}", valid.ToString());
    return nullptr;
  }
  auto worker = std::make_shared<WatchWorker>(region, std::move(on_change));
  std::thread thread([this, worker] { RunWatch(*worker); });
  return std::make_unique<EtcdWatch>(*this, std::move(worker), std::move(thread));
}

void EtcdRegistry::RunWatch(WatchWorker& worker) {
  const std::string prefix = etcd_layout::RegionPrefix(options_.cluster, worker.region);
  const std::string end = etcd_layout::PrefixEnd(prefix);
  std::map<uint64_t, StoredMember> members;
  int64_t revision = 0;  // of the last delivered view
  bool synced = false;
  int64_t retry_ms = options_.watch_retry_ms;
  auto deliver = [&] {
    GroupView view;
    view.region = worker.region;
    view.revision = revision;
    for (const auto& [id, stored] : members) {
      view.members.push_back(stored.member);
    }
    worker.gate.Run([&] { worker.on_change(view); });
  };
  auto pause = [&] {
    const bool go_on = worker.interrupt.SleepFor(milliseconds(retry_ms));
    retry_ms = std::min(retry_ms * 2, options_.watch_retry_ms_max);
    return go_on;
  };

  while (!worker.interrupt.interrupted()) {
    if (!synced) {
      StatusOr<EtcdRangeResult> range = client_.Range(prefix, end);
      if (!range.ok()) {
        WEFT_LOG_WARN(
            "etcd registry: watch of region {} cannot read the group (retrying in {} "
            "ms): {}",
            worker.region, retry_ms, range.status().ToString());
        if (!pause()) {
          break;
        }
        continue;
      }
      std::map<uint64_t, StoredMember> fresh;
      for (StoredMember& stored : DecodeGroup(prefix, range->kvs)) {
        const uint64_t id = stored.member.info.member_id;
        fresh.emplace(id, std::move(stored));
      }
      const bool changed = revision == 0 || fresh.size() != members.size() ||
                           !std::equal(fresh.begin(), fresh.end(), members.begin(),
                                       [](const auto& a, const auto& b) {
                                         return a.second.member == b.second.member;
                                       });
      members = std::move(fresh);
      revision = std::max(revision, range->revision);
      synced = true;
      if (changed) {
        deliver();
      }
    }
    bool resync = false;
    const Status status = client_.Watch(
        prefix, end, revision + 1, worker.interrupt, [&](const EtcdWatchResponse& response) {
          if (response.canceled) {
            WEFT_LOG_INFO(
                "etcd registry: watch of region {} was cancelled by etcd ({}{}); "
                "re-reading the group",
                worker.region, response.cancel_reason,
                response.compact_revision > 0
                    ? fmt::format("history compacted up to revision {}", response.compact_revision)
                    : std::string());
            resync = true;
            return false;
          }
          if (response.created) {
            retry_ms = options_.watch_retry_ms;
          }
          // One view per revision: a lease revocation deletes several keys in one revision, a
          // catch-up answer carries several revisions.
          const std::vector<EtcdEvent>& events = response.events;
          for (size_t i = 0; i < events.size();) {
            const int64_t event_revision = events[i].kv.mod_revision;
            for (; i < events.size() && events[i].kv.mod_revision == event_revision; ++i) {
              const EtcdKeyValue& kv = events[i].kv;
              const std::string_view key = kv.key;
              if (key.substr(0, prefix.size()) != prefix) {
                continue;
              }
              const std::optional<uint64_t> id =
                  etcd_layout::ParseMemberId(key.substr(prefix.size()));
              if (!id) {
                continue;
              }
              if (events[i].deleted) {
                members.erase(*id);
                continue;
              }
              std::vector<StoredMember> decoded = DecodeGroup(prefix, {kv});
              if (decoded.empty()) {
                members.erase(*id);
              } else {
                members.insert_or_assign(*id, std::move(decoded.front()));
              }
            }
            if (event_revision <= revision) {
              continue;  // replayed history (cannot happen when resuming at revision + 1)
            }
            revision = event_revision;
            deliver();
            if (worker.interrupt.interrupted()) {
              return false;
            }
          }
          return true;
        });
    if (worker.interrupt.interrupted()) {
      break;
    }
    if (resync) {
      synced = false;
      continue;
    }
    WEFT_LOG_WARN(
        "etcd registry: watch of region {} broke ({}); resuming after revision {} in "
        "{} ms",
        worker.region, status.ToString(), revision, retry_ms);
    if (!pause()) {
      break;
    }
  }
}

}  // namespace weft::membership
