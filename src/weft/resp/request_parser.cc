#include "weft/resp/request_parser.h"

#include <algorithm>
#include <cstring>

#include "weft/base/check.h"

namespace weft::resp {
namespace {

// Argument vectors above this many entries are released when the next request starts, so one
// huge MSET does not pin its index memory for the life of the connection.
constexpr size_t kRetainedArgsMax = 4096;
// Redis reserves room for at most this many arguments up front, whatever the count line
// claims, so a lying "*2147483647" costs nothing until the arguments arrive.
constexpr int64_t kReservedArgsMax = 1024;

// Redis's string2ll (util.c): an optional '-', no leading zeros, no '+', no blanks, at most
// 20 bytes, and the value must fit in a signed 64-bit integer.
bool ParseRedisInteger(std::string_view text, int64_t* value) {
  constexpr size_t kLongStringBytes = 21;  // LONG_STR_SIZE
  if (text.empty() || text.size() >= kLongStringBytes)
    return false;
  if (text.size() == 1 && text[0] == '0') {
    *value = 0;
    return true;
  }
  size_t i = 0;
  const bool negative = text[0] == '-';
  if (negative) {
    ++i;
    if (i == text.size())
      return false;
  }
  if (text[i] < '1' || text[i] > '9')
    return false;
  uint64_t magnitude = static_cast<uint64_t>(text[i] - '0');
  for (++i; i < text.size(); ++i) {
    if (text[i] < '0' || text[i] > '9')
      return false;
    const uint64_t digit = static_cast<uint64_t>(text[i] - '0');
    if (magnitude > UINT64_MAX / 10)
      return false;
    magnitude *= 10;
    if (magnitude > UINT64_MAX - digit)
      return false;
    magnitude += digit;
  }
  if (negative) {
    constexpr uint64_t kMinMagnitude = static_cast<uint64_t>(INT64_MAX) + 1;
    if (magnitude > kMinMagnitude)
      return false;
    *value = magnitude == kMinMagnitude ? INT64_MIN : -static_cast<int64_t>(magnitude);
  } else {
    if (magnitude > static_cast<uint64_t>(INT64_MAX))
      return false;
    *value = static_cast<int64_t>(magnitude);
  }
  return true;
}

// isspace() in the C locale, which is what sdssplitargs sees (Redis never sets LC_CTYPE).
bool IsCSpace(char c) {
  return c == ' ' || c == '\t' || c == '\n' || c == '\v' || c == '\f' || c == '\r';
}

bool IsHexDigit(char c) {
  return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}

int HexDigitValue(char c) {
  if (c >= '0' && c <= '9')
    return c - '0';
  if (c >= 'a' && c <= 'f')
    return c - 'a' + 10;
  return c - 'A' + 10;
}

}  // namespace

RequestParser::RequestParser(ParserLimits limits) : limits_(limits) {}

void RequestParser::Reset() {
  kind_ = Kind::kNone;
  args_.clear();
  consumed_ = 0;
  bytes_needed_hint_ = 0;
}

RequestParser::State RequestParser::Parse(std::string_view input) {
  consumed_ = 0;
  bytes_needed_hint_ = 0;
  if (kind_ == Kind::kNone) {
    args_.clear();
    if (input.empty())
      return State::kIncomplete;
    if (spans_.capacity() > kRetainedArgsMax) {
      std::vector<ArgSpan>().swap(spans_);
      std::vector<std::string_view>().swap(args_);
    }
    spans_.clear();
    inline_storage_.clear();
    args_remaining_ = -1;
    bulk_bytes_ = -1;
    StartLine(0);
    // Like processInputBuffer: a request starting with '*' is multibulk, anything else inline.
    kind_ = input[0] == '*' ? Kind::kMultibulk : Kind::kInline;
  } else {
    // Resuming with fewer bytes than before would read offsets past the end of `input`.
    WEFT_CHECK(input.size() >= input_bytes_seen_);
  }
  input_bytes_seen_ = input.size();
  return kind_ == Kind::kInline ? ParseInline(input) : ParseMultibulk(input);
}

void RequestParser::StartLine(size_t line_start) {
  position_ = line_start;
  scanned_to_ = line_start;
  line_has_nul_ = false;
}

RequestParser::LineScan RequestParser::ScanLine(std::string_view input, size_t line_start,
                                                char terminator, size_t* found) {
  // Redis looks for the terminator with strchr over everything buffered and calls the line
  // too big when none is found and more than inline_bytes_max bytes are buffered. Applied to
  // a byte-at-a-time arrival, that means: too big exactly when more than inline_bytes_max
  // bytes precede the terminator. We use that rule for every arrival pattern, so only the
  // first inline_bytes_max + 1 bytes of a line are ever searched.
  const size_t buffered = input.size() - line_start;
  const size_t window_end = buffered > limits_.inline_bytes_max
                                ? line_start + limits_.inline_bytes_max + 1
                                : input.size();
  if (!line_has_nul_ && scanned_to_ < window_end) {
    const char* begin = input.data() + scanned_to_;
    const size_t length = window_end - scanned_to_;
    const char* hit = static_cast<const char*>(std::memchr(begin, terminator, length));
    const size_t searched = hit != nullptr ? static_cast<size_t>(hit - begin) : length;
    // strchr stops at a NUL byte: a terminator after one is never seen by Redis.
    if (std::memchr(begin, '\0', searched) != nullptr) {
      line_has_nul_ = true;
    } else if (hit != nullptr) {
      scanned_to_ += searched;
      *found = scanned_to_;
      return LineScan::kFound;
    }
    scanned_to_ += searched;
  }
  return buffered > limits_.inline_bytes_max ? LineScan::kTooBig : LineScan::kIncomplete;
}

RequestParser::State RequestParser::ParseInline(std::string_view input) {
  size_t newline = 0;
  switch (ScanLine(input, 0, '\n', &newline)) {
    case LineScan::kTooBig:
      return Fail("Protocol error: too big inline request");
    case LineScan::kIncomplete:
      return State::kIncomplete;
    case LineScan::kFound:
      break;
  }
  size_t line_end = newline;
  if (line_end > 0 && input[line_end - 1] == '\r')
    --line_end;
  if (!SplitInline(input.substr(0, line_end))) {
    return Fail("Protocol error: unbalanced quotes in request");
  }
  return Complete(input, newline + 1);
}

bool RequestParser::SplitInline(std::string_view line) {
  // A transcription of sdssplitargs. The line holds no NUL byte (ScanLine saw to that), so
  // reading past its end as '\0' matches the C string sdssplitargs walks.
  const size_t size = line.size();
  auto at = [line, size](size_t i) {
    return i < size ? line[i] : '\0';
  };
  size_t p = 0;
  while (true) {
    while (p < size && IsCSpace(line[p]))
      ++p;
    if (p >= size)
      return true;

    // A word is a view of the line unless it has a quoted part. That part always ends the word
    // (a closing quote must be followed by a blank), so from its opening quote on the word's
    // bytes accumulate in inline_storage_, after a copy of the bare prefix before the quote.
    const size_t start = p;
    size_t owned_start = 0;
    bool owned = false;
    bool in_double_quotes = false;
    bool in_single_quotes = false;
    bool done = false;
    size_t end = p;
    while (!done) {
      const char c = at(p);
      if (in_double_quotes) {
        if (c == '\\' && at(p + 1) == 'x' && IsHexDigit(at(p + 2)) && IsHexDigit(at(p + 3))) {
          inline_storage_.push_back(
              static_cast<char>(HexDigitValue(at(p + 2)) * 16 + HexDigitValue(at(p + 3))));
          p += 3;
        } else if (c == '\\' && at(p + 1) != '\0') {
          ++p;
          char escaped = at(p);
          switch (escaped) {
            case 'n':
              escaped = '\n';
              break;
            case 'r':
              escaped = '\r';
              break;
            case 't':
              escaped = '\t';
              break;
            case 'b':
              escaped = '\b';
              break;
            case 'a':
              escaped = '\a';
              break;
            default:
              break;
          }
          inline_storage_.push_back(escaped);
        } else if (c == '"') {
          // The closing quote must be followed by a blank or the end of the line.
          if (at(p + 1) != '\0' && !IsCSpace(at(p + 1)))
            return false;
          done = true;
        } else if (c == '\0') {
          return false;  // unterminated quotes
        } else {
          inline_storage_.push_back(c);
        }
      } else if (in_single_quotes) {
        if (c == '\\' && at(p + 1) == '\'') {
          ++p;
          inline_storage_.push_back('\'');
        } else if (c == '\'') {
          if (at(p + 1) != '\0' && !IsCSpace(at(p + 1)))
            return false;
          done = true;
        } else if (c == '\0') {
          return false;
        } else {
          inline_storage_.push_back(c);
        }
      } else {
        switch (c) {
          // Not every isspace() byte: sdssplitargs ends a bare word only at these.
          case ' ':
          case '\n':
          case '\r':
          case '\t':
          case '\0':
            end = p;
            done = true;
            break;
          case '"':
          case '\'':
            owned = true;
            owned_start = inline_storage_.size();
            inline_storage_.append(line.substr(start, p - start));
            in_double_quotes = c == '"';
            in_single_quotes = c == '\'';
            break;
          default:
            break;  // the bare word goes on
        }
      }
      if (p < size)
        ++p;
    }
    if (owned) {
      spans_.push_back({owned_start, inline_storage_.size() - owned_start, true});
    } else {
      spans_.push_back({start, end - start, false});
    }
  }
}

RequestParser::State RequestParser::ParseMultibulk(std::string_view input) {
  if (args_remaining_ < 0) {
    size_t cr = 0;
    switch (ScanLine(input, 0, '\r', &cr)) {
      case LineScan::kTooBig:
        return Fail("Protocol error: too big mbulk count string");
      case LineScan::kIncomplete:
        return State::kIncomplete;
      case LineScan::kFound:
        break;
    }
    // Redis wants one more byte after the '\r' and skips it without looking at it.
    if (input.size() - cr < 2)
      return State::kIncomplete;
    int64_t count = 0;
    if (!ParseRedisInteger(input.substr(1, cr - 1), &count) || count > limits_.multibulk_args_max) {
      return Fail("Protocol error: invalid multibulk length");
    }
    if (!authenticated_ && count > limits_.unauthenticated_multibulk_args_max) {
      return Fail("Protocol error: unauthenticated multibulk length");
    }
    if (count <= 0)
      return Complete(input, cr + 2);
    args_remaining_ = count;
    spans_.reserve(static_cast<size_t>(std::min(count, kReservedArgsMax)));
    StartLine(cr + 2);
  }

  while (args_remaining_ > 0) {
    if (bulk_bytes_ < 0) {
      size_t cr = 0;
      switch (ScanLine(input, position_, '\r', &cr)) {
        case LineScan::kTooBig:
          return Fail("Protocol error: too big bulk count string");
        case LineScan::kIncomplete:
          return State::kIncomplete;
        case LineScan::kFound:
          break;
      }
      if (input.size() - cr < 2)
        return State::kIncomplete;
      if (input[position_] != '$') {
        std::string message = "Protocol error: expected '$', got '";
        message.push_back(input[position_]);
        message.push_back('\'');
        return Fail(message);
      }
      int64_t length = 0;
      if (!ParseRedisInteger(input.substr(position_ + 1, cr - position_ - 1), &length) ||
          length < 0 || length > limits_.bulk_bytes_max) {
        return Fail("Protocol error: invalid bulk length");
      }
      if (!authenticated_ && length > limits_.unauthenticated_bulk_bytes_max) {
        return Fail("Protocol error: unauthenticated bulk length");
      }
      bulk_bytes_ = length;
      position_ = cr + 2;
    }
    // The bulk and the two bytes after it, which Redis skips without checking for "\r\n".
    const size_t available = input.size() - position_;
    const size_t needed = static_cast<size_t>(bulk_bytes_) + 2;
    if (available < needed) {
      bytes_needed_hint_ = needed - available;
      return State::kIncomplete;
    }
    spans_.push_back({position_, static_cast<size_t>(bulk_bytes_), false});
    StartLine(position_ + needed);
    bulk_bytes_ = -1;
    --args_remaining_;
  }
  return Complete(input, position_);
}

RequestParser::State RequestParser::Complete(std::string_view input, size_t consumed) {
  args_.reserve(spans_.size());
  for (const ArgSpan& span : spans_) {
    const char* base = span.owned ? inline_storage_.data() : input.data();
    args_.emplace_back(base + span.offset, span.length);
  }
  consumed_ = consumed;
  kind_ = Kind::kNone;
  return State::kComplete;
}

RequestParser::State RequestParser::Fail(std::string_view message) {
  error_.assign(message);
  kind_ = Kind::kNone;
  return State::kProtocolError;
}

}  // namespace weft::resp
