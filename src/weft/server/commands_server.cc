// Server commands: COMMAND, INFO, CONFIG, DBSIZE, FLUSHALL/FLUSHDB, FUNCTION FLUSH, TIME,
// SHUTDOWN and weft's own WEFT.DIGEST. DEBUG is in commands_debug.cc.

#include "weft/base/logging.h"
#include "weft/base/strings.h"
#include "weft/server/arguments.h"
#include "weft/server/command.h"
#include "weft/server/command_table.h"
#include "weft/server/info.h"

#include <fmt/format.h>

namespace weft::server {
namespace {

void WrongSubcommandArity(CommandContext& context, std::string_view command,
                          std::string_view subcommand) {
  context.reply.Error(StrCat("ERR wrong number of arguments for '", command, "|",
                             AsciiLower(subcommand), "' command"));
}

void UnknownSubcommand(CommandContext& context, std::string_view command) {
  context.reply.Error(StrCat("ERR unknown subcommand '", context.args[1].substr(0, 128), "'. Try ",
                             command, " HELP."));
}

void DescribeCommand(resp::ReplyWriter& reply, const CommandSpec& spec) {
  static constexpr std::pair<CommandFlag, std::string_view> kFlagNames[] = {
      {CommandFlag::kWrite, "write"},     {CommandFlag::kReadOnly, "readonly"},
      {CommandFlag::kDenyOom, "denyoom"}, {CommandFlag::kAdmin, "admin"},
      {CommandFlag::kNoAuth, "no_auth"},  {CommandFlag::kLoading, "loading"},
      {CommandFlag::kStale, "stale"},     {CommandFlag::kFast, "fast"},
  };
  reply.ArrayHeader(10);
  reply.Bulk(spec.name);
  reply.Integer(spec.arity);
  size_t flag_count = 0;
  for (const auto& [flag, name] : kFlagNames)
    flag_count += (spec.flags & Flags(flag)) != 0;
  reply.SetHeader(flag_count);
  for (const auto& [flag, name] : kFlagNames) {
    if ((spec.flags & Flags(flag)) != 0)
      reply.SimpleString(name);
  }
  reply.Integer(spec.first_key);
  reply.Integer(spec.last_key);
  reply.Integer(spec.key_step);
  reply.SetHeader(0);    // ACL categories
  reply.SetHeader(0);    // tips
  reply.ArrayHeader(0);  // key specifications
  reply.ArrayHeader(0);  // subcommands
}

void Command(CommandContext& context) {
  const CommandTable& table = GlobalCommandTable();
  if (context.args.size() == 1) {
    context.reply.ArrayHeader(table.specs().size());
    for (const CommandSpec& spec : table.specs())
      DescribeCommand(context.reply, spec);
    return;
  }
  const std::string_view sub = context.args[1];
  if (EqualsIgnoreCase(sub, "COUNT")) {
    if (context.args.size() != 2)
      return WrongSubcommandArity(context, "command", sub);
    context.reply.Integer(static_cast<int64_t>(table.specs().size()));
  } else if (EqualsIgnoreCase(sub, "INFO")) {
    if (context.args.size() == 2) {
      context.reply.ArrayHeader(table.specs().size());
      for (const CommandSpec& spec : table.specs())
        DescribeCommand(context.reply, spec);
      return;
    }
    context.reply.ArrayHeader(context.args.size() - 2);
    for (size_t i = 2; i < context.args.size(); ++i) {
      if (const CommandSpec* spec = table.Find(context.args[i])) {
        DescribeCommand(context.reply, *spec);
      } else {
        context.reply.NullArray();
      }
    }
  } else if (EqualsIgnoreCase(sub, "LIST")) {
    context.reply.ArrayHeader(table.specs().size());
    for (const CommandSpec& spec : table.specs())
      context.reply.Bulk(spec.name);
  } else if (EqualsIgnoreCase(sub, "DOCS")) {
    // weft carries no command documentation; an empty map tells clients (redis-cli hints) so.
    context.reply.MapHeader(0);
  } else {
    UnknownSubcommand(context, "COMMAND");
  }
}

void Info(CommandContext& context) {
  context.reply.Verbatim("txt", RenderInfo(context.server, context.args.subspan(1)));
}

void Config(CommandContext& context) {
  const std::string_view sub = context.args[1];
  RuntimeSettings& settings = context.server.settings();
  if (EqualsIgnoreCase(sub, "GET")) {
    if (context.args.size() < 3)
      return WrongSubcommandArity(context, "config", sub);
    std::vector<std::pair<std::string, std::string>> found;
    for (size_t i = 2; i < context.args.size(); ++i)
      settings.Get(context.args[i], &found);
    context.reply.MapHeader(found.size());
    for (const auto& [name, value] : found) {
      context.reply.Bulk(name);
      context.reply.Bulk(value);
    }
  } else if (EqualsIgnoreCase(sub, "SET")) {
    if (context.args.size() < 4 || context.args.size() % 2 != 0) {
      return WrongSubcommandArity(context, "config", sub);
    }
    for (size_t i = 2; i < context.args.size(); i += 2) {
      const Status status = settings.Set(context.args[i], context.args[i + 1]);
      if (status.ok())
        continue;
      if (absl::IsNotFound(status)) {
        context.reply.Error(StrCat("ERR ", status.message()));
      } else {
        context.reply.Error(StrCat("ERR CONFIG SET failed (possibly related to argument '",
                                   context.args[i], "') - ", status.message()));
      }
      return;
    }
    context.reply.Ok();
  } else if (EqualsIgnoreCase(sub, "RESETSTAT")) {
    ServerStats& stats = context.server.stats();
    for (auto* counter :
         {&stats.commands_processed, &stats.keyspace_hits, &stats.keyspace_misses,
          &stats.connections_received, &stats.connections_rejected, &stats.net_input_bytes,
          &stats.net_output_bytes, &stats.output_limit_disconnections, &stats.protocol_errors}) {
      counter->store(0, std::memory_order_relaxed);
    }
    context.reply.Ok();
  } else if (EqualsIgnoreCase(sub, "REWRITE")) {
    context.reply.Error("ERR The server is running without a config file");
  } else {
    UnknownSubcommand(context, "CONFIG");
  }
}

void DbSize(CommandContext& context) {
  context.reply.Integer(static_cast<int64_t>(context.database().store().KeyCount()));
}

// FLUSHALL / FLUSHDB [ASYNC|SYNC]: weft frees synchronously either way.
bool ValidFlushMode(CommandContext& context) {
  if (context.args.size() > 2 ||
      (context.args.size() == 2 && !EqualsIgnoreCase(context.args[1], "ASYNC") &&
       !EqualsIgnoreCase(context.args[1], "SYNC"))) {
    context.reply.Error(kSyntaxError);
    return false;
  }
  return true;
}

// A replicated region cannot just drop its memory: every member must end up with the same
// contents, and a concurrent write elsewhere must win if it is newer. So each live key is
// deleted as an ordinary versioned change (replicated like DEL), a short batch per shard lock.
void FlushDatabase(Database& database, const storage::ChangeContext* change_context) {
  if (database.replicator() == nullptr) {
    database.store().Clear();
    return;
  }
  std::vector<std::string> keys;
  uint64_t cursor = 0;
  do {
    keys.clear();
    cursor = database.store().Scan(
        cursor, 256, /*include_tombstones=*/false,
        [&](const storage::EntryView& entry) { keys.emplace_back(entry.key); });
    for (const std::string& key : keys) {
      database.store().WithKey(
          key, [&](storage::LockedKeys& locked) { locked.Delete(key, database.versions().Next()); },
          change_context);
    }
  } while (cursor != 0);
}

void FlushAll(CommandContext& context) {
  if (!ValidFlushMode(context))
    return;
  for (size_t i = 0; i < context.server.database_count(); ++i) {
    FlushDatabase(context.server.database(i), context.session.change_context());
  }
  context.reply.Ok();
}

void FlushDb(CommandContext& context) {
  if (!ValidFlushMode(context))
    return;
  FlushDatabase(context.database(), context.session.change_context());
  context.reply.Ok();
}

// FUNCTION FLUSH is accepted because tools (Redis's test suite among them) call it between
// tests; weft has no functions, so there is nothing to flush and nothing else to answer.
void Function(CommandContext& context) {
  const std::string_view sub = context.args[1];
  if (EqualsIgnoreCase(sub, "FLUSH")) {
    if (context.args.size() > 3)
      return WrongSubcommandArity(context, "function", sub);
    context.reply.Ok();
  } else if (EqualsIgnoreCase(sub, "LIST")) {
    context.reply.ArrayHeader(0);
  } else {
    UnknownSubcommand(context, "FUNCTION");
  }
}

void Time(CommandContext& context) {
  const int64_t now_us = context.server.clock().NowUnixMs() * 1000;
  context.reply.ArrayHeader(2);
  context.reply.Bulk(StrCat(now_us / 1'000'000));
  context.reply.Bulk(StrCat(now_us % 1'000'000));
}

void Shutdown(CommandContext& context) {
  // Redis never replies to a successful SHUTDOWN: the connection just closes.
  context.session.close_after_reply = true;
  context.server.RequestShutdown();
}

// WEFT.DIGEST [region-index]: the order-independent content digest, as 16 hex digits.
void WeftDigest(CommandContext& context) {
  Database* database = &context.database();
  if (context.args.size() == 2) {
    const std::optional<int64_t> index = ParseInt64(context.args[1]);
    if (!index || *index < 0 || *index >= static_cast<int64_t>(context.server.database_count())) {
      context.reply.Error("ERR DB index is out of range");
      return;
    }
    database = &context.server.database(static_cast<size_t>(*index));
  } else if (context.args.size() > 2) {
    context.reply.Error("ERR wrong number of arguments for 'weft.digest' command");
    return;
  }
  context.reply.Bulk(fmt::format("{:016x}", database->store().Digest()));
}

using enum CommandFlag;

}  // namespace

void AddServerCommands(std::vector<CommandSpec>* specs) {
  specs->insert(specs->end(), {
                                  {"command", -1, kLoading | kStale, 0, 0, 0, Command},
                                  {"info", -1, kLoading | kStale, 0, 0, 0, Info},
                                  {"config", -2, kAdmin | kLoading | kStale, 0, 0, 0, Config},
                                  {"dbsize", 1, kReadOnly | kFast, 0, 0, 0, DbSize},
                                  {"flushall", -1, Flags(kWrite), 0, 0, 0, FlushAll},
                                  {"flushdb", -1, Flags(kWrite), 0, 0, 0, FlushDb},
                                  {"function", -2, Flags(kWrite), 0, 0, 0, Function},
                                  {"time", 1, kLoading | kStale | kFast, 0, 0, 0, Time},
                                  {"shutdown", -1, kAdmin | kLoading | kStale, 0, 0, 0, Shutdown},
                                  {"weft.digest", -1, Flags(kReadOnly), 0, 0, 0, WeftDigest},
                              });
}

}  // namespace weft::server
