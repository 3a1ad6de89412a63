// SimRegistry: etcd as the simulator sees it. The group state and its transactions are an
// InProcessRegistryHub (contract-tested against etcd: revisions, atomic EnterRegion and SetState,
// expel); around it, what etcd's behaviour adds in time:
//   - requests take a round trip, and may fail transiently — before or after taking effect
//     (etcd's client cannot tell which);
//   - leases: each member keeps its lease alive every keepalive_us; a lease not renewed for
//     lease_ttl_us expires on the registry's own time, and the member vanishes from every
//     group (a member stalled or cut off from the registry is dropped, as with etcd);
//   - watches deliver views late (lag), in order, and not at all during an outage;
//   - an outage: every request fails (Unavailable) after a timeout, no lease expires (etcd is
//     down), and when it ends every lease starts a fresh TTL, as etcd's new leader does;
//   - a freeze (etcd stopped, then continued: SIGSTOP, a VM paused): the same while it lasts,
//     but at its end etcd's clock has moved on and it expires every lease it did not hear from
//     in its TTL, one lease per revision, in no particular order, racing the keepalives;
//   - a cut: one member cannot reach etcd (its requests fail after a timeout, its keepalives
//     stop, so its lease expires) while the others can; what etcd would tell it (watch views,
//     the lease's end) reaches it only once the cut heals.
//
// Thread safety: none; the simulator's one thread.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <set>
#include <string>

#include "weft/base/random.h"
#include "weft/membership/in_process_registry.h"
#include "weft/membership/registry_request.h"

#include "tests/sim/event_loop.h"

namespace weft::sim {

struct SimRegistryOptions {
  int64_t lease_ttl_us = 2'000'000;
  int64_t keepalive_us = 500'000;
  int64_t request_timeout_us = 1'000'000;  // how long a request takes to fail in an outage
  int64_t watch_lag_max_us = 50'000;
  uint64_t transient_error_one_in = 0;  // 0: none
};

class SimRegistry {
 public:
  SimRegistry(EventLoop& loop, Random& random, const SimRegistryOptions& options);
  ~SimRegistry();

  // Registers `info` with a lease; `owner` owns the member's events; `on_lease_lost` runs (as an
  // event of the member) when its lease expires while it lives.
  void AddMember(const membership::MemberInfo& info, uint64_t owner,
                 membership::Registry::LeaseLostCallback on_lease_lost);
  // The member crashed: no more keepalives (its lease expires in time).
  void RemoveMember(uint64_t member);
  // The member's keepalives stop for a while (a stalled process).
  void StallKeepalives(uint64_t member, int64_t duration_us);

  void Request(uint64_t member, membership::RegistryRequest request,
               std::function<void(membership::RegistryReply)> done);
  std::unique_ptr<membership::WatchHandle> Watch(
      uint64_t member, const std::string& region,
      std::function<void(const membership::GroupView&)> on_change);

  // Faults.
  // An outage (`freeze` false) or a freeze (true) of `duration_us`.
  void Outage(int64_t duration_us, bool freeze);
  void Cut(uint64_t member, int64_t duration_us);
  bool down() const { return loop_.now_us() < down_until_us_; }
  void set_transient_error_one_in(uint64_t one_in) { options_.transient_error_one_in = one_in; }

  // The truth, for the oracles: the region's group now.
  membership::GroupView Group(const std::string& region) const;
  int64_t revision() const { return hub_.revision(); }
  bool Holds(const std::string& region, uint64_t member) const {
    return hub_.Holds(region, member);
  }

 private:
  struct Member {
    std::unique_ptr<membership::InProcessRegistry> registry;
    uint64_t owner = 0;
    int64_t renewed_us = 0;
    int64_t stalled_until_us = 0;
    int64_t cut_until_us = 0;
    bool alive = true;
  };
  void Tick();
  // The member's lease ran out: every key of it goes in one revision, watchers see it.
  void ExpireLease(uint64_t id);
  // A freeze ended: leases older than the TTL expire unless a keepalive gets in first.
  void ExpireAfterFreeze();
  // Whether `member` cannot reach the registry now.
  bool CutOff(uint64_t member) const;
  // Runs `fn` as the member's event now, or once its cut heals (in order).
  void DeliverTo(uint64_t member, std::function<void()> fn);

  EventLoop& loop_;
  Random& random_;
  SimRegistryOptions options_;
  membership::InProcessRegistryHub hub_;
  std::unique_ptr<membership::InProcessRegistry> reader_;  // reads for the oracles
  std::map<uint64_t, Member> members_;
  int64_t down_until_us_ = 0;
  int64_t last_watch_delivery_us_ = 0;
  bool ticking_ = false;
};

}  // namespace weft::sim
