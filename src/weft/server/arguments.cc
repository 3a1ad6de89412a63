#include "weft/server/arguments.h"

#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>

namespace weft::server {

std::optional<int64_t> ParseInt64(std::string_view text) {
  if (text.empty() || text.size() > 20)
    return std::nullopt;
  if (text == "0")
    return 0;
  size_t i = 0;
  const bool negative = text[0] == '-';
  if (negative)
    ++i;
  if (i >= text.size() || text[i] < '1' || text[i] > '9')
    return std::nullopt;
  uint64_t magnitude = 0;
  for (; i < text.size(); ++i) {
    const char c = text[i];
    if (c < '0' || c > '9')
      return std::nullopt;
    const uint64_t digit = static_cast<uint64_t>(c - '0');
    if (magnitude > (UINT64_MAX - digit) / 10)
      return std::nullopt;
    magnitude = magnitude * 10 + digit;
  }
  if (negative) {
    if (magnitude > static_cast<uint64_t>(INT64_MAX) + 1)
      return std::nullopt;
    return static_cast<int64_t>(0 - magnitude);
  }
  if (magnitude > static_cast<uint64_t>(INT64_MAX))
    return std::nullopt;
  return static_cast<int64_t>(magnitude);
}

std::optional<long double> ParseLongDouble(std::string_view text) {
  // Redis copies into a 256-byte buffer and rejects anything longer, leading spaces, trailing
  // garbage, NaN and overflow.
  if (text.empty() || text.size() >= 256)
    return std::nullopt;
  char buffer[256];
  std::memcpy(buffer, text.data(), text.size());
  buffer[text.size()] = '\0';
  if (std::isspace(static_cast<unsigned char>(buffer[0])))
    return std::nullopt;
  errno = 0;
  char* end = nullptr;
  const long double value = std::strtold(buffer, &end);
  if (end != buffer + text.size() || errno == ERANGE || std::isnan(value))
    return std::nullopt;
  return value;
}

std::string FormatLongDouble(long double value) {
  if (std::isinf(value))
    return value > 0 ? "inf" : "-inf";
  char buffer[5 * 1024];
  int length = std::snprintf(buffer, sizeof(buffer), "%.17Lf", value);
  if (length <= 0 || static_cast<size_t>(length) >= sizeof(buffer))
    return "0";
  if (std::memchr(buffer, '.', static_cast<size_t>(length)) != nullptr) {
    while (length > 0 && buffer[length - 1] == '0')
      --length;
    if (length > 0 && buffer[length - 1] == '.')
      --length;
  }
  std::string result(buffer, static_cast<size_t>(length));
  if (result == "-0")
    result = "0";
  return result;
}

}  // namespace weft::server
