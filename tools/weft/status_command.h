// `weft status`: a member's replication state, and a running join followed to its end.
//
// Prints the state once (status_format.h). If a join is running on the member, follows it with
// a progress bar, polling INFO every interval_ms, until every region's phase is back to none,
// then prints the state again; bounded by timeout_s. With `watch` it keeps refreshing until
// Ctrl-C (Interrupted(), subcommand.h). A member that cannot be reached or read at the first
// poll ends the command at once; later, while following or watching, failed polls are retried
// (the connection reopened) and the command gives up after 5 s of failures.
//
// Thread safety: RunStatus runs on one thread.
#pragma once

#include <cstdint>
#include <cstdio>
#include <string>

#include "weft/base/clock.h"

namespace weft::tools {

struct StatusOptions {
  std::string member;  // host:port
  bool watch = false;
  double timeout_s = 600;
  int64_t interval_ms = 200;
};

// Writes the state and progress to `out`, errors to `err`. Returns kExitOk; kExitFailure when
// the member cannot be reached or read, a join failed, or following it timed out or was
// interrupted; kExitUsage for a bad address. `clock` times the polling (a SystemClock in the
// CLI: the waits between polls are real).
int RunStatus(const StatusOptions& options, std::FILE* out, std::FILE* err, const Clock& clock);

}  // namespace weft::tools
