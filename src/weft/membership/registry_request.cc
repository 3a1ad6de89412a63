#include "weft/membership/registry_request.h"

namespace weft::membership {

std::string_view RegistryOpName(RegistryRequest::Op op) {
  switch (op) {
    case RegistryRequest::Op::kEnterRegion:
      return "EnterRegion";
    case RegistryRequest::Op::kSetState:
      return "SetState";
    case RegistryRequest::Op::kReadGroup:
      return "ReadGroup";
    case RegistryRequest::Op::kLeaveRegion:
      return "LeaveRegion";
    case RegistryRequest::Op::kExpel:
      return "ExpelFromRegion";
    case RegistryRequest::Op::kDropHolder:
      return "DropHolder";
    case RegistryRequest::Op::kGiveUpHolding:
      return "GiveUpHolding";
    case RegistryRequest::Op::kReform:
      return "Reform";
    case RegistryRequest::Op::kReregister:
      return "Reregister";
  }
  return "?";
}

RegistryReply CallRegistry(Registry& registry, const RegistryRequest& request) {
  RegistryReply reply;
  switch (request.op) {
    case RegistryRequest::Op::kEnterRegion: {
      StatusOr<EnterResult> entered = registry.EnterRegion(request.region);
      reply.status = entered.status();
      if (entered.ok()) {
        reply.entered = *std::move(entered);
      }
      break;
    }
    case RegistryRequest::Op::kSetState: {
      StatusOr<GroupView> view = registry.SetState(request.region, request.state);
      reply.status = view.status();
      if (view.ok()) {
        reply.view = *std::move(view);
      }
      break;
    }
    case RegistryRequest::Op::kReadGroup: {
      StatusOr<GroupView> view = registry.ReadGroup(request.region);
      reply.status = view.status();
      if (view.ok()) {
        reply.view = *std::move(view);
      }
      break;
    }
    case RegistryRequest::Op::kLeaveRegion:
      reply.status = registry.LeaveRegion(request.region);
      break;
    case RegistryRequest::Op::kExpel:
      reply.status = registry.ExpelFromRegion(request.region, request.member, request.entered_at);
      break;
    case RegistryRequest::Op::kDropHolder:
      reply.status = registry.DropHolder(request.region, request.member);
      break;
    case RegistryRequest::Op::kGiveUpHolding:
      reply.status = registry.GiveUpHolding(request.region);
      break;
    case RegistryRequest::Op::kReform: {
      StatusOr<GroupView> view = registry.Reform(request.region);
      reply.status = view.status();
      if (view.ok()) {
        reply.view = *std::move(view);
      }
      break;
    }
    case RegistryRequest::Op::kReregister: {
      StatusOr<uint64_t> registration = registry.Reregister();
      reply.status = registration.status();
      reply.registration = registration.value_or(0);
      break;
    }
  }
  return reply;
}

}  // namespace weft::membership
