// CommandTable: finds a request's command, enforces authentication and arity with Redis's
// error texts, and runs the handler.
//
// Thread safety: immutable after construction; Execute may run on any thread concurrently.
#pragma once

#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "absl/container/flat_hash_map.h"

#include "weft/base/strings.h"
#include "weft/server/command.h"

namespace weft::server {

class CommandTable {
 public:
  CommandTable();

  // Runs one request (args[0] is the command name) and writes its reply.
  // REQUIRES: !args.empty().
  void Execute(ServerState& server, Session& session, resp::ReplyWriter& reply,
               std::span<const std::string_view> args) const;

  // Case-insensitive lookup; nullptr when unknown.
  const CommandSpec* Find(std::string_view name) const;

  const std::vector<CommandSpec>& specs() const { return specs_; }

 private:
  // The name CLIENT LIST reports for a request: "client|list" for container commands, as
  // Redis 7 does, otherwise the command's own name. The strings live as long as the table.
  const char* ReportedName(const CommandSpec& spec, std::span<const std::string_view> args) const;

  std::vector<CommandSpec> specs_;
  absl::flat_hash_map<std::string, std::string> full_names_;
  std::vector<const CommandSpec*> containers_;
  absl::flat_hash_map<std::string_view, const CommandSpec*, StringViewHash> by_name_;
};

// The command table is also reachable from COMMAND's handler; it is built once per process.
const CommandTable& GlobalCommandTable();

// Redis's text for a request naming no known command.
std::string UnknownCommandError(std::span<const std::string_view> args);

}  // namespace weft::server
