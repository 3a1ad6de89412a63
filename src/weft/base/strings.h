// Small string utilities over std::string_view.
//
// Debian's Abseil is built with its own absl::string_view (not an alias of std::string_view),
// so Abseil's string functions do not accept std::string_view. These few helpers cover what
// weft needs without conversions at every call site.
//
// Thread safety: pure functions.
#pragma once

#include <charconv>
#include <concepts>
#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/strings/string_view.h"

namespace weft {

namespace strings_internal {

inline void AppendPiece(std::string& out, std::string_view piece) {
  out.append(piece);
}
inline void AppendPiece(std::string& out, const char* piece) {
  out.append(piece);
}
inline void AppendPiece(std::string& out, const std::string& piece) {
  out.append(piece);
}
inline void AppendPiece(std::string& out, char piece) {
  out.push_back(piece);
}
#ifndef ABSL_USES_STD_STRING_VIEW
// Status::message() and other Abseil results.
inline void AppendPiece(std::string& out, absl::string_view piece) {
  out.append(piece.data(), piece.size());
}
#endif
template <std::integral T>
requires(!std::same_as<T, char> && !std::same_as<T, bool>) void AppendPiece(std::string& out,
                                                                            T value) {
  char buffer[24];
  const auto result = std::to_chars(buffer, buffer + sizeof(buffer), value);
  out.append(buffer, result.ptr);
}

}  // namespace strings_internal

// Appends each piece (strings, string_views, C strings, chars, integers) to *out.
template <typename... Pieces>
void StrAppend(std::string* out, const Pieces&... pieces) {
  (strings_internal::AppendPiece(*out, pieces), ...);
}

// Concatenates the pieces into a new string.
template <typename... Pieces>
std::string StrCat(const Pieces&... pieces) {
  std::string out;
  StrAppend(&out, pieces...);
  return out;
}

inline char AsciiLower(char c) {
  return (c >= 'A' && c <= 'Z') ? static_cast<char>(c + 32) : c;
}

inline std::string AsciiLower(std::string_view text) {
  std::string lower(text);
  for (char& c : lower)
    c = AsciiLower(c);
  return lower;
}

inline bool EqualsIgnoreCase(std::string_view a, std::string_view b) {
  if (a.size() != b.size())
    return false;
  for (size_t i = 0; i < a.size(); ++i) {
    if (AsciiLower(a[i]) != AsciiLower(b[i]))
      return false;
  }
  return true;
}

// Splits on `separator`, dropping empty pieces.
inline std::vector<std::string_view> SplitSkipEmpty(std::string_view text, char separator) {
  std::vector<std::string_view> pieces;
  size_t start = 0;
  while (start <= text.size()) {
    size_t end = text.find(separator, start);
    if (end == std::string_view::npos)
      end = text.size();
    if (end > start)
      pieces.push_back(text.substr(start, end - start));
    start = end + 1;
  }
  return pieces;
}

// Hash functor for containers keyed by std::string_view (Abseil's default hasher takes only
// its own string_view in Debian's build).
struct StringViewHash {
  size_t operator()(std::string_view text) const { return std::hash<std::string_view>{}(text); }
};

}  // namespace weft
