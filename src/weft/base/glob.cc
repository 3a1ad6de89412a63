#include "weft/base/glob.h"

#include <cctype>

namespace weft {
namespace {

unsigned char Fold(unsigned char c, bool ignore_case) {
  return ignore_case ? static_cast<unsigned char>(std::tolower(c)) : c;
}

// Matches a `[...]` class starting just after '['. Advances `p` to the closing ']' (or the end
// of the pattern, like Redis, when the class is unterminated) and returns whether `c` matched.
bool MatchClass(std::string_view pattern, size_t& p, unsigned char c, bool ignore_case) {
  bool negate = false;
  bool matched = false;
  if (p < pattern.size() && pattern[p] == '^') {
    negate = true;
    ++p;
  }
  while (p < pattern.size() && pattern[p] != ']') {
    if (pattern[p] == '\\' && p + 1 < pattern.size()) {
      ++p;
      matched |= Fold(pattern[p], ignore_case) == Fold(c, ignore_case);
    } else if (p + 2 < pattern.size() && pattern[p + 1] == '-') {
      unsigned char start = Fold(pattern[p], ignore_case);
      unsigned char end = Fold(pattern[p + 2], ignore_case);
      if (start > end)
        std::swap(start, end);
      const unsigned char folded = Fold(c, ignore_case);
      matched |= folded >= start && folded <= end;
      p += 2;
    } else {
      matched |= Fold(pattern[p], ignore_case) == Fold(c, ignore_case);
    }
    ++p;
  }
  // Redis treats an unterminated class as ending at the pattern's last byte.
  if (p >= pattern.size())
    p = pattern.size() - 1;
  return negate ? !matched : matched;
}

// Recursion depth is bounded by the number of `*` in the pattern; consecutive stars collapse.
// `give_up` is Redis's skipLongerMatches: once an inner `*` has tried every suffix of the text
// and failed, no outer `*` can succeed by handing it a shorter suffix, so every level stops.
// Without it a pattern like "a*a*a*...b" takes exponential time.
bool Match(std::string_view pattern, std::string_view text, bool ignore_case, int depth,
           bool& give_up) {
  if (depth > 1000)
    return false;  // Redis bails out on pathological nesting the same way.
  size_t p = 0;
  size_t t = 0;
  while (p < pattern.size() && t < text.size()) {
    switch (pattern[p]) {
      case '*': {
        while (p + 1 < pattern.size() && pattern[p + 1] == '*')
          ++p;
        if (p + 1 == pattern.size())
          return true;
        for (size_t start = t; start < text.size(); ++start) {
          if (Match(pattern.substr(p + 1), text.substr(start), ignore_case, depth + 1, give_up)) {
            return true;
          }
          if (give_up)
            return false;
        }
        give_up = true;
        return false;
      }
      case '?':
        ++t;
        break;
      case '[': {
        ++p;
        if (!MatchClass(pattern, p, static_cast<unsigned char>(text[t]), ignore_case))
          return false;
        ++t;
        break;
      }
      case '\\':
        if (p + 1 < pattern.size())
          ++p;
        [[fallthrough]];
      default:
        if (Fold(pattern[p], ignore_case) != Fold(text[t], ignore_case))
          return false;
        ++t;
        break;
    }
    ++p;
  }
  if (t < text.size())
    return false;
  while (p < pattern.size() && pattern[p] == '*')
    ++p;
  return p == pattern.size();
}

}  // namespace

bool GlobMatch(std::string_view pattern, std::string_view text, bool ignore_case) {
  bool give_up = false;
  return Match(pattern, text, ignore_case, 0, give_up);
}

}  // namespace weft
