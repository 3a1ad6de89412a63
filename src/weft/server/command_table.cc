#include "weft/server/command_table.h"

#include <algorithm>
#include <memory>

#include "absl/cleanup/cleanup.h"

#include "weft/base/strings.h"
#include "weft/replication/replicator.h"
#include "weft/replication/write_ticket.h"
#include "weft/server/server_state.h"

namespace weft::server {

CommandTable::CommandTable() {
  AddConnectionCommands(&specs_);
  AddServerCommands(&specs_);
  AddDebugCommands(&specs_);
  AddStringCommands(&specs_);
  AddKeyspaceCommands(&specs_);
  by_name_.reserve(specs_.size());
  for (const CommandSpec& spec : specs_)
    by_name_.emplace(spec.name, &spec);
  static constexpr std::pair<std::string_view, std::string_view> kSubcommands[] = {
      {"client", "id setname getname list info kill no-evict no-touch help"},
      {"config", "get set resetstat rewrite"},
      {"command", "count info list docs"},
      {"function", "flush list"},
      {"debug", "set-active-expire log sleep"},
  };
  for (const auto& [command, subcommands] : kSubcommands) {
    containers_.push_back(Find(command));
    for (std::string_view sub : SplitSkipEmpty(subcommands, ' ')) {
      std::string key = StrCat(command, " ", sub);
      full_names_.emplace(std::move(key), StrCat(command, "|", sub));
    }
  }
}

const char* CommandTable::ReportedName(const CommandSpec& spec,
                                       std::span<const std::string_view> args) const {
  if (args.size() < 2 || args[1].size() > 32 ||
      std::find(containers_.begin(), containers_.end(), &spec) == containers_.end()) {
    return spec.name;
  }
  const auto it = full_names_.find(StrCat(spec.name, " ", AsciiLower(args[1])));
  return it == full_names_.end() ? spec.name : it->second.c_str();
}

const CommandTable& GlobalCommandTable() {
  // A function-local static rather than a global: built on first use, immutable after, and the
  // table is the same for every server in the process.
  static const CommandTable table;
  return table;
}

const CommandSpec* CommandTable::Find(std::string_view name) const {
  char lower[32];
  if (name.size() >= sizeof(lower))
    return nullptr;
  for (size_t i = 0; i < name.size(); ++i)
    lower[i] = AsciiLower(name[i]);
  const auto it = by_name_.find(std::string_view(lower, name.size()));
  return it == by_name_.end() ? nullptr : it->second;
}

std::string UnknownCommandError(std::span<const std::string_view> args) {
  // Mirrors Redis 7.0: the name and the first arguments, each cut so the list stays under 128
  // bytes, newlines made harmless by the reply writer.
  std::string list;
  for (size_t i = 1; i < args.size() && list.size() < 128; ++i) {
    const size_t room = 128 - list.size();
    StrAppend(&list, "'", args[i].substr(0, room), "' ");
  }
  return StrCat("ERR unknown command '", args[0].substr(0, 128),
                "', with args beginning with: ", list);
}

void CommandTable::Execute(ServerState& server, Session& session, resp::ReplyWriter& reply,
                           std::span<const std::string_view> args) const {
  server.stats().commands_processed.fetch_add(1, std::memory_order_relaxed);
  const CommandSpec* spec = Find(args[0]);
  if (spec == nullptr) {
    session.NoteCommand("unknown", server.clock().NowUnixMs());
    reply.Error(UnknownCommandError(args));
    return;
  }
  session.NoteCommand(ReportedName(*spec, args), server.clock().NowUnixMs());
  if (server.settings().auth_required() && !session.authenticated &&
      (spec->flags & Flags(CommandFlag::kNoAuth)) == 0) {
    reply.Error("NOAUTH Authentication required.");
    return;
  }
  const int argc = static_cast<int>(args.size());
  if ((spec->arity > 0 && argc != spec->arity) || (spec->arity < 0 && argc < -spec->arity)) {
    reply.Error(StrCat("ERR wrong number of arguments for '", spec->name, "' command"));
    return;
  }
  CommandContext context{server, session, reply, args};
  // A write snapshots the region's recipient set before it checks that the region serves, and
  // holds it until it is done: a rejoin (which stops serving, then replaces the set) can then
  // wait for every write that passed the check to finish before it clears the copy; a write
  // that takes the snapshot later sees the region not serving (docs/design/replication.md,
  // "Rejoining in place"; seed 2072).
  replication::RegionReplicator* replicator = context.database().replicator();
  std::shared_ptr<const replication::RecipientSet> snapshot;
  if (replicator != nullptr && (spec->flags & Flags(CommandFlag::kWrite)) != 0) {
    snapshot = replicator->write_path().Begin();
  }
  const absl::Cleanup end_write = [&] {
    if (snapshot != nullptr) {
      replicator->write_path().End(*snapshot);
    }
  };
  if ((spec->flags & Flags(CommandFlag::kLoading)) == 0 && !context.database().serving()) {
    if (replicator != nullptr && replicator->state() == replication::RegionState::kFailed) {
      // As Redis Cluster answers when it cannot serve a slot: clients treat it as retryable.
      reply.Error(StrCat("CLUSTERDOWN region '", context.database().region().name,
                         "' failed on this member: ", replicator->failure_reason()));
    } else if (replicator != nullptr && replicator->complete()) {
      // Cut off from the group (the read guard): retryable, like a cluster that is down.
      reply.Error(StrCat("CLUSTERDOWN region '", context.database().region().name,
                         "' is cut off on this member: ", replicator->not_serving_reason()));
    } else {
      reply.Error("LOADING weft is loading the dataset in memory");
    }
    return;
  }
  if (snapshot == nullptr) {
    spec->handler(context);
    return;
  }
  const storage::ChangeContext* outer = session.change_context();
  replication::WriteContext write;
  if (outer != nullptr) {
    // The connection's context for this batch of requests (the only kind a session carries).
    write.ticket = static_cast<const replication::WriteContext*>(outer)->ticket;
  }
  write.snapshot = snapshot.get();
  session.set_change_context(&write);
  spec->handler(context);
  session.set_change_context(outer);
}

}  // namespace weft::server
