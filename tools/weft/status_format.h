// How `weft status` shows a member's replication state (from INFO replication, info_parser.h).
// Pure functions so that the output can be tested without a server.
//
// Thread safety: pure functions.
#pragma once

#include <string>

#include "tools/weft/info_parser.h"
#include "tools/weft/progress_bar.h"
#include "tools/weft/resp_client.h"

namespace weft::tools {

// The member line, one block per region (its state and phase, then its members table) and the
// channels table. Ends with '\n'.
std::string FormatStatus(const ReplicationInfo& info, const HostPort& member);

// The progress line state of `region`'s join: bytes received against the total estimated from
// rate and ETA (bytes + rate_bps * eta_ms / 1000; unknown while either is 0), with the entry
// count, phase and provider as detail. rate_bps is read as bytes per second.
ProgressState JoinProgress(const RegionInfo& region);

}  // namespace weft::tools
