// Parsing of command arguments with Redis's exact rules, shared by every command family.
//
// Thread safety: pure functions.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "weft/base/strings.h"

namespace weft::server {

// Redis's string2ll: optional '-', no '+', no spaces, no leading zeros (except "0"), fits in
// int64. Returns nullopt otherwise.
std::optional<int64_t> ParseInt64(std::string_view text);

// Redis's string2ld for INCRBYFLOAT: a finite long double, no surrounding spaces.
std::optional<long double> ParseLongDouble(std::string_view text);

// Redis's ld2string in human mode: "%.17Lf" with trailing zeros (and a trailing '.') removed.
std::string FormatLongDouble(long double value);

// Error texts used by several families.
inline constexpr std::string_view kNotInteger = "ERR value is not an integer or out of range";
inline constexpr std::string_view kSyntaxError = "ERR syntax error";
inline constexpr std::string_view kNotFloat = "ERR value is not a valid float";
inline constexpr std::string_view kStringTooLong =
    "ERR string exceeds maximum allowed size (proto-max-bulk-len)";

}  // namespace weft::server
