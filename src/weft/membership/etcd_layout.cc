#include "weft/membership/etcd_layout.h"

#include <simdjson.h>

#include <charconv>

#include "weft/membership/etcd_client.h"

#include <fmt/format.h>

namespace weft::membership::etcd_layout {

Status ValidateClusterName(std::string_view cluster) {
  Status status = ValidateRegionName(cluster);
  if (!status.ok()) {
    return absl::InvalidArgumentError(
        fmt::format("bad cluster name: {}", std::string(status.message())));
  }
  return status;
}

std::string MemberKey(std::string_view cluster, uint64_t member_id) {
  return fmt::format("/weft/{}/members/{}", cluster, FormatMemberId(member_id));
}

std::string RegionPrefix(std::string_view cluster, std::string_view region) {
  return fmt::format("/weft/{}/regions/{}/", cluster, region);
}

std::string RegionMemberKey(std::string_view cluster, std::string_view region, uint64_t member_id) {
  return RegionPrefix(cluster, region) + FormatMemberId(member_id);
}

std::string HoldersPrefix(std::string_view cluster, std::string_view region) {
  return fmt::format("/weft/{}/holders/{}/", cluster, region);
}

std::string HolderKey(std::string_view cluster, std::string_view region, uint64_t member_id) {
  return HoldersPrefix(cluster, region) + FormatMemberId(member_id);
}

std::string PrefixEnd(std::string_view prefix) {
  std::string end(prefix);
  while (!end.empty()) {
    auto& last = reinterpret_cast<unsigned char&>(end.back());
    if (last < 0xff) {
      ++last;
      return end;
    }
    end.pop_back();
  }
  return end;
}

std::optional<uint64_t> ParseMemberId(std::string_view text) {
  if (text.size() != 16) {
    return std::nullopt;
  }
  for (char c : text) {
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) {
      return std::nullopt;
    }
  }
  uint64_t id = 0;
  std::from_chars(text.data(), text.data() + text.size(), id, 16);
  if (id == 0) {
    return std::nullopt;
  }
  return id;
}

std::string EncodeMember(const MemberInfo& info, std::optional<MemberState> state) {
  std::string out = "{";
  if (state) {
    fmt::format_to(std::back_inserter(out), R"("state":"{}",)", MemberStateName(*state));
  }
  fmt::format_to(std::back_inserter(out),
                 R"("member_id":"{}","name":{},"peer_address":{},"client_address":{}}})",
                 FormatMemberId(info.member_id), JsonQuote(info.name), JsonQuote(info.peer_address),
                 JsonQuote(info.client_address));
  return out;
}

StatusOr<GroupMember> DecodeRegionMember(std::string_view value) {
  simdjson::dom::parser parser;
  simdjson::dom::object object;
  if (parser.parse(value.data(), value.size()).get_object().get(object) != simdjson::SUCCESS) {
    return absl::InvalidArgumentError("member value is not a JSON object");
  }
  auto text_field = [&object](std::string_view name) -> std::optional<std::string_view> {
    std::string_view text;
    if (object[name].get_string().get(text) != simdjson::SUCCESS) {
      return std::nullopt;
    }
    return text;
  };
  GroupMember member;
  const std::optional<std::string_view> state = text_field("state");
  const std::optional<MemberState> parsed_state = state ? ParseMemberState(*state) : std::nullopt;
  if (!parsed_state) {
    return absl::InvalidArgumentError("member value has no valid state");
  }
  member.state = *parsed_state;
  const std::optional<std::string_view> id = text_field("member_id");
  const std::optional<uint64_t> parsed_id = id ? ParseMemberId(*id) : std::nullopt;
  if (!parsed_id) {
    return absl::InvalidArgumentError("member value has no valid member_id");
  }
  member.info.member_id = *parsed_id;
  member.info.name = std::string(text_field("name").value_or(""));
  member.info.peer_address = std::string(text_field("peer_address").value_or(""));
  member.info.client_address = std::string(text_field("client_address").value_or(""));
  return member;
}

}  // namespace weft::membership::etcd_layout
