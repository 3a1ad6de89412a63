#include "tools/weft/info_parser.h"

#include <algorithm>
#include <charconv>
#include <map>

#include "weft/base/strings.h"

namespace weft::tools {
namespace {

InfoFields ParseFields(std::string_view value) {
  InfoFields fields;
  for (std::string_view piece : SplitSkipEmpty(value, ',')) {
    const size_t equals = piece.find('=');
    if (equals == std::string_view::npos) {
      fields.emplace_back(std::string(piece), "");
    } else {
      fields.emplace_back(std::string(piece.substr(0, equals)),
                          std::string(piece.substr(equals + 1)));
    }
  }
  return fields;
}

int64_t ToInteger(std::string_view text) {
  int64_t value = 0;
  const auto [end, error] = std::from_chars(text.data(), text.data() + text.size(), value);
  return error == std::errc() && end == text.data() + text.size() ? value : 0;
}

std::string FieldText(const InfoFields& fields, std::string_view key) {
  return std::string(FindField(fields, key).value_or(""));
}

int64_t FieldInteger(const InfoFields& fields, std::string_view key) {
  return ToInteger(FindField(fields, key).value_or(""));
}

std::optional<int64_t> OptionalInteger(const InfoFields& fields, std::string_view key) {
  std::optional<std::string_view> text = FindField(fields, key);
  if (!text.has_value())
    return std::nullopt;
  return ToInteger(*text);
}

// Reads a decimal index at the start of `text`; returns its length (0 if none).
size_t ReadIndex(std::string_view text, int* index) {
  size_t length = 0;
  while (length < text.size() && length < 6 && text[length] >= '0' && text[length] <= '9')
    ++length;
  if (length == 0)
    return 0;
  std::from_chars(text.data(), text.data() + length, *index);
  return length;
}

// What a "key" of a key:value line names.
struct LineKey {
  enum class Kind { kOther, kRegion, kRegionMember, kRegionFailure, kChannel } kind = Kind::kOther;
  int index = 0;         // region or channel index
  int member_index = 0;  // for kRegionMember
};

LineKey ClassifyKey(std::string_view key) {
  LineKey result;
  int index = 0;
  if (key.starts_with("channel")) {
    const size_t length = ReadIndex(key.substr(7), &index);
    if (length > 0 && 7 + length == key.size())
      return {LineKey::Kind::kChannel, index, 0};
    return result;
  }
  if (!key.starts_with("region"))
    return result;
  const size_t length = ReadIndex(key.substr(6), &index);
  if (length == 0)
    return result;
  std::string_view rest = key.substr(6 + length);
  if (rest.empty())
    return {LineKey::Kind::kRegion, index, 0};
  if (rest == "_failure")
    return {LineKey::Kind::kRegionFailure, index, 0};
  int member_index = 0;
  if (rest.starts_with("_member")) {
    const size_t member_length = ReadIndex(rest.substr(7), &member_index);
    if (member_length > 0 && 7 + member_length == rest.size())
      return {LineKey::Kind::kRegionMember, index, member_index};
  }
  return result;
}

void FillRegion(RegionInfo* region, InfoFields fields) {
  region->name = FieldText(fields, "name");
  region->state_text = FieldText(fields, "state");
  region->state = ParseMemberState(region->state_text);
  region->mode = FieldText(fields, "mode");
  region->phase_text = FieldText(fields, "phase");
  // A line without a phase (an older weftd) has no join running.
  region->phase =
      region->phase_text.empty() ? JoinPhase::kNone : ParseJoinPhase(region->phase_text);
  region->provider = FieldText(fields, "provider");
  region->entries = FieldInteger(fields, "entries");
  region->bytes = FieldInteger(fields, "bytes");
  region->rate_bps = FieldInteger(fields, "rate_bps");
  region->eta_ms = FieldInteger(fields, "eta_ms");
  region->postimage_keys = FieldInteger(fields, "postimage_keys");
  region->member_count = FieldInteger(fields, "members");
  region->join_ms = FieldInteger(fields, "join_ms");
  region->fields = std::move(fields);
}

RegionMemberInfo MakeRegionMember(int index, InfoFields fields) {
  RegionMemberInfo member;
  member.index = index;
  member.id = FieldText(fields, "id");
  member.name = FieldText(fields, "name");
  member.state_text = FieldText(fields, "state");
  member.state = ParseMemberState(member.state_text);
  member.peer = FieldText(fields, "peer");
  member.fields = std::move(fields);
  return member;
}

ChannelInfo MakeChannel(int index, InfoFields fields) {
  ChannelInfo channel;
  channel.index = index;
  channel.region = FieldText(fields, "region");
  channel.peer = FieldText(fields, "peer");
  channel.direction = FieldText(fields, "dir");
  channel.lane = FieldInteger(fields, "lane");
  channel.state = FieldText(fields, "state");
  channel.sent = OptionalInteger(fields, "sent");
  channel.acked = OptionalInteger(fields, "acked");
  channel.lag = OptionalInteger(fields, "lag");
  channel.received = OptionalInteger(fields, "received");
  channel.fields = std::move(fields);
  return channel;
}

}  // namespace

MemberState ParseMemberState(std::string_view text) {
  const std::string lower = AsciiLower(text);
  if (lower == "initializing")
    return MemberState::kInitializing;
  if (lower == "active")
    return MemberState::kActive;
  if (lower == "failed")
    return MemberState::kFailed;
  if (lower == "leaving")
    return MemberState::kLeaving;
  return MemberState::kUnknown;
}

JoinPhase ParseJoinPhase(std::string_view text) {
  static constexpr std::pair<std::string_view, JoinPhase> kPhases[] = {
      {"none", JoinPhase::kNone},
      {"intent", JoinPhase::kIntent},
      {"stabilize", JoinPhase::kStabilize},
      {"image", JoinPhase::kImage},
      {"incorporate", JoinPhase::kIncorporate},
      {"flush", JoinPhase::kFlush},
      {"failed", JoinPhase::kFailed},
  };
  for (const auto& [name, phase] : kPhases) {
    if (EqualsIgnoreCase(text, name))
      return phase;
  }
  return JoinPhase::kUnknown;
}

std::optional<std::string_view> FindField(const InfoFields& fields, std::string_view key) {
  for (const auto& [name, value] : fields) {
    if (name == key)
      return std::string_view(value);
  }
  return std::nullopt;
}

bool ReplicationInfo::any_join_running() const {
  return std::any_of(regions.begin(), regions.end(),
                     [](const RegionInfo& region) { return region.join_running(); });
}

StatusOr<ReplicationInfo> ParseReplicationInfo(std::string_view text) {
  ReplicationInfo info;
  bool saw_role = false;
  // Sections other than Replication (INFO without arguments) are skipped.
  bool in_replication = true;
  // Ordered maps: indices may arrive in any order; the output is sorted.
  std::map<int, RegionInfo> regions;
  std::map<int, std::map<int, RegionMemberInfo>> members;
  std::map<int, ChannelInfo> channels;
  for (std::string_view line : SplitSkipEmpty(text, '\n')) {
    if (line.ends_with('\r'))
      line.remove_suffix(1);
    if (line.starts_with('#')) {
      std::string_view title = line.substr(1);
      while (title.starts_with(' '))
        title.remove_prefix(1);
      in_replication = EqualsIgnoreCase(title, "replication");
      continue;
    }
    const size_t colon = line.find(':');
    if (!in_replication || colon == std::string_view::npos)
      continue;
    const std::string_view key = line.substr(0, colon);
    const std::string_view value = line.substr(colon + 1);
    const LineKey kind = ClassifyKey(key);
    switch (kind.kind) {
      case LineKey::Kind::kRegion: {
        RegionInfo& region = regions[kind.index];
        region.index = kind.index;
        FillRegion(&region, ParseFields(value));
        break;
      }
      case LineKey::Kind::kRegionMember:
        regions[kind.index].index = kind.index;
        members[kind.index][kind.member_index] =
            MakeRegionMember(kind.member_index, ParseFields(value));
        break;
      case LineKey::Kind::kRegionFailure:
        regions[kind.index].index = kind.index;
        regions[kind.index].failure = std::string(value);
        break;
      case LineKey::Kind::kChannel:
        channels[kind.index] = MakeChannel(kind.index, ParseFields(value));
        break;
      case LineKey::Kind::kOther:
        if (key == "role") {
          info.role = std::string(value);
          saw_role = true;
        } else if (key == "member_id") {
          info.member_id = std::string(value);
        } else if (key == "member_name") {
          info.member_name = std::string(value);
        } else if (key == "regions") {
          info.regions_declared = ToInteger(value);
        } else {
          info.other.emplace_back(std::string(key), std::string(value));
        }
        break;
    }
  }
  if (!saw_role) {
    return absl::InvalidArgumentError(
        "not an INFO replication section (no 'role:' line in the reply)");
  }
  for (auto& [index, region] : regions) {
    for (auto& [member_index, member] : members[index])
      region.members.push_back(std::move(member));
    info.regions.push_back(std::move(region));
  }
  for (auto& [index, channel] : channels)
    info.channels.push_back(std::move(channel));
  return info;
}

}  // namespace weft::tools
