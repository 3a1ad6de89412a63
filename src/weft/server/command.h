// The shape of a command: its table entry (name, arity, flags, key positions) and the context a
// handler runs with.
//
// Handlers are plain functions: they read `args`, act on the ServerState and the Session, and
// write exactly one reply through `reply` (the only exception is a command that closes the
// connection). Errors use Redis's exact texts.
//
// Thread safety: a handler runs on the I/O thread of its session; it may touch shared state only
// through ServerState's thread-safe interfaces.
#pragma once

#include <cstdint>
#include <span>
#include <string_view>
#include <utility>
#include <vector>

#include "weft/resp/reply_writer.h"
#include "weft/server/server_state.h"
#include "weft/server/session.h"

namespace weft::server {

// A region's store as a command reaches it: every local change made through it carries the
// session's change context (its sync ticket) to the replication layer. Reads may use it too.
class StoreAccess {
 public:
  StoreAccess(storage::Store& store, const storage::ChangeContext* context)
      : store_(store), context_(context) {}
  template <typename Fn>
  decltype(auto) WithKey(std::string_view key, Fn&& fn) {
    return store_.WithKey(key, std::forward<Fn>(fn), context_);
  }
  template <typename Fn>
  decltype(auto) WithKeys(std::span<const std::string_view> keys, Fn&& fn) {
    return store_.WithKeys(keys, std::forward<Fn>(fn), context_);
  }

 private:
  storage::Store& store_;
  const storage::ChangeContext* context_;
};

struct CommandContext {
  ServerState& server;
  Session& session;
  resp::ReplyWriter& reply;
  std::span<const std::string_view> args;

  Database& database() { return server.database(static_cast<size_t>(session.db_index())); }
  StoreAccess store() { return StoreAccess(database().store(), session.change_context()); }
  int64_t now_unix_ms() const { return server.clock().NowUnixMs(); }
};

using CommandHandler = void (*)(CommandContext&);

// Flags as COMMAND INFO reports them.
enum class CommandFlag : uint32_t {
  kWrite = 1 << 0,
  kReadOnly = 1 << 1,
  kFast = 1 << 2,
  kNoAuth = 1 << 3,  // allowed before AUTH (AUTH, HELLO, QUIT)
  kLoading = 1 << 4,
  kStale = 1 << 5,
  kAdmin = 1 << 6,
  kDenyOom = 1 << 7,
};

struct CommandSpec {
  const char* name;  // lower case, as Redis reports it
  int arity;         // Redis convention: n = exactly n args, -n = at least n (name included)
  uint32_t flags;
  int first_key;  // COMMAND INFO key positions (0 = no keys)
  int last_key;
  int key_step;
  CommandHandler handler;
};

constexpr uint32_t operator|(CommandFlag a, CommandFlag b) {
  return static_cast<uint32_t>(a) | static_cast<uint32_t>(b);
}
constexpr uint32_t operator|(uint32_t a, CommandFlag b) {
  return a | static_cast<uint32_t>(b);
}
constexpr uint32_t Flags(CommandFlag flag) {
  return static_cast<uint32_t>(flag);
}

// Each command family adds its specs; the table gathers them.
void AddConnectionCommands(std::vector<CommandSpec>* specs);
void AddServerCommands(std::vector<CommandSpec>* specs);
void AddDebugCommands(std::vector<CommandSpec>* specs);
void AddStringCommands(std::vector<CommandSpec>* specs);
void AddKeyspaceCommands(std::vector<CommandSpec>* specs);

}  // namespace weft::server
