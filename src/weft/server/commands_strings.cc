// String commands: GET/SET family, counters, ranges. weft holds only strings, so WRONGTYPE
// never arises; every other reply and error text follows Redis 7.0.
//
// Each write runs inside Store::WithKey / WithKeys: the shard lock is held while the old value
// is read, the version assigned and the new value stored, so read-modify-write commands are
// atomic exactly as in single-threaded Redis.

#include <algorithm>
#include <cmath>
#include <optional>
#include <string>

#include "weft/base/strings.h"
#include "weft/server/arguments.h"
#include "weft/server/command.h"
#include "weft/server/expire_options.h"

namespace weft::server {
namespace {

using storage::EntryView;
using storage::LockedKeys;

void CountLookup(CommandContext& context, bool hit) {
  auto& counter =
      hit ? context.server.stats().keyspace_hits : context.server.stats().keyspace_misses;
  counter.fetch_add(1, std::memory_order_relaxed);
}

void Get(CommandContext& context) {
  context.store().WithKey(context.args[1], [&](LockedKeys& keys) {
    const std::optional<EntryView> entry = keys.Find(context.args[1]);
    CountLookup(context, entry.has_value());
    if (entry) {
      context.reply.Bulk(entry->value);
    } else {
      context.reply.Null();
    }
  });
}

// Resolves an optional expiry argument into *expire_at_unix_ms (left 0 without one). On a bad
// argument replies with Redis's error for `command` and returns false.
bool ResolveOptionalExpire(CommandContext& context, const std::optional<ExpireArgument>& expire,
                           std::string_view command, int64_t* expire_at_unix_ms) {
  if (!expire)
    return true;
  ExpireResult result = ResolveExpire(*expire, context.now_unix_ms(), command);
  if (!result.error.empty()) {
    context.reply.Error(result.error);
    return false;
  }
  *expire_at_unix_ms = result.expire_at_unix_ms;
  return true;
}

// SET key value [NX|XX] [GET] [EX s|PX ms|EXAT s|PXAT ms|KEEPTTL]
void Set(CommandContext& context) {
  bool nx = false;
  bool xx = false;
  bool get = false;
  bool keep_ttl = false;
  std::optional<ExpireArgument> expire;
  for (size_t i = 3; i < context.args.size(); ++i) {
    const std::string_view option = context.args[i];
    const bool has_next = i + 1 < context.args.size();
    if (EqualsIgnoreCase(option, "NX") && !xx) {
      nx = true;
    } else if (EqualsIgnoreCase(option, "XX") && !nx) {
      xx = true;
    } else if (EqualsIgnoreCase(option, "GET")) {
      get = true;
    } else if (EqualsIgnoreCase(option, "KEEPTTL") && !expire) {
      keep_ttl = true;
    } else if (!keep_ttl && !expire && has_next && ParseExpireUnit(option).has_value()) {
      expire = ExpireArgument{*ParseExpireUnit(option), context.args[++i]};
    } else {
      context.reply.Error(kSyntaxError);
      return;
    }
  }
  int64_t expire_at_unix_ms = 0;
  if (!ResolveOptionalExpire(context, expire, "set", &expire_at_unix_ms))
    return;
  Database& database = context.database();
  const std::string_view key = context.args[1];
  context.store().WithKey(key, [&](LockedKeys& keys) {
    const std::optional<EntryView> old = keys.Find(key);
    const bool allowed = !(nx && old) && !(xx && !old);
    // With GET the reply is the old value, whether or not the write happens. It is written
    // before Set replaces the entry that `old` points into, so the value is copied only once,
    // into the reply.
    if (get) {
      if (old) {
        context.reply.Bulk(old->value);
      } else {
        context.reply.Null();
      }
    } else if (allowed) {
      context.reply.Ok();
    } else {
      context.reply.Null();
    }
    if (allowed) {
      const int64_t expiry = keep_ttl && old ? old->expire_at_unix_ms : expire_at_unix_ms;
      keys.Set(key, context.args[2], database.versions().Next(), expiry);
    }
  });
}

void SetNx(CommandContext& context) {
  Database& database = context.database();
  const std::string_view key = context.args[1];
  context.store().WithKey(key, [&](LockedKeys& keys) {
    if (keys.Find(key)) {
      context.reply.Integer(0);
      return;
    }
    keys.Set(key, context.args[2], database.versions().Next(), 0);
    context.reply.Integer(1);
  });
}

// SETEX / PSETEX key ttl value: `unit` tells how to read ttl.
void SetWithTtl(CommandContext& context, ExpireUnit unit, const char* name) {
  int64_t expire_at_unix_ms = 0;
  if (!ResolveOptionalExpire(context, ExpireArgument{unit, context.args[2]}, name,
                             &expire_at_unix_ms))
    return;
  Database& database = context.database();
  context.store().WithKey(context.args[1], [&](LockedKeys& keys) {
    keys.Set(context.args[1], context.args[3], database.versions().Next(), expire_at_unix_ms);
  });
  context.reply.Ok();
}
void SetEx(CommandContext& context) {
  SetWithTtl(context, ExpireUnit::kSeconds, "setex");
}
void PSetEx(CommandContext& context) {
  SetWithTtl(context, ExpireUnit::kMilliseconds, "psetex");
}

void GetSet(CommandContext& context) {
  Database& database = context.database();
  const std::string_view key = context.args[1];
  context.store().WithKey(key, [&](LockedKeys& keys) {
    const std::optional<EntryView> old = keys.Find(key);
    if (old) {
      context.reply.Bulk(old->value);
    } else {
      context.reply.Null();
    }
    keys.Set(key, context.args[2], database.versions().Next(), 0);
  });
}

void GetDel(CommandContext& context) {
  Database& database = context.database();
  const std::string_view key = context.args[1];
  context.store().WithKey(key, [&](LockedKeys& keys) {
    const std::optional<EntryView> old = keys.Find(key);
    CountLookup(context, old.has_value());
    if (!old) {
      context.reply.Null();
      return;
    }
    context.reply.Bulk(old->value);
    keys.Delete(key, database.versions().Next());
  });
}

// GETEX key [EX s|PX ms|EXAT s|PXAT ms|PERSIST]
void GetEx(CommandContext& context) {
  std::optional<ExpireArgument> expire;
  bool persist = false;
  for (size_t i = 2; i < context.args.size(); ++i) {
    const std::string_view option = context.args[i];
    if (EqualsIgnoreCase(option, "PERSIST") && !expire && !persist) {
      persist = true;
    } else if (!persist && !expire && i + 1 < context.args.size() &&
               ParseExpireUnit(option).has_value()) {
      expire = ExpireArgument{*ParseExpireUnit(option), context.args[++i]};
    } else {
      context.reply.Error(kSyntaxError);
      return;
    }
  }
  int64_t expire_at_unix_ms = 0;
  if (!ResolveOptionalExpire(context, expire, "getex", &expire_at_unix_ms))
    return;
  Database& database = context.database();
  const std::string_view key = context.args[1];
  context.store().WithKey(key, [&](LockedKeys& keys) {
    const std::optional<EntryView> entry = keys.Find(key);
    CountLookup(context, entry.has_value());
    if (!entry) {
      context.reply.Null();
      return;
    }
    context.reply.Bulk(entry->value);
    if (expire) {
      if (expire_at_unix_ms <= context.now_unix_ms()) {
        keys.Delete(key, database.versions().Next());
      } else {
        keys.SetExpireAt(key, expire_at_unix_ms, database.versions().Next());
      }
    } else if (persist && entry->expire_at_unix_ms != 0) {
      keys.SetExpireAt(key, 0, database.versions().Next());
    }
  });
}

void MGet(CommandContext& context) {
  context.reply.ArrayHeader(context.args.size() - 1);
  // Each key is read under its own shard lock: MGET is not a snapshot in Redis Cluster either,
  // and taking one lock at a time keeps a large MGET from blocking writers on many shards.
  for (size_t i = 1; i < context.args.size(); ++i) {
    context.store().WithKey(context.args[i], [&](LockedKeys& keys) {
      const std::optional<EntryView> entry = keys.Find(context.args[i]);
      CountLookup(context, entry.has_value());
      if (entry) {
        context.reply.Bulk(entry->value);
      } else {
        context.reply.Null();
      }
    });
  }
}

// MSET / MSETNX: all keys' shards are locked together, so the batch is atomic.
void MultiSet(CommandContext& context, bool only_if_none_exist) {
  if (context.args.size() % 2 == 0) {
    context.reply.Error(StrCat("ERR wrong number of arguments for '",
                               only_if_none_exist ? "msetnx" : "mset", "' command"));
    return;
  }
  std::vector<std::string_view> keys;
  keys.reserve(context.args.size() / 2);
  for (size_t i = 1; i < context.args.size(); i += 2)
    keys.push_back(context.args[i]);
  Database& database = context.database();
  context.store().WithKeys(keys, [&](LockedKeys& locked) {
    if (only_if_none_exist) {
      for (std::string_view key : keys) {
        if (locked.Find(key)) {
          context.reply.Integer(0);
          return;
        }
      }
    }
    for (size_t i = 1; i < context.args.size(); i += 2) {
      locked.Set(context.args[i], context.args[i + 1], database.versions().Next(), 0);
    }
    if (only_if_none_exist) {
      context.reply.Integer(1);
    } else {
      context.reply.Ok();
    }
  });
}
void MSet(CommandContext& context) {
  MultiSet(context, false);
}
void MSetNx(CommandContext& context) {
  MultiSet(context, true);
}

// INCR family. `delta` is applied to the stored integer; the key's TTL is kept, as in Redis.
void IncrementBy(CommandContext& context, int64_t delta) {
  Database& database = context.database();
  const std::string_view key = context.args[1];
  context.store().WithKey(key, [&](LockedKeys& keys) {
    const std::optional<EntryView> entry = keys.Find(key);
    int64_t current = 0;
    if (entry) {
      const std::optional<int64_t> parsed = ParseInt64(entry->value);
      if (!parsed) {
        context.reply.Error(kNotInteger);
        return;
      }
      current = *parsed;
    }
    if ((delta < 0 && current < 0 && delta < INT64_MIN - current) ||
        (delta > 0 && current > 0 && delta > INT64_MAX - current)) {
      context.reply.Error("ERR increment or decrement would overflow");
      return;
    }
    const int64_t next = current + delta;
    keys.Set(key, StrCat(next), database.versions().Next(), entry ? entry->expire_at_unix_ms : 0);
    context.reply.Integer(next);
  });
}

std::optional<int64_t> IncrementArgument(CommandContext& context) {
  std::optional<int64_t> delta = ParseInt64(context.args[2]);
  if (!delta)
    context.reply.Error(kNotInteger);
  return delta;
}

void Incr(CommandContext& context) {
  IncrementBy(context, 1);
}
void Decr(CommandContext& context) {
  IncrementBy(context, -1);
}
void IncrBy(CommandContext& context) {
  if (const std::optional<int64_t> delta = IncrementArgument(context))
    IncrementBy(context, *delta);
}
void DecrBy(CommandContext& context) {
  const std::optional<int64_t> delta = IncrementArgument(context);
  if (!delta)
    return;
  if (*delta == INT64_MIN) {
    context.reply.Error("ERR decrement would overflow");
    return;
  }
  IncrementBy(context, -*delta);
}

void IncrByFloat(CommandContext& context) {
  const std::optional<long double> delta = ParseLongDouble(context.args[2]);
  if (!delta) {
    context.reply.Error(kNotFloat);
    return;
  }
  Database& database = context.database();
  const std::string_view key = context.args[1];
  context.store().WithKey(key, [&](LockedKeys& keys) {
    const std::optional<EntryView> entry = keys.Find(key);
    long double current = 0;
    if (entry) {
      const std::optional<long double> parsed = ParseLongDouble(entry->value);
      if (!parsed) {
        context.reply.Error(kNotFloat);
        return;
      }
      current = *parsed;
    }
    const long double next = current + *delta;
    if (std::isnan(next) || std::isinf(next)) {
      context.reply.Error("ERR increment would produce NaN or Infinity");
      return;
    }
    const std::string text = FormatLongDouble(next);
    keys.Set(key, text, database.versions().Next(), entry ? entry->expire_at_unix_ms : 0);
    context.reply.Bulk(text);
  });
}

void Append(CommandContext& context) {
  Database& database = context.database();
  const std::string_view key = context.args[1];
  const std::string_view suffix = context.args[2];
  context.store().WithKey(key, [&](LockedKeys& keys) {
    const std::optional<EntryView> entry = keys.Find(key);
    const size_t old_size = entry ? entry->value.size() : 0;
    if (static_cast<int64_t>(old_size + suffix.size()) >
        context.server.settings().proto_max_bulk_len()) {
      context.reply.Error(kStringTooLong);
      return;
    }
    std::string value;
    value.reserve(old_size + suffix.size());
    if (entry)
      value.append(entry->value);
    value.append(suffix);
    keys.Set(key, value, database.versions().Next(), entry ? entry->expire_at_unix_ms : 0);
    context.reply.Integer(static_cast<int64_t>(value.size()));
  });
}

void StrLen(CommandContext& context) {
  context.store().WithKey(context.args[1], [&](LockedKeys& keys) {
    const std::optional<EntryView> entry = keys.Find(context.args[1]);
    context.reply.Integer(entry ? static_cast<int64_t>(entry->value.size()) : 0);
  });
}

// GETRANGE key start end (inclusive, negative counts from the end), as Redis's getrangeCommand.
void GetRange(CommandContext& context) {
  const std::optional<int64_t> start_arg = ParseInt64(context.args[2]);
  const std::optional<int64_t> end_arg = ParseInt64(context.args[3]);
  if (!start_arg || !end_arg) {
    context.reply.Error(kNotInteger);
    return;
  }
  context.store().WithKey(context.args[1], [&](LockedKeys& keys) {
    const std::optional<EntryView> entry = keys.Find(context.args[1]);
    const std::string_view value = entry ? entry->value : std::string_view();
    int64_t start = *start_arg;
    int64_t end = *end_arg;
    const int64_t size = static_cast<int64_t>(value.size());
    if (start < 0 && end < 0 && start > end) {
      context.reply.Bulk("");
      return;
    }
    if (start < 0)
      start = size + start;
    if (end < 0)
      end = size + end;
    if (start < 0)
      start = 0;
    if (end < 0)
      end = 0;
    if (end >= size)
      end = size - 1;
    if (start > end || size == 0) {
      context.reply.Bulk("");
      return;
    }
    context.reply.Bulk(
        value.substr(static_cast<size_t>(start), static_cast<size_t>(end - start + 1)));
  });
}

void SetRange(CommandContext& context) {
  const std::optional<int64_t> offset = ParseInt64(context.args[2]);
  if (!offset) {
    context.reply.Error(kNotInteger);
    return;
  }
  if (*offset < 0) {
    context.reply.Error("ERR offset is out of range");
    return;
  }
  const std::string_view patch = context.args[3];
  Database& database = context.database();
  const std::string_view key = context.args[1];
  context.store().WithKey(key, [&](LockedKeys& keys) {
    const std::optional<EntryView> entry = keys.Find(key);
    const size_t old_size = entry ? entry->value.size() : 0;
    if (patch.empty()) {
      context.reply.Integer(static_cast<int64_t>(old_size));
      return;
    }
    // Compared as offset > limit - size so that an offset near INT64_MAX cannot overflow.
    if (*offset >
        context.server.settings().proto_max_bulk_len() - static_cast<int64_t>(patch.size())) {
      context.reply.Error(kStringTooLong);
      return;
    }
    std::string value(entry ? entry->value : std::string_view());
    const size_t end = static_cast<size_t>(*offset) + patch.size();
    if (value.size() < end)
      value.resize(end, '\0');
    value.replace(static_cast<size_t>(*offset), patch.size(), patch);
    keys.Set(key, value, database.versions().Next(), entry ? entry->expire_at_unix_ms : 0);
    context.reply.Integer(static_cast<int64_t>(value.size()));
  });
}

using enum CommandFlag;

}  // namespace

void AddStringCommands(std::vector<CommandSpec>* specs) {
  const uint32_t read = kReadOnly | kFast;
  const uint32_t write = kWrite | kDenyOom;
  const uint32_t write_fast = write | kFast;
  specs->insert(specs->end(), {
                                  {"get", 2, read, 1, 1, 1, Get},
                                  {"set", -3, write, 1, 1, 1, Set},
                                  {"setnx", 3, write_fast, 1, 1, 1, SetNx},
                                  {"setex", 4, write, 1, 1, 1, SetEx},
                                  {"psetex", 4, write, 1, 1, 1, PSetEx},
                                  {"getset", 3, write_fast, 1, 1, 1, GetSet},
                                  {"getdel", 2, Flags(kWrite) | kFast, 1, 1, 1, GetDel},
                                  {"getex", -2, Flags(kWrite) | kFast, 1, 1, 1, GetEx},
                                  {"mget", -2, read, 1, -1, 1, MGet},
                                  {"mset", -3, write, 1, -1, 2, MSet},
                                  {"msetnx", -3, write, 1, -1, 2, MSetNx},
                                  {"incr", 2, write_fast, 1, 1, 1, Incr},
                                  {"decr", 2, write_fast, 1, 1, 1, Decr},
                                  {"incrby", 3, write_fast, 1, 1, 1, IncrBy},
                                  {"decrby", 3, write_fast, 1, 1, 1, DecrBy},
                                  {"incrbyfloat", 3, write_fast, 1, 1, 1, IncrByFloat},
                                  {"append", 3, write_fast, 1, 1, 1, Append},
                                  {"strlen", 2, read, 1, 1, 1, StrLen},
                                  {"getrange", 4, Flags(kReadOnly), 1, 1, 1, GetRange},
                                  {"substr", 4, Flags(kReadOnly), 1, 1, 1, GetRange},
                                  {"setrange", 4, write, 1, 1, 1, SetRange},
                              });
}

}  // namespace weft::server
