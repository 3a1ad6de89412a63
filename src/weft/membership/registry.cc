#include "weft/membership/registry.h"

#include <algorithm>

#include <fmt/format.h>

namespace weft::membership {

std::string_view MemberStateName(MemberState state) {
  switch (state) {
    case MemberState::kInitializing:
      return "INITIALIZING";
    case MemberState::kActive:
      return "ACTIVE";
    case MemberState::kLeaving:
      return "LEAVING";
  }
  return "UNKNOWN";
}

std::optional<MemberState> ParseMemberState(std::string_view name) {
  for (MemberState state :
       {MemberState::kInitializing, MemberState::kActive, MemberState::kLeaving}) {
    if (name == MemberStateName(state)) {
      return state;
    }
  }
  return std::nullopt;
}

const GroupMember* GroupView::Find(uint64_t member_id) const {
  auto it = std::lower_bound(
      members.begin(), members.end(), member_id,
      [](const GroupMember& member, uint64_t id) { return member.info.member_id < id; });
  if (it == members.end() || it->info.member_id != member_id) {
    return nullptr;
  }
  return &*it;
}

std::vector<uint64_t> GroupView::IdsInState(MemberState state) const {
  std::vector<uint64_t> ids;
  for (const GroupMember& member : members) {
    if (member.state == state) {
      ids.push_back(member.info.member_id);
    }
  }
  return ids;
}

bool GroupView::HasActive() const {
  return std::any_of(members.begin(), members.end(), [](const GroupMember& member) {
    return member.state == MemberState::kActive;
  });
}

std::string FormatMemberId(uint64_t member_id) {
  return fmt::format("{:016x}", member_id);
}

std::string GroupViewToString(const GroupView& view) {
  std::string out = fmt::format("{}@{}[", view.region, view.revision);
  for (size_t i = 0; i < view.members.size(); ++i) {
    const GroupMember& member = view.members[i];
    fmt::format_to(std::back_inserter(out), "{}{} {} {}", i == 0 ? "" : ", ",
                   FormatMemberId(member.info.member_id), MemberStateName(member.state),
                   member.info.name);
  }
  out.push_back(']');
  return out;
}

Status ValidateRegionName(std::string_view region) {
  if (region.empty()) {
    return absl::InvalidArgumentError("region name is empty");
  }
  if (region.size() > kRegionNameBytesMax) {
    return absl::InvalidArgumentError(
        fmt::format("region name is {} bytes, more than {}", region.size(), kRegionNameBytesMax));
  }
  for (char c : region) {
    if (c == '/' || c <= ' ' || c > '~') {
      return absl::InvalidArgumentError(fmt::format(
          "region name '{}' may hold only printable ASCII without '/' or spaces", region));
    }
  }
  return absl::OkStatus();
}

}  // namespace weft::membership
