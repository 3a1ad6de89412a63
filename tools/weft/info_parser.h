// Parser for the replication section of weftd's INFO (DESIGN.md §8), for `weft status` and the
// demo. The format, one "key:value" line each, with "k=v,k=v" lists as values:
//
//   # Replication
//   role:member
//   member_id:3f2a9c0d11e4b7a2
//   member_name:m1
//   regions:1
//   region0:name=default,state=ACTIVE,mode=sync,phase=none,provider=,entries=0,bytes=0,
//           rate_bps=0,eta_ms=0,postimage_keys=0,members=3,join_ms=0      (one line)
//   region0_member0:id=3f2a9c0d11e4b7a2,name=m1,state=ACTIVE,peer=127.0.0.1:7001
//   region0_failure:<free text>     (only while the region is FAILED)
//   channel0:region=default,peer=m2,dir=out,lane=0,state=connected,sent=1200,acked=1195,lag=5
//   channel1:region=default,peer=m2,dir=in,lane=0,state=connected,received=1180
//
// The parser is lenient so that an older `weft` reads a newer weftd: unknown lines and unknown
// fields are kept (not rejected), a number that does not parse reads as 0 (the raw text stays
// in `fields`), and region/member/channel indices may come in any order or with gaps. The
// only error is text that is not a replication section at all (no "role:" line), e.g. a reply
// from something that is not a Redis-protocol server. Redis's own replication section parses
// too (role:master, no regions).
//
// Thread safety: pure functions and values.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "weft/base/status.h"

namespace weft::tools {

enum class MemberState { kInitializing, kActive, kFailed, kLeaving, kUnknown };
enum class JoinPhase {
  kNone,
  kIntent,
  kStabilize,
  kImage,
  kIncorporate,
  kFlush,
  kFailed,
  kUnknown
};

// Case-insensitive; anything unrecognised is kUnknown.
MemberState ParseMemberState(std::string_view text);
JoinPhase ParseJoinPhase(std::string_view text);

// The fields of one "k=v,k=v" value, in the order received (unknown ones included).
using InfoFields = std::vector<std::pair<std::string, std::string>>;

// The value of `key` in `fields`, if present.
std::optional<std::string_view> FindField(const InfoFields& fields, std::string_view key);

// One "regionR_memberM:" line: a member of the region's group as this member sees it.
struct RegionMemberInfo {
  int index = 0;
  std::string id;
  std::string name;
  std::string state_text;
  MemberState state = MemberState::kUnknown;
  std::string peer;  // host:port of its peer listener
  InfoFields fields;
};

// One "regionR:" line plus its members.
struct RegionInfo {
  int index = 0;
  std::string name;
  std::string state_text;
  MemberState state = MemberState::kUnknown;
  std::string mode;        // sync | async
  std::string phase_text;  // none | intent | stabilize | image | incorporate | flush | failed
  JoinPhase phase = JoinPhase::kNone;
  std::string provider;  // the join's provider (empty or "none" when no join)
  int64_t entries = 0;   // image entries received by this (joining) member
  int64_t bytes = 0;     // image bytes received
  int64_t rate_bps = 0;  // image receive rate, bytes per second
  int64_t eta_ms = 0;    // estimated time until the image is complete
  int64_t postimage_keys = 0;
  int64_t member_count = 0;               // the "members=" field
  int64_t join_ms = 0;                    // time spent in the current (or last) join
  std::vector<RegionMemberInfo> members;  // sorted by index
  std::string failure;                    // "regionR_failure:" (why the region is FAILED)
  InfoFields fields;

  // A join of this region is under way on this member (any phase but none and failed; an
  // unknown phase from a newer weftd counts as under way).
  bool join_running() const { return phase != JoinPhase::kNone && phase != JoinPhase::kFailed; }
};

// One "channelN:" line: a peer channel and its counters (DESIGN.md §2).
struct ChannelInfo {
  int index = 0;
  std::string region;
  std::string peer;
  std::string direction;  // out | in
  int64_t lane = 0;
  std::string state;
  std::optional<int64_t> sent;      // out
  std::optional<int64_t> acked;     // out
  std::optional<int64_t> lag;       // out
  std::optional<int64_t> received;  // in
  InfoFields fields;
};

struct ReplicationInfo {
  std::string role;
  std::string member_id;
  std::string member_name;
  std::optional<int64_t> regions_declared;  // the "regions:" line
  std::vector<RegionInfo> regions;          // sorted by index
  std::vector<ChannelInfo> channels;        // sorted by index
  // Top-level "key:value" lines not listed above, in order (e.g. Redis's connected_slaves).
  InfoFields other;

  bool any_join_running() const;
};

// Parses the text of `INFO replication` (other sections, if present, are kept in `other` or
// skipped). InvalidArgument if there is no "role:" line.
StatusOr<ReplicationInfo> ParseReplicationInfo(std::string_view text);

}  // namespace weft::tools
