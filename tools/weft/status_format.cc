#include "tools/weft/status_format.h"

#include "tools/weft/text_table.h"
#include <fmt/format.h>

namespace weft::tools {
namespace {

std::string OrDash(const std::string& text) {
  return text.empty() ? "-" : text;
}

std::string OptionalNumber(const std::optional<int64_t>& value) {
  return value.has_value() ? std::to_string(*value) : "-";
}

bool HasProvider(const RegionInfo& region) {
  return !region.provider.empty() && region.provider != "none";
}

std::string RegionLine(const RegionInfo& region) {
  std::string line = fmt::format("region {}: {}", OrDash(region.name), OrDash(region.state_text));
  if (!region.mode.empty())
    line += ", mode " + region.mode;
  line += ", phase " + (region.phase_text.empty() ? std::string("none") : region.phase_text);
  if (region.member_count > 0 || !region.members.empty()) {
    line += fmt::format(", {} members", region.member_count > 0
                                            ? region.member_count
                                            : static_cast<int64_t>(region.members.size()));
  }
  if (region.phase != JoinPhase::kNone) {
    if (HasProvider(region))
      line += ", provider " + region.provider;
    line += fmt::format(", {} entries, {} received", HumanCount(region.entries),
                        HumanBytes(region.bytes));
    if (region.postimage_keys > 0)
      line += fmt::format(", {} post-image keys", HumanCount(region.postimage_keys));
    if (region.join_ms > 0)
      line += ", joining for " + HumanDuration(region.join_ms);
  } else if (region.join_ms > 0) {
    line += ", last join took " + HumanDuration(region.join_ms);
  }
  line += "\n";
  if (!region.failure.empty())
    line += "  failed: " + region.failure + "\n";
  return line;
}

std::string MembersTable(const RegionInfo& region) {
  using Align = TextTable::Align;
  TextTable table({{"NAME", Align::kLeft},
                   {"ID", Align::kLeft},
                   {"STATE", Align::kLeft},
                   {"PEER", Align::kLeft}});
  for (const RegionMemberInfo& member : region.members) {
    table.AddRow(
        {OrDash(member.name), OrDash(member.id), OrDash(member.state_text), OrDash(member.peer)});
  }
  return table.Render("  ");
}

std::string ChannelsTable(const ReplicationInfo& info) {
  using Align = TextTable::Align;
  TextTable table({{"REGION", Align::kLeft},
                   {"PEER", Align::kLeft},
                   {"DIR", Align::kLeft},
                   {"LANE", Align::kRight},
                   {"STATE", Align::kLeft},
                   {"SENT", Align::kRight},
                   {"ACKED", Align::kRight},
                   {"LAG", Align::kRight},
                   {"RECEIVED", Align::kRight}});
  for (const ChannelInfo& channel : info.channels) {
    table.AddRow({OrDash(channel.region), OrDash(channel.peer), OrDash(channel.direction),
                  std::to_string(channel.lane), OrDash(channel.state), OptionalNumber(channel.sent),
                  OptionalNumber(channel.acked), OptionalNumber(channel.lag),
                  OptionalNumber(channel.received)});
  }
  return table.Render("  ");
}

}  // namespace

std::string FormatStatus(const ReplicationInfo& info, const HostPort& member) {
  std::string out =
      fmt::format("member {}", info.member_name.empty() ? "(unnamed)" : info.member_name);
  if (!info.member_id.empty())
    out += fmt::format(" (id {})", info.member_id);
  out += fmt::format(" at {}, role {}\n", member.ToString(), OrDash(info.role));
  if (info.regions.empty())
    out += "no regions\n";
  for (const RegionInfo& region : info.regions) {
    out += RegionLine(region);
    if (!region.members.empty())
      out += MembersTable(region);
  }
  if (info.channels.empty()) {
    out += "channels: none\n";
  } else {
    out += "channels:\n";
    out += ChannelsTable(info);
  }
  return out;
}

ProgressState JoinProgress(const RegionInfo& region) {
  ProgressState state;
  state.label = "join " + OrDash(region.name);
  state.unit = ProgressUnit::kBytes;
  state.done = region.bytes;
  const bool image_done =
      region.phase == JoinPhase::kIncorporate || region.phase == JoinPhase::kFlush;
  if (image_done) {
    state.total = region.bytes;
  } else if (region.rate_bps > 0 && region.eta_ms > 0) {
    state.total = region.bytes + region.rate_bps * region.eta_ms / 1000;
  }
  if (region.phase == JoinPhase::kImage) {
    state.rate_per_s = static_cast<double>(region.rate_bps);
    state.eta_ms = region.eta_ms > 0 ? region.eta_ms : -1;
  } else {
    state.rate_per_s = -1;
    state.eta_ms = -1;
  }
  state.detail = fmt::format("{} entries, phase {}", HumanCount(region.entries),
                             region.phase_text.empty() ? "none" : region.phase_text);
  if (HasProvider(region))
    state.detail += ", provider " + region.provider;
  return state;
}

}  // namespace weft::tools
