// Expiry arguments shared by SET, GETEX, SETEX/PSETEX: the unit words (EX, PX, EXAT, PXAT) and
// Redis's rules for turning "<unit> <n>" into an absolute Unix time in milliseconds.
//
// Thread safety: pure functions.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace weft::server {

enum class ExpireUnit { kSeconds, kMilliseconds, kUnixSeconds, kUnixMilliseconds };

struct ExpireArgument {
  ExpireUnit unit;
  std::string_view amount;
};

// The absolute expiry, or Redis's error text for `command` (then expire_at_unix_ms is 0).
struct ExpireResult {
  int64_t expire_at_unix_ms = 0;
  std::string error;
};

// "EX" -> kSeconds, "PX", "EXAT", "PXAT" (case-insensitive); nullopt for anything else.
std::optional<ExpireUnit> ParseExpireUnit(std::string_view word);

// SET-style expiry: the amount must be a positive integer ("ERR invalid expire time in
// '<command>' command" otherwise), converted without overflow.
ExpireResult ResolveExpire(const ExpireArgument& argument, int64_t now_unix_ms,
                           std::string_view command);

// EXPIRE-style expiry: any integer (zero or negative deletes the key); only overflow is an error.
// `relative` is false for EXPIREAT/PEXPIREAT.
ExpireResult ResolveExpireCommand(std::string_view amount, bool seconds, bool relative,
                                  int64_t now_unix_ms, std::string_view command);

}  // namespace weft::server
