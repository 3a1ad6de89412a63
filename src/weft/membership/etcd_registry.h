// EtcdRegistry: a Registry kept in etcd v3 (Debian's etcd-server 3.4), for multi-process
// clusters. It talks to etcd's JSON gateway through EtcdClient; etcd_layout.h has the keys.
//
// - Register grants a lease (lease_ttl_s) and writes the member key with it; a keep-alive
//   thread renews the lease every TTL/3. If renewals keep failing until the lease must have
//   expired (or etcd says it is gone), it logs an error and calls the lease-lost callback once;
//   the registry then refuses to act for the member (FailedPrecondition).
// - The member's region keys carry the same lease, so a crashed member vanishes from every
//   group after at most the TTL (plus etcd's expiry tick, ~0.5 s).
// - EnterRegion and SetState are single etcd transactions whose "then" branch ends with a range
//   over the region, so the returned group is exactly the state at that transaction's revision.
//   docs/design/membership.md explains why they win the races of DESIGN.md §5/§6.
// - Each Watch runs one thread holding a streaming POST /v3/watch; it applies the events to the
//   view and calls back once per revision. If the stream fails it reconnects (backoff 0.25 s
//   doubling to 5 s) from the last delivered revision + 1; if etcd compacted that history it
//   re-reads the group and delivers it if it changed.
// - Every unary request is bounded by connect_timeout_ms and request_timeout_ms; cancelling a
//   watch wakes its stream at once; stopping the keep-alive aborts a renewal within ~1 s.
//
// Thread safety: all methods are safe from any thread. REQUIRES: watch handles are destroyed
// before the registry; the registry is not destroyed from inside one of its own callbacks.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"

#include "weft/base/mutex.h"
#include "weft/base/status.h"
#include "weft/membership/callback_gate.h"
#include "weft/membership/etcd_client.h"
#include "weft/membership/registry.h"

namespace weft::membership {

struct EtcdRegistryOptions {
  std::string endpoint;          // "host:port" (see ParseEtcdUrl)
  std::string cluster = "weft";  // keys live under /weft/<cluster>/
  // etcd raises a TTL below its minimum (2 s with default etcd timings); the granted TTL is
  // what counts (lease_ttl_s()).
  int64_t lease_ttl_s = 5;
  int64_t connect_timeout_ms = 1000;
  int64_t request_timeout_ms = 3000;
  // EnterRegion retries its transaction when the region changed under it; each retry means
  // another member's entry or state change committed first.
  int enter_attempts_max = 64;
  // A failed watch stream reconnects after this, doubling up to watch_retry_ms_max.
  int64_t watch_retry_ms = 250;
  int64_t watch_retry_ms_max = 5000;
};

// "etcd://host:port" → "host:port". InvalidArgument for anything else.
StatusOr<std::string> ParseEtcdUrl(std::string_view url);

class EtcdRegistry final : public Registry {
 public:
  // Checks the options (endpoint, cluster name, TTL ≥ 1, timeouts > 0). Contacts nobody.
  static StatusOr<std::unique_ptr<EtcdRegistry>> Create(EtcdRegistryOptions options);

  // REQUIRES: the options pass Create's checks (prefer Create).
  explicit EtcdRegistry(EtcdRegistryOptions options);
  // Stops the keep-alive thread without revoking the lease (like a crash: the member vanishes
  // after the TTL). Call Deregister first for a graceful exit.
  ~EtcdRegistry() override;
  EtcdRegistry(const EtcdRegistry&) = delete;
  EtcdRegistry& operator=(const EtcdRegistry&) = delete;

  // See Registry for the contracts. Errors from etcd name the endpoint and the call.
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
  // Stops the keep-alive and revokes the lease (which deletes every key of the member). If etcd
  // cannot be reached the error says so; the member still vanishes after the TTL.
  Status Deregister() override;
  void SetLeaseLostCallback(LeaseLostCallback on_lease_lost) override;

  // Stops renewing the lease without revoking it: the member vanishes after the TTL, as if its
  // process had crashed. For tests and fault injection. Idempotent.
  void StopKeepAlive();

  // The lease and its granted TTL; 0 before Register.
  int64_t lease_id() const;
  int64_t lease_ttl_s() const;
  const EtcdRegistryOptions& options() const { return options_; }

 private:
  class WatchWorker;
  class EtcdWatch;
  struct Self {
    MemberInfo info;
    int64_t lease_id = 0;
    uint64_t registration = 1;  // see Registry::Reregister
  };
  // A region member as read from etcd, with what a compare needs.
  struct StoredMember {
    GroupMember member;
    std::string key;
    int64_t mod_revision = 0;
  };

  StatusOr<Self> RequireSelf() const;
  // The members among `kvs` (keys under `prefix`), sorted by id; malformed entries are logged
  // and skipped (they are not ours to judge).
  static std::vector<StoredMember> DecodeGroup(std::string_view prefix,
                                               const std::vector<EtcdKeyValue>& kvs);
  static GroupView MakeView(const std::string& region, int64_t revision,
                            const std::vector<StoredMember>& members);
  // Turns "requested lease not found" into FailedPrecondition (the lease is gone).
  Status LeaseAware(Status status) const;

  void KeepAliveLoop(int64_t lease_id, int64_t ttl_s,
                     std::chrono::steady_clock::time_point granted_at);
  void LeaseLost(const std::string& reason);
  void StopKeepAliveThread();
  void RunWatch(WatchWorker& worker);
  // Keeps a watch thread that cancelled itself from its own callback until the destructor.
  void AdoptFinishingThread(std::thread thread);

  const EtcdRegistryOptions options_;
  EtcdClient client_;

  // Serializes Register and Deregister (held across their etcd calls; nothing else takes it).
  Mutex lifecycle_mutex_ ABSL_ACQUIRED_BEFORE(mutex_);
  mutable Mutex mutex_;
  std::optional<Self> self_ ABSL_GUARDED_BY(mutex_);
  int64_t lease_ttl_s_ ABSL_GUARDED_BY(mutex_) = 0;
  bool deregistered_ ABSL_GUARDED_BY(mutex_) = false;
  bool lease_lost_ ABSL_GUARDED_BY(mutex_) = false;
  // Regions this member entered: Deregister gives up its holdings there.
  std::set<std::string> entered_ ABSL_GUARDED_BY(mutex_);
  LeaseLostCallback on_lease_lost_ ABSL_GUARDED_BY(mutex_);
  bool keepalive_stop_ ABSL_GUARDED_BY(mutex_) = false;
  MutexCondition keepalive_wake_;
  // Set with keepalive_stop_; aborts a renewal in flight (read by curl's progress callback).
  std::atomic<bool> keepalive_abort_{false};
  std::thread keepalive_ ABSL_GUARDED_BY(mutex_);
  std::vector<std::thread> finishing_threads_ ABSL_GUARDED_BY(mutex_);
};

}  // namespace weft::membership
