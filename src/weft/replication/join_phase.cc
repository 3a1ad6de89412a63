#include "weft/replication/join_phase.h"

namespace weft::replication {

std::string_view JoinPhaseName(JoinPhase phase) {
  switch (phase) {
    case JoinPhase::kNone:
      return "none";
    case JoinPhase::kIntent:
      return "intent";
    case JoinPhase::kStabilize:
      return "stabilize";
    case JoinPhase::kImage:
      return "image";
    case JoinPhase::kIncorporate:
      return "incorporate";
    case JoinPhase::kFlush:
      return "flush";
    case JoinPhase::kRetry:
      return "retry";
    case JoinPhase::kFailed:
      return "failed";
  }
  return "?";
}

std::optional<JoinPhase> ParseJoinPhase(std::string_view name) {
  for (JoinPhase phase :
       {JoinPhase::kNone, JoinPhase::kIntent, JoinPhase::kStabilize, JoinPhase::kImage,
        JoinPhase::kIncorporate, JoinPhase::kFlush, JoinPhase::kRetry, JoinPhase::kFailed}) {
    if (JoinPhaseName(phase) == name) {
      return phase;
    }
  }
  return std::nullopt;
}

bool JoinPhaseTransitionAllowed(JoinPhase from, JoinPhase to) {
  if (to == JoinPhase::kFailed) {
    return from != JoinPhase::kFailed;
  }
  switch (from) {
    case JoinPhase::kNone:
      return to == JoinPhase::kIntent || to == JoinPhase::kRetry;
    case JoinPhase::kIntent:
      return to == JoinPhase::kStabilize || to == JoinPhase::kRetry;
    case JoinPhase::kStabilize:
      return to == JoinPhase::kImage || to == JoinPhase::kRetry;
    case JoinPhase::kImage:
      return to == JoinPhase::kIncorporate || to == JoinPhase::kRetry;
    case JoinPhase::kIncorporate:
      return to == JoinPhase::kFlush;
    case JoinPhase::kFlush:
      return to == JoinPhase::kNone;
    case JoinPhase::kRetry:
      // kNone: nobody was ACTIVE and this member still held the region; it re-formed the group
      // from its own copy instead of joining.
      return to == JoinPhase::kIntent || to == JoinPhase::kNone;
    case JoinPhase::kFailed:
      return false;
  }
  return false;
}

}  // namespace weft::replication
