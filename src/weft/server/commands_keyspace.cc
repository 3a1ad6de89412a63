// Keyspace commands: existence, deletion, iteration (KEYS, SCAN), renaming and expiry.

#include <optional>
#include <string>
#include <vector>

#include "weft/base/glob.h"
#include "weft/base/strings.h"
#include "weft/server/arguments.h"
#include "weft/server/command.h"
#include "weft/server/expire_options.h"

namespace weft::server {
namespace {

using storage::EntryView;
using storage::LockedKeys;

std::vector<std::string_view> KeyArguments(const CommandContext& context, size_t first) {
  return {context.args.begin() + static_cast<std::ptrdiff_t>(first), context.args.end()};
}

void Exists(CommandContext& context) {
  int64_t count = 0;
  for (size_t i = 1; i < context.args.size(); ++i) {
    context.store().WithKey(context.args[i], [&](LockedKeys& keys) {
      if (keys.Find(context.args[i]))
        ++count;
    });
  }
  context.reply.Integer(count);
}

// DEL and UNLINK: all named keys go in one atomic step (their shards locked together).
void Del(CommandContext& context) {
  const std::vector<std::string_view> keys = KeyArguments(context, 1);
  Database& database = context.database();
  int64_t deleted = 0;
  context.store().WithKeys(keys, [&](LockedKeys& locked) {
    for (std::string_view key : keys) {
      if (locked.Delete(key, database.versions().Next()))
        ++deleted;
    }
  });
  context.reply.Integer(deleted);
}

void Touch(CommandContext& context) {
  Exists(context);
}

void Type(CommandContext& context) {
  bool exists = false;
  context.store().WithKey(
      context.args[1], [&](LockedKeys& keys) { exists = keys.Find(context.args[1]).has_value(); });
  context.reply.SimpleString(exists ? "string" : "none");
}

void Keys(CommandContext& context) {
  const std::string_view pattern = context.args[1];
  const bool match_all = pattern == "*";
  std::vector<std::string> matched;
  uint64_t cursor = 0;
  do {
    cursor = context.database().store().Scan(cursor, 1024, false, [&](const EntryView& entry) {
      if (match_all || GlobMatch(pattern, entry.key))
        matched.emplace_back(entry.key);
    });
  } while (cursor != 0);
  context.reply.ArrayHeader(matched.size());
  for (const std::string& key : matched)
    context.reply.Bulk(key);
}

// SCAN cursor [MATCH pattern] [COUNT n] [TYPE type]
void Scan(CommandContext& context) {
  // Redis parses the cursor with strtoull and rejects anything that is not a plain number.
  uint64_t cursor = 0;
  {
    const std::string_view text = context.args[1];
    bool valid = !text.empty() && text.size() <= 20;
    for (char c : text)
      valid = valid && c >= '0' && c <= '9';
    if (valid) {
      errno = 0;
      cursor = std::strtoull(std::string(text).c_str(), nullptr, 10);
      valid = errno != ERANGE;
    }
    if (!valid) {
      context.reply.Error("ERR invalid cursor");
      return;
    }
  }
  int64_t count = 10;
  std::optional<std::string_view> pattern;
  std::optional<std::string_view> type;
  for (size_t i = 2; i < context.args.size(); i += 2) {
    if (i + 1 >= context.args.size()) {
      context.reply.Error(kSyntaxError);
      return;
    }
    const std::string_view option = context.args[i];
    if (EqualsIgnoreCase(option, "COUNT")) {
      const std::optional<int64_t> parsed = ParseInt64(context.args[i + 1]);
      if (!parsed) {
        context.reply.Error(kNotInteger);
        return;
      }
      if (*parsed < 1) {
        context.reply.Error(kSyntaxError);
        return;
      }
      count = *parsed;
    } else if (EqualsIgnoreCase(option, "MATCH")) {
      pattern = context.args[i + 1];
    } else if (EqualsIgnoreCase(option, "TYPE")) {
      type = context.args[i + 1];
    } else {
      context.reply.Error(kSyntaxError);
      return;
    }
  }
  const bool type_excludes_all = type && !EqualsIgnoreCase(*type, "string");
  const bool match_all = !pattern || *pattern == "*";
  std::vector<std::string> keys;
  size_t examined = 0;
  // Like Redis, COUNT bounds the work (entries examined), not the number returned.
  do {
    cursor = context.database().store().Scan(
        cursor, static_cast<size_t>(count), false, [&](const EntryView& entry) {
          ++examined;
          if (!type_excludes_all && (match_all || GlobMatch(*pattern, entry.key))) {
            keys.emplace_back(entry.key);
          }
        });
  } while (cursor != 0 && examined < static_cast<size_t>(count));
  context.reply.ArrayHeader(2);
  context.reply.Bulk(StrCat(cursor));
  context.reply.ArrayHeader(keys.size());
  for (const std::string& key : keys)
    context.reply.Bulk(key);
}

// RENAME / RENAMENX: both keys' shards are locked together; the TTL moves with the value.
void RenameGeneric(CommandContext& context, bool only_if_target_missing) {
  const std::string_view source = context.args[1];
  const std::string_view target = context.args[2];
  const std::string_view both[] = {source, target};
  Database& database = context.database();
  context.store().WithKeys(both, [&](LockedKeys& keys) {
    const std::optional<EntryView> entry = keys.Find(source);
    if (!entry) {
      context.reply.Error("ERR no such key");
      return;
    }
    if (source == target) {
      if (only_if_target_missing) {
        context.reply.Integer(0);
      } else {
        context.reply.Ok();
      }
      return;
    }
    if (only_if_target_missing && keys.Find(target)) {
      context.reply.Integer(0);
      return;
    }
    const std::string value(entry->value);
    const int64_t expire_at = entry->expire_at_unix_ms;
    keys.Set(target, value, database.versions().Next(), expire_at);
    keys.Delete(source, database.versions().Next());
    if (only_if_target_missing) {
      context.reply.Integer(1);
    } else {
      context.reply.Ok();
    }
  });
}
void Rename(CommandContext& context) {
  RenameGeneric(context, false);
}
void RenameNx(CommandContext& context) {
  RenameGeneric(context, true);
}

// EXPIRE family: key amount [NX|XX|GT|LT]. `seconds` and `relative` tell how to read amount.
void ExpireGeneric(CommandContext& context, bool seconds, bool relative) {
  bool nx = false;
  bool xx = false;
  bool gt = false;
  bool lt = false;
  for (size_t i = 3; i < context.args.size(); ++i) {
    const std::string_view option = context.args[i];
    if (EqualsIgnoreCase(option, "NX")) {
      nx = true;
    } else if (EqualsIgnoreCase(option, "XX")) {
      xx = true;
    } else if (EqualsIgnoreCase(option, "GT")) {
      gt = true;
    } else if (EqualsIgnoreCase(option, "LT")) {
      lt = true;
    } else {
      context.reply.Error(StrCat("ERR Unsupported option ", option));
      return;
    }
  }
  if (nx && (xx || gt || lt)) {
    context.reply.Error("ERR NX and XX, GT or LT options at the same time are not compatible");
    return;
  }
  if (gt && lt) {
    context.reply.Error("ERR GT and LT options at the same time are not compatible");
    return;
  }
  const std::string name = AsciiLower(context.args[0]);
  const ExpireResult when =
      ResolveExpireCommand(context.args[2], seconds, relative, context.now_unix_ms(), name);
  if (!when.error.empty()) {
    context.reply.Error(when.error);
    return;
  }
  Database& database = context.database();
  const std::string_view key = context.args[1];
  context.store().WithKey(key, [&](LockedKeys& keys) {
    const std::optional<EntryView> entry = keys.Find(key);
    if (!entry) {
      context.reply.Integer(0);
      return;
    }
    const int64_t current = entry->expire_at_unix_ms;  // 0 = persistent (infinite TTL)
    const bool refused = (nx && current != 0) || (xx && current == 0) ||
                         (gt && (current == 0 || when.expire_at_unix_ms <= current)) ||
                         (lt && current != 0 && when.expire_at_unix_ms >= current);
    if (refused) {
      context.reply.Integer(0);
      return;
    }
    if (when.expire_at_unix_ms <= context.now_unix_ms()) {
      keys.Delete(key, database.versions().Next());
    } else {
      keys.SetExpireAt(key, when.expire_at_unix_ms, database.versions().Next());
    }
    context.reply.Integer(1);
  });
}
void Expire(CommandContext& context) {
  ExpireGeneric(context, true, true);
}
void PExpire(CommandContext& context) {
  ExpireGeneric(context, false, true);
}
void ExpireAt(CommandContext& context) {
  ExpireGeneric(context, true, false);
}
void PExpireAt(CommandContext& context) {
  ExpireGeneric(context, false, false);
}

// TTL/PTTL (remaining time) and EXPIRETIME/PEXPIRETIME (absolute): -2 missing, -1 persistent.
void ReportExpiry(CommandContext& context, bool milliseconds, bool absolute) {
  context.store().WithKey(context.args[1], [&](LockedKeys& keys) {
    const std::optional<EntryView> entry = keys.Find(context.args[1]);
    if (!entry) {
      context.reply.Integer(-2);
      return;
    }
    if (entry->expire_at_unix_ms == 0) {
      context.reply.Integer(-1);
      return;
    }
    if (absolute) {
      context.reply.Integer(milliseconds ? entry->expire_at_unix_ms
                                         : entry->expire_at_unix_ms / 1000);
      return;
    }
    const int64_t remaining_ms =
        std::max<int64_t>(0, entry->expire_at_unix_ms - context.now_unix_ms());
    context.reply.Integer(milliseconds ? remaining_ms : (remaining_ms + 500) / 1000);
  });
}
void Ttl(CommandContext& context) {
  ReportExpiry(context, false, false);
}
void PTtl(CommandContext& context) {
  ReportExpiry(context, true, false);
}
void ExpireTime(CommandContext& context) {
  ReportExpiry(context, false, true);
}
void PExpireTime(CommandContext& context) {
  ReportExpiry(context, true, true);
}

void Persist(CommandContext& context) {
  Database& database = context.database();
  const std::string_view key = context.args[1];
  context.store().WithKey(key, [&](LockedKeys& keys) {
    const std::optional<EntryView> entry = keys.Find(key);
    if (!entry || entry->expire_at_unix_ms == 0) {
      context.reply.Integer(0);
      return;
    }
    keys.SetExpireAt(key, 0, database.versions().Next());
    context.reply.Integer(1);
  });
}

// RANDOMKEY: starts a scan at a random cursor (a random shard and bucket position, see
// Store::Scan) and returns a random key among the first batch that has any, wrapping around once.
void RandomKey(CommandContext& context) {
  storage::Store& store = context.database().store();
  std::vector<std::string> candidates;
  if (store.KeyCount() > 0) {
    uint64_t cursor = context.server.NextRandom();
    bool wrapped = false;
    // Two passes over the cursor space at most: one from the random start, one from zero.
    for (size_t calls = 0; candidates.empty() && calls < 4 * store.shard_count() + 16; ++calls) {
      cursor = store.Scan(cursor, 16, false,
                          [&](const EntryView& entry) { candidates.emplace_back(entry.key); });
      if (cursor == 0) {
        if (wrapped)
          break;
        wrapped = true;
      }
    }
  }
  if (candidates.empty()) {
    context.reply.Null();
    return;
  }
  context.reply.Bulk(candidates[context.server.NextRandom() % candidates.size()]);
}

using enum CommandFlag;

}  // namespace

void AddKeyspaceCommands(std::vector<CommandSpec>* specs) {
  const uint32_t read = kReadOnly | kFast;
  const uint32_t write = Flags(kWrite);
  const uint32_t write_fast = kWrite | kFast;
  specs->insert(specs->end(), {
                                  {"exists", -2, read, 1, -1, 1, Exists},
                                  {"del", -2, write, 1, -1, 1, Del},
                                  {"unlink", -2, write_fast, 1, -1, 1, Del},
                                  {"touch", -2, read, 1, -1, 1, Touch},
                                  {"type", 2, read, 1, 1, 1, Type},
                                  {"keys", 2, Flags(kReadOnly), 0, 0, 0, Keys},
                                  {"scan", -2, Flags(kReadOnly), 0, 0, 0, Scan},
                                  {"rename", 3, write, 1, 2, 1, Rename},
                                  {"renamenx", 3, write_fast, 1, 2, 1, RenameNx},
                                  {"expire", -3, write_fast, 1, 1, 1, Expire},
                                  {"pexpire", -3, write_fast, 1, 1, 1, PExpire},
                                  {"expireat", -3, write_fast, 1, 1, 1, ExpireAt},
                                  {"pexpireat", -3, write_fast, 1, 1, 1, PExpireAt},
                                  {"ttl", 2, read, 1, 1, 1, Ttl},
                                  {"pttl", 2, read, 1, 1, 1, PTtl},
                                  {"expiretime", 2, read, 1, 1, 1, ExpireTime},
                                  {"pexpiretime", 2, read, 1, 1, 1, PExpireTime},
                                  {"persist", 2, write_fast, 1, 1, 1, Persist},
                                  {"randomkey", 1, Flags(kReadOnly), 0, 0, 0, RandomKey},
                              });
}

}  // namespace weft::server
