#include "tests/sim/sim_registry.h"

#include <algorithm>
#include <utility>

#include "weft/base/check.h"

namespace weft::sim {

SimRegistry::SimRegistry(EventLoop& loop, Random& random, const SimRegistryOptions& options)
    : loop_(loop), random_(random), options_(options), hub_([this](std::function<void()> task) {
        // Watch deliveries and lease-lost callbacks: late, in order, never during an outage.
        const int64_t earliest =
            std::max({last_watch_delivery_us_, down_until_us_, loop_.now_us()});
        const int64_t at = earliest + static_cast<int64_t>(random_.Uniform(
                                          static_cast<uint64_t>(options_.watch_lag_max_us) + 1));
        last_watch_delivery_us_ = at;
        loop_.At(at - loop_.now_us(), 0, "registry.deliver", std::move(task));
      }) {
  reader_ = std::make_unique<membership::InProcessRegistry>(hub_);
}

SimRegistry::~SimRegistry() {
  members_.clear();
  reader_.reset();
}

void SimRegistry::AddMember(const membership::MemberInfo& info, uint64_t owner,
                            membership::Registry::LeaseLostCallback on_lease_lost) {
  Member& member = members_[info.member_id];
  member.registry = std::make_unique<membership::InProcessRegistry>(hub_);
  member.registry->SetLeaseLostCallback(
      [this, id = info.member_id, on_lease_lost = std::move(on_lease_lost)](uint64_t registration) {
        DeliverTo(id, [on_lease_lost, registration] { on_lease_lost(registration); });
      });
  WEFT_CHECK(member.registry->Register(info).ok());
  member.owner = owner;
  member.renewed_us = loop_.now_us();
  if (!ticking_) {
    ticking_ = true;
    loop_.At(options_.keepalive_us, 0, "registry.tick", [this] { Tick(); });
  }
}

void SimRegistry::RemoveMember(uint64_t member) {
  auto it = members_.find(member);
  if (it != members_.end()) {
    it->second.alive = false;
  }
}

void SimRegistry::StallKeepalives(uint64_t member, int64_t duration_us) {
  auto it = members_.find(member);
  if (it != members_.end()) {
    it->second.stalled_until_us =
        std::max(it->second.stalled_until_us, loop_.now_us() + duration_us);
  }
}

void SimRegistry::Cut(uint64_t member, int64_t duration_us) {
  auto it = members_.find(member);
  if (it != members_.end()) {
    it->second.cut_until_us = std::max(it->second.cut_until_us, loop_.now_us() + duration_us);
    StallKeepalives(member, duration_us);
  }
}

bool SimRegistry::CutOff(uint64_t member) const {
  auto it = members_.find(member);
  return it != members_.end() && loop_.now_us() <= it->second.cut_until_us;
}

void SimRegistry::DeliverTo(uint64_t member, std::function<void()> fn) {
  auto it = members_.find(member);
  if (it == members_.end() || loop_.now_us() > it->second.cut_until_us) {
    fn();
    return;
  }
  // Everything held back runs at the cut's end, in the order it came (the loop keeps the
  // order of events due at the same time).
  loop_.At(it->second.cut_until_us - loop_.now_us(), it->second.owner, "registry.cut-healed",
           std::move(fn));
}

void SimRegistry::Tick() {
  const int64_t now_us = loop_.now_us();
  if (!down()) {
    std::vector<uint64_t> expired;
    for (auto& [id, member] : members_) {
      if (member.alive && member.stalled_until_us <= now_us) {
        member.renewed_us = now_us;
      } else if (member.registry != nullptr && now_us - member.renewed_us > options_.lease_ttl_us) {
        expired.push_back(id);
      }
    }
    for (uint64_t id : expired) {
      ExpireLease(id);
    }
  }
  loop_.At(options_.keepalive_us, 0, "registry.tick", [this] { Tick(); });
}

void SimRegistry::ExpireLease(uint64_t id) {
  hub_.Expire(id);
  Member& member = members_[id];
  if (!member.alive) {
    members_.erase(id);
  } else {
    member.renewed_us = loop_.now_us();  // forgotten by the registry; nothing left to expire
    member.stalled_until_us = INT64_MAX;
  }
}

void SimRegistry::ExpireAfterFreeze() {
  std::vector<uint64_t> stale;
  for (const auto& [id, member] : members_) {
    if (member.registry != nullptr && loop_.now_us() - member.renewed_us > options_.lease_ttl_us) {
      stale.push_back(id);
    }
  }
  for (size_t i = stale.size(); i > 1; --i) {  // etcd's lessor keeps no order we could rely on
    std::swap(stale[i - 1], stale[random_.Uniform(i)]);
  }
  for (uint64_t id : stale) {
    Member& member = members_[id];
    if (member.alive && member.stalled_until_us <= loop_.now_us() && random_.OneIn(4)) {
      member.renewed_us = loop_.now_us();  // its keepalive reached etcd before the expiry did
    } else {
      ExpireLease(id);
    }
  }
}

void SimRegistry::Request(uint64_t member_id, membership::RegistryRequest request,
                          std::function<void(membership::RegistryReply)> done) {
  auto it = members_.find(member_id);
  WEFT_CHECK(it != members_.end());
  const uint64_t owner = it->second.owner;
  const int64_t half_trip_us = 200 + static_cast<int64_t>(random_.Uniform(2'000));
  auto reply_with = [this, owner, done](membership::RegistryReply reply, int64_t after_us) {
    loop_.At(after_us, owner, "registry.reply", [done, reply = std::move(reply)] { done(reply); });
  };
  if (down() || CutOff(member_id)) {
    membership::RegistryReply reply;
    reply.status = absl::UnavailableError("etcd is unreachable");
    reply_with(std::move(reply), options_.request_timeout_us);
    return;
  }
  const bool transient =
      options_.transient_error_one_in != 0 && random_.OneIn(options_.transient_error_one_in);
  const bool after_effect = transient && random_.OneIn(2);
  if (transient && !after_effect) {
    membership::RegistryReply reply;
    reply.status = absl::UnavailableError("etcd request failed (injected)");
    reply_with(std::move(reply), 2 * half_trip_us);
    return;
  }
  loop_.At(half_trip_us, 0, "registry.request",
           [this, member_id, request = std::move(request), reply_with, half_trip_us, after_effect] {
             auto it = members_.find(member_id);
             membership::RegistryReply reply;
             if (down()) {
               reply.status = absl::UnavailableError("etcd is unreachable");
             } else if (it == members_.end() || it->second.registry == nullptr) {
               reply.status = absl::FailedPreconditionError("not registered");
             } else {
               reply = membership::CallRegistry(*it->second.registry, request);
               if (request.op == membership::RegistryRequest::Op::kReregister &&
                   reply.status.ok() && it->second.alive) {
                 it->second.renewed_us = loop_.now_us();  // a new lease, kept alive again
                 it->second.stalled_until_us = 0;
               }
               if (after_effect) {
                 reply = membership::RegistryReply{};
                 reply.status = absl::UnavailableError("etcd reply lost (injected)");
               }
             }
             reply_with(std::move(reply), half_trip_us);
           });
}

std::unique_ptr<membership::WatchHandle> SimRegistry::Watch(
    uint64_t member, const std::string& region,
    std::function<void(const membership::GroupView&)> on_change) {
  auto it = members_.find(member);
  WEFT_CHECK(it != members_.end());
  return it->second.registry->Watch(
      region, [this, member, on_change = std::move(on_change)](const membership::GroupView& view) {
        DeliverTo(member, [on_change, view] { on_change(view); });
      });
}

void SimRegistry::Outage(int64_t duration_us, bool freeze) {
  down_until_us_ = std::max(down_until_us_, loop_.now_us() + duration_us);
  loop_.At(duration_us, 0, "registry.recovered", [this, freeze] {
    if (down()) {
      return;  // a longer outage overlaps this one; its end decides
    }
    if (freeze) {
      ExpireAfterFreeze();
      return;
    }
    for (auto& [id, member] : members_) {
      member.renewed_us = loop_.now_us();  // etcd's new leader gives every lease a fresh TTL
    }
  });
}

membership::GroupView SimRegistry::Group(const std::string& region) const {
  StatusOr<membership::GroupView> view = reader_->ReadGroup(region);
  return view.ok() ? *view : membership::GroupView{};
}

}  // namespace weft::sim
