#include "weft/server/expire_options.h"

#include "weft/base/strings.h"
#include "weft/server/arguments.h"

namespace weft::server {
namespace {

std::string InvalidExpireTime(std::string_view command) {
  return StrCat("ERR invalid expire time in '", command, "' command");
}

}  // namespace

std::optional<ExpireUnit> ParseExpireUnit(std::string_view word) {
  if (EqualsIgnoreCase(word, "EX"))
    return ExpireUnit::kSeconds;
  if (EqualsIgnoreCase(word, "PX"))
    return ExpireUnit::kMilliseconds;
  if (EqualsIgnoreCase(word, "EXAT"))
    return ExpireUnit::kUnixSeconds;
  if (EqualsIgnoreCase(word, "PXAT"))
    return ExpireUnit::kUnixMilliseconds;
  return std::nullopt;
}

ExpireResult ResolveExpire(const ExpireArgument& argument, int64_t now_unix_ms,
                           std::string_view command) {
  const std::optional<int64_t> amount = ParseInt64(argument.amount);
  if (!amount)
    return {0, std::string(kNotInteger)};
  const bool seconds =
      argument.unit == ExpireUnit::kSeconds || argument.unit == ExpireUnit::kUnixSeconds;
  if (*amount <= 0 || (seconds && *amount > INT64_MAX / 1000)) {
    return {0, InvalidExpireTime(command)};
  }
  int64_t ms = seconds ? *amount * 1000 : *amount;
  const bool relative =
      argument.unit == ExpireUnit::kSeconds || argument.unit == ExpireUnit::kMilliseconds;
  if (relative) {
    if (ms > INT64_MAX - now_unix_ms)
      return {0, InvalidExpireTime(command)};
    ms += now_unix_ms;
  }
  return {ms, ""};
}

ExpireResult ResolveExpireCommand(std::string_view amount_text, bool seconds, bool relative,
                                  int64_t now_unix_ms, std::string_view command) {
  const std::optional<int64_t> amount = ParseInt64(amount_text);
  if (!amount)
    return {0, std::string(kNotInteger)};
  int64_t ms = *amount;
  if (seconds) {
    if (ms > INT64_MAX / 1000 || ms < INT64_MIN / 1000)
      return {0, InvalidExpireTime(command)};
    ms *= 1000;
  }
  if (relative) {
    if (ms > INT64_MAX - now_unix_ms)
      return {0, InvalidExpireTime(command)};
    ms += now_unix_ms;
  }
  return {ms, ""};
}

}  // namespace weft::server
