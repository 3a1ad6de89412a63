// DEBUG: the subset of Redis's DEBUG that test suites use (SET-ACTIVE-EXPIRE, LOG, SLEEP), and
// weft's replication test hooks. The hooks stall replication on purpose, so they answer only on
// a member started with --enable-debug-command (as Redis gates DEBUG with enable-debug-command):
//
//   DEBUG HOLD-PHASE <phase> ON|OFF          hold this member's join before <phase>
//   DEBUG HOLD-LANE <member> <key> ON|OFF    stop reading the lane that carries <key> from
//                                            <member> (its changes wait in the network)
//   DEBUG EVENTS <key>                       the change events recorded for <key>
//                                            (--debug-event-log): [old, new, version, origin]
//
// All act on the connection's selected region.

#include <chrono>
#include <thread>

#include "weft/base/logging.h"
#include "weft/base/strings.h"
#include "weft/server/arguments.h"
#include "weft/server/command.h"

#include <fmt/format.h>

namespace weft::server {
namespace {

std::optional<bool> ParseOnOff(std::string_view text) {
  if (EqualsIgnoreCase(text, "ON")) {
    return true;
  }
  if (EqualsIgnoreCase(text, "OFF")) {
    return false;
  }
  return std::nullopt;
}

// The replication hooks' common checks; null after replying with the error.
replication::RegionReplicator* HookTarget(CommandContext& context) {
  if (!context.server.config().enable_debug_command) {
    context.reply.Error(
        "ERR DEBUG replication hooks are not allowed: start weftd with --enable-debug-command");
    return nullptr;
  }
  replication::RegionReplicator* replicator = context.database().replicator();
  if (replicator == nullptr) {
    context.reply.Error("ERR this region does not replicate (start weftd with --registry)");
  }
  return replicator;
}

void HoldPhase(CommandContext& context) {
  replication::RegionReplicator* replicator = HookTarget(context);
  if (replicator == nullptr) {
    return;
  }
  const std::optional<replication::JoinPhase> phase = replication::ParseJoinPhase(context.args[2]);
  const std::optional<bool> hold = ParseOnOff(context.args[3]);
  if (!phase ||
      (*phase != replication::JoinPhase::kImage && *phase != replication::JoinPhase::kIncorporate &&
       *phase != replication::JoinPhase::kFlush)) {
    context.reply.Error("ERR phase must be image, incorporate or flush");
    return;
  }
  if (!hold) {
    context.reply.Error("ERR expected ON or OFF");
    return;
  }
  WEFT_LOG_INFO("DEBUG HOLD-PHASE {} {}", replication::JoinPhaseName(*phase), *hold ? "on" : "off");
  replicator->HoldPhase(*phase, *hold);
  context.reply.Ok();
}

void HoldLane(CommandContext& context) {
  if (HookTarget(context) == nullptr) {
    return;
  }
  const std::optional<bool> hold = ParseOnOff(context.args[4]);
  if (!hold) {
    context.reply.Error("ERR expected ON or OFF");
    return;
  }
  ClusterDebugHooks* hooks = context.server.cluster_debug_hooks();
  const Status status =
      hooks == nullptr
          ? absl::FailedPreconditionError("the cluster is not running")
          : hooks->HoldInboundLane(context.database(), context.args[2], context.args[3], *hold);
  if (!status.ok()) {
    context.reply.Error(StrCat("ERR ", status.message()));
    return;
  }
  context.reply.Ok();
}

void OptionalBulk(resp::ReplyWriter& reply, const std::optional<std::string>& value) {
  if (value) {
    reply.Bulk(*value);
  } else {
    reply.Null();
  }
}

void Events(CommandContext& context) {
  if (HookTarget(context) == nullptr) {
    return;
  }
  const EventLog* log = context.database().event_log();
  if (log == nullptr) {
    context.reply.Error("ERR no event log: start weftd with --debug-event-log N");
    return;
  }
  // A partial record could hide a missing event: refuse rather than answer from it.
  if (const uint64_t dropped = log->dropped(); dropped > 0) {
    context.reply.Error(StrCat("ERR the event log is full: ", dropped, " events not recorded"));
    return;
  }
  const std::vector<RecordedEvent> events = log->EventsOf(context.args[2]);
  context.reply.ArrayHeader(events.size());
  for (const RecordedEvent& event : events) {
    context.reply.ArrayHeader(4);
    OptionalBulk(context.reply, event.old_value);
    OptionalBulk(context.reply, event.new_value);
    context.reply.Bulk(fmt::format("{:x}:{}", event.version.stamp, event.version.seq));
    context.reply.Bulk(fmt::format("{:016x}", event.version.origin));
  }
}

void Debug(CommandContext& context) {
  const std::string_view sub = context.args[1];
  const size_t argc = context.args.size();
  if (EqualsIgnoreCase(sub, "SET-ACTIVE-EXPIRE") && argc == 3) {
    context.server.settings().set_active_expire_enabled(context.args[2] != "0");
    context.reply.Ok();
  } else if (EqualsIgnoreCase(sub, "LOG") && argc == 3) {
    // Test suites mark test boundaries in the server log this way.
    WEFT_LOG_INFO("DEBUG LOG: {}", context.args[2]);
    context.reply.Ok();
  } else if (EqualsIgnoreCase(sub, "SLEEP") && argc == 3) {
    const std::optional<long double> seconds = ParseLongDouble(context.args[2]);
    if (!seconds || *seconds < 0 || *seconds > 60) {
      context.reply.Error(kNotFloat);
      return;
    }
    // DEBUG SLEEP exists to stall the member on purpose (tests of timeouts); it blocks only
    // this client's I/O thread.
    std::this_thread::sleep_for(std::chrono::microseconds(static_cast<int64_t>(*seconds * 1e6)));
    context.reply.Ok();
  } else if (EqualsIgnoreCase(sub, "HOLD-PHASE") && argc == 4) {
    HoldPhase(context);
  } else if (EqualsIgnoreCase(sub, "HOLD-LANE") && argc == 5) {
    HoldLane(context);
  } else if (EqualsIgnoreCase(sub, "EVENTS") && argc == 3) {
    Events(context);
  } else {
    context.reply.Error(StrCat("ERR unknown subcommand or wrong number of arguments for '",
                               sub.substr(0, 128), "'. Try DEBUG HELP."));
  }
}

using enum CommandFlag;

}  // namespace

void AddDebugCommands(std::vector<CommandSpec>* specs) {
  specs->push_back({"debug", -2, kAdmin | kLoading | kStale, 0, 0, 0, Debug});
}

}  // namespace weft::server
