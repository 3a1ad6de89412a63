// JoinPhase: where a joining member's join stands (DESIGN.md §5), and the only transitions
// allowed between phases. The table is checked on every transition, in production too: a join
// that skips a phase (an image before stabilization, ACTIVE before the image) is a bug that would
// corrupt data, so it stops the process rather than go on.
//
//   none -> intent -> stabilize -> image -> incorporate -> flush -> none
//   intent | stabilize | image -> retry -> intent     (an attempt failed; another after a backoff)
//   none -> retry                                     (no ACTIVE member to join from yet)
//   any -> failed                                     (the member was dropped from the group)
#pragma once

#include <optional>
#include <string_view>

namespace weft::replication {

enum class JoinPhase { kNone, kIntent, kStabilize, kImage, kIncorporate, kFlush, kRetry, kFailed };

std::string_view JoinPhaseName(JoinPhase phase);
// The phase named as JoinPhaseName names it, or nullopt.
std::optional<JoinPhase> ParseJoinPhase(std::string_view name);
// Whether a join may go from `from` to `to`.
bool JoinPhaseTransitionAllowed(JoinPhase from, JoinPhase to);

}  // namespace weft::replication
