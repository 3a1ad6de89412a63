// RegistryRequest / RegistryReply: a Registry call as a message, so that the replication
// protocol can ask the registry something without blocking and hear the answer as an event
// (replication/host.h). RegistryWorker carries them out against a Registry on a thread of its
// own; the simulator answers them from its model of etcd.
//
// Thread safety: plain values.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "weft/base/status.h"
#include "weft/membership/registry.h"

namespace weft::membership {

struct RegistryRequest {
  enum class Op : uint8_t {
    kEnterRegion,
    kSetState,
    kReadGroup,
    kLeaveRegion,
    kExpel,
    kDropHolder,
    kGiveUpHolding,
    kReform,
    kReregister,
  };
  Op op = Op::kReadGroup;
  std::string region;
  MemberState state = MemberState::kActive;  // kSetState
  uint64_t member = 0;                       // kExpel, kDropHolder
  int64_t entered_at = 0;                    // kExpel: the member's entry (GroupMember)
};

struct RegistryReply {
  Status status;
  EnterResult entered;        // kEnterRegion
  GroupView view;             // kSetState, kReadGroup, kReform
  uint64_t registration = 0;  // kReregister
};

std::string_view RegistryOpName(RegistryRequest::Op op);

// Carries out `request` against `registry` (blocking for as long as the registry takes).
RegistryReply CallRegistry(Registry& registry, const RegistryRequest& request);

}  // namespace weft::membership
