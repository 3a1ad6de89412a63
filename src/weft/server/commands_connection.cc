// Connection commands: PING, ECHO, HELLO, QUIT, SELECT, AUTH and CLIENT.

#include <algorithm>
#include <string>

#include "weft/base/glob.h"
#include "weft/base/strings.h"
#include "weft/server/arguments.h"
#include "weft/server/command.h"
#include "weft/server/version.h"

namespace weft::server {
namespace {

void Ping(CommandContext& context) {
  if (context.args.size() > 2) {
    context.reply.Error("ERR wrong number of arguments for 'ping' command");
  } else if (context.args.size() == 2) {
    context.reply.Bulk(context.args[1]);
  } else {
    context.reply.SimpleString("PONG");
  }
}

void Echo(CommandContext& context) {
  context.reply.Bulk(context.args[1]);
}

void Quit(CommandContext& context) {
  context.reply.Ok();
  context.session.close_after_reply = true;
}

void Select(CommandContext& context) {
  const std::optional<int64_t> index = ParseInt64(context.args[1]);
  if (!index) {
    context.reply.Error(kNotInteger);
    return;
  }
  if (*index < 0 || *index >= static_cast<int64_t>(context.server.database_count())) {
    context.reply.Error("ERR DB index is out of range");
    return;
  }
  context.session.set_db_index(static_cast<int>(*index));
  context.reply.Ok();
}

constexpr std::string_view kWrongPass =
    "WRONGPASS invalid username-password pair or user is disabled.";

// Checks credentials against the only user weft has, "default". Returns the error text, or
// empty when they are right.
std::string_view CheckCredentials(ServerState& server, std::string_view user,
                                  std::string_view password) {
  if (user != "default")
    return kWrongPass;
  if (!server.settings().auth_required())
    return "";  // the default user has no password
  return password == server.settings().requirepass() ? "" : kWrongPass;
}

void Auth(CommandContext& context) {
  if (context.args.size() > 3) {
    context.reply.Error(kSyntaxError);
    return;
  }
  if (context.args.size() == 2 && !context.server.settings().auth_required()) {
    context.reply.Error(
        "ERR AUTH <password> called without any password configured for the default user. Are "
        "you sure your configuration is correct?");
    return;
  }
  const std::string_view user = context.args.size() == 3 ? context.args[1] : "default";
  const std::string_view error = CheckCredentials(context.server, user, context.args.back());
  if (!error.empty()) {
    context.reply.Error(error);
    return;
  }
  context.session.authenticated = true;
  context.reply.Ok();
}

bool ValidClientName(std::string_view name) {
  for (char c : name) {
    if (c < '!' || c > '~')
      return false;
  }
  return true;
}

constexpr std::string_view kBadClientName =
    "ERR Client names cannot contain spaces, newlines or special characters.";

// HELLO [protover [AUTH username password] [SETNAME clientname]]
void Hello(CommandContext& context) {
  int protocol = context.session.protocol();
  if (context.args.size() >= 2) {
    const std::optional<int64_t> version = ParseInt64(context.args[1]);
    if (!version) {
      context.reply.Error("ERR Protocol version is not an integer or out of range");
      return;
    }
    if (*version < 2 || *version > 3) {
      context.reply.Error("NOPROTO unsupported protocol version");
      return;
    }
    protocol = static_cast<int>(*version);
  }
  std::optional<std::string_view> name;
  bool authenticated_here = false;
  for (size_t i = 2; i < context.args.size(); ++i) {
    const std::string_view option = context.args[i];
    const size_t remaining = context.args.size() - i - 1;
    if (EqualsIgnoreCase(option, "AUTH") && remaining >= 2) {
      const std::string_view error =
          CheckCredentials(context.server, context.args[i + 1], context.args[i + 2]);
      if (!error.empty()) {
        context.reply.Error(error);
        return;
      }
      authenticated_here = true;
      i += 2;
    } else if (EqualsIgnoreCase(option, "SETNAME") && remaining >= 1) {
      name = context.args[++i];
      if (!ValidClientName(*name)) {
        context.reply.Error(kBadClientName);
        return;
      }
    } else {
      context.reply.Error(StrCat("ERR Syntax error in HELLO option '", option, "'"));
      return;
    }
  }
  if (authenticated_here)
    context.session.authenticated = true;
  if (context.server.settings().auth_required() && !context.session.authenticated) {
    context.reply.Error(
        "NOAUTH HELLO must be called with the client already authenticated, otherwise the HELLO "
        "AUTH <user> <pass> option can be used to authenticate the client and select the RESP "
        "protocol version at the same time");
    return;
  }
  if (name)
    context.session.set_name(std::string(*name));
  context.session.set_protocol(protocol);
  context.reply.set_protocol(protocol);
  context.reply.MapHeader(7);
  context.reply.Bulk("server");
  context.reply.Bulk("redis");
  context.reply.Bulk("version");
  context.reply.Bulk(kRedisCompatibleVersion);
  context.reply.Bulk("proto");
  context.reply.Integer(protocol);
  context.reply.Bulk("id");
  context.reply.Integer(static_cast<int64_t>(context.session.id()));
  context.reply.Bulk("mode");
  context.reply.Bulk("standalone");
  context.reply.Bulk("role");
  context.reply.Bulk("master");
  context.reply.Bulk("modules");
  context.reply.ArrayHeader(0);
}

// One CLIENT LIST / CLIENT INFO line, fields in Redis 7.0's order.
std::string DescribeClient(const Session& session, int64_t now_unix_ms) {
  const char* command = session.last_command();
  return StrCat(
      "id=", session.id(), " addr=", session.peer_address(), " laddr=", session.local_address(),
      " fd=", session.fd(), " name=", session.name(),
      " age=", (now_unix_ms - session.created_unix_ms()) / 1000,
      " idle=", (now_unix_ms - session.last_interaction_unix_ms()) / 1000,
      " flags=N db=", session.db_index(),
      " sub=0 psub=0 ssub=0 multi=-1 qbuf=", session.query_bytes(),
      " qbuf-free=0 argv-mem=0 multi-mem=0 rbs=0 rbp=0 obl=0 oll=0 omem=", session.output_bytes(),
      " tot-mem=", session.query_bytes() + session.output_bytes(), " events=r cmd=", command,
      " user=default redir=-1 resp=", session.protocol(), "\n");
}

void ClientWrongArity(CommandContext& context, std::string_view subcommand) {
  context.reply.Error(
      StrCat("ERR wrong number of arguments for 'client|", AsciiLower(subcommand), "' command"));
}

// CLIENT KILL addr:port | CLIENT KILL <filter> <value> ... Returns through the reply.
void ClientKill(CommandContext& context) {
  const auto sessions = context.server.clients().Snapshot();
  if (context.args.size() == 3) {
    for (const auto& session : sessions) {
      if (session->peer_address() == context.args[2]) {
        if (session.get() == &context.session) {
          context.session.close_after_reply = true;
        } else {
          session->RequestClose();
        }
        context.reply.Ok();
        return;
      }
    }
    context.reply.Error("ERR No such client");
    return;
  }
  if (context.args.size() % 2 != 0) {
    context.reply.Error(kSyntaxError);
    return;
  }
  std::optional<uint64_t> id;
  std::optional<std::string_view> addr;
  std::optional<std::string_view> laddr;
  bool skip_me = true;
  for (size_t i = 2; i < context.args.size(); i += 2) {
    const std::string_view filter = context.args[i];
    const std::string_view value = context.args[i + 1];
    if (EqualsIgnoreCase(filter, "ID")) {
      const std::optional<int64_t> parsed = ParseInt64(value);
      if (!parsed || *parsed <= 0) {
        context.reply.Error("ERR client-id should be greater than 0");
        return;
      }
      id = static_cast<uint64_t>(*parsed);
    } else if (EqualsIgnoreCase(filter, "ADDR")) {
      addr = value;
    } else if (EqualsIgnoreCase(filter, "LADDR")) {
      laddr = value;
    } else if (EqualsIgnoreCase(filter, "SKIPME")) {
      if (EqualsIgnoreCase(value, "yes")) {
        skip_me = true;
      } else if (EqualsIgnoreCase(value, "no")) {
        skip_me = false;
      } else {
        context.reply.Error(kSyntaxError);
        return;
      }
    } else if (EqualsIgnoreCase(filter, "USER") || EqualsIgnoreCase(filter, "TYPE")) {
      // One user ("default") and one client type ("normal"): only those values match.
      if (!EqualsIgnoreCase(value, "default") && !EqualsIgnoreCase(value, "normal")) {
        context.reply.Integer(0);
        return;
      }
    } else {
      context.reply.Error(kSyntaxError);
      return;
    }
  }
  int64_t killed = 0;
  for (const auto& session : sessions) {
    if (id && session->id() != *id)
      continue;
    if (addr && session->peer_address() != *addr)
      continue;
    if (laddr && session->local_address() != *laddr)
      continue;
    if (session.get() == &context.session) {
      if (skip_me)
        continue;
      context.session.close_after_reply = true;
    } else {
      session->RequestClose();
    }
    ++killed;
  }
  context.reply.Integer(killed);
}

// CLIENT LIST [TYPE normal|master|replica|pubsub] [ID id [id ...]]
void ClientList(CommandContext& context) {
  std::vector<uint64_t> ids;
  bool only_other_types = false;
  for (size_t i = 2; i < context.args.size(); ++i) {
    if (EqualsIgnoreCase(context.args[i], "TYPE") && i + 1 < context.args.size()) {
      const std::string_view type = context.args[++i];
      if (EqualsIgnoreCase(type, "master") || EqualsIgnoreCase(type, "replica") ||
          EqualsIgnoreCase(type, "pubsub")) {
        only_other_types = true;  // weft has only normal clients
      } else if (!EqualsIgnoreCase(type, "normal")) {
        context.reply.Error(StrCat("ERR Unknown client type '", type, "'"));
        return;
      }
    } else if (EqualsIgnoreCase(context.args[i], "ID") && i + 1 < context.args.size()) {
      for (++i; i < context.args.size(); ++i) {
        const std::optional<int64_t> id = ParseInt64(context.args[i]);
        if (!id || *id <= 0) {
          context.reply.Error(StrCat("ERR Invalid client ID"));
          return;
        }
        ids.push_back(static_cast<uint64_t>(*id));
      }
    } else {
      context.reply.Error(kSyntaxError);
      return;
    }
  }
  std::string text;
  if (!only_other_types) {
    for (const auto& session : context.server.clients().Snapshot()) {
      if (!ids.empty() && std::find(ids.begin(), ids.end(), session->id()) == ids.end())
        continue;
      text += DescribeClient(*session, context.now_unix_ms());
    }
  }
  context.reply.Verbatim("txt", text);
}

void Client(CommandContext& context) {
  const std::string_view sub = context.args[1];
  const size_t argc = context.args.size();
  if (EqualsIgnoreCase(sub, "ID")) {
    if (argc != 2)
      return ClientWrongArity(context, sub);
    context.reply.Integer(static_cast<int64_t>(context.session.id()));
  } else if (EqualsIgnoreCase(sub, "SETNAME")) {
    if (argc != 3)
      return ClientWrongArity(context, sub);
    if (!ValidClientName(context.args[2])) {
      context.reply.Error(kBadClientName);
      return;
    }
    context.session.set_name(std::string(context.args[2]));
    context.reply.Ok();
  } else if (EqualsIgnoreCase(sub, "GETNAME")) {
    if (argc != 2)
      return ClientWrongArity(context, sub);
    const std::string name = context.session.name();
    if (name.empty()) {
      context.reply.Null();
    } else {
      context.reply.Bulk(name);
    }
  } else if (EqualsIgnoreCase(sub, "LIST")) {
    ClientList(context);
  } else if (EqualsIgnoreCase(sub, "INFO")) {
    if (argc != 2)
      return ClientWrongArity(context, sub);
    context.reply.Verbatim("txt", DescribeClient(context.session, context.now_unix_ms()));
  } else if (EqualsIgnoreCase(sub, "KILL")) {
    if (argc < 3)
      return ClientWrongArity(context, sub);
    ClientKill(context);
  } else if (EqualsIgnoreCase(sub, "NO-EVICT") || EqualsIgnoreCase(sub, "NO-TOUCH")) {
    if (argc != 3)
      return ClientWrongArity(context, sub);
    if (!EqualsIgnoreCase(context.args[2], "on") && !EqualsIgnoreCase(context.args[2], "off")) {
      context.reply.Error(kSyntaxError);
      return;
    }
    context.reply.Ok();
  } else if (EqualsIgnoreCase(sub, "HELP")) {
    static constexpr std::string_view kHelp[] = {
        "CLIENT <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
        "GETNAME",
        "    Return the name of the current connection.",
        "ID",
        "    Return the ID of the current connection.",
        "INFO",
        "    Return information about the current client connection.",
        "KILL <ip:port>",
        "    Kill connection made from <ip:port>.",
        "KILL <option> <value> [<option> <value> [...]]",
        "    Kill connections. Options are: ID, ADDR, LADDR, USER, TYPE, SKIPME.",
        "LIST",
        "    Return information about client connections.",
        "SETNAME <name>",
        "    Assign the name <name> to the current connection.",
        "HELP",
        "    Print this help."};
    context.reply.ArrayHeader(std::size(kHelp));
    for (std::string_view line : kHelp)
      context.reply.SimpleString(line);
  } else {
    context.reply.Error(
        StrCat("ERR unknown subcommand '", sub.substr(0, 128), "'. Try CLIENT HELP."));
  }
}

using enum CommandFlag;

}  // namespace

void AddConnectionCommands(std::vector<CommandSpec>* specs) {
  const uint32_t connection = kFast | kStale | kLoading;
  specs->insert(specs->end(), {
                                  {"ping", -1, connection, 0, 0, 0, Ping},
                                  {"echo", 2, connection, 0, 0, 0, Echo},
                                  {"hello", -1, connection | kNoAuth, 0, 0, 0, Hello},
                                  {"quit", -1, connection | kNoAuth, 0, 0, 0, Quit},
                                  {"select", 2, connection, 0, 0, 0, Select},
                                  {"auth", -2, connection | kNoAuth, 0, 0, 0, Auth},
                                  {"client", -2, kStale | kLoading, 0, 0, 0, Client},
                              });
}

}  // namespace weft::server
