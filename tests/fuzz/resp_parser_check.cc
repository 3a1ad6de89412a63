#include "tests/fuzz/resp_parser_check.h"

#include <algorithm>
#include <functional>
#include <string>
#include <vector>

#include "weft/base/hash.h"
#include "weft/base/random.h"
#include "weft/resp/request_parser.h"

namespace weft::fuzz {
namespace {

using resp::ParserLimits;
using resp::RequestParser;
using State = RequestParser::State;

// Inputs up to this size are also fed one byte at a time.
constexpr size_t kByteAtATimeBytesMax = 8192;

struct Config {
  const char* name;
  ParserLimits limits;
  bool authenticated;
};

std::vector<Config> Configs() {
  ParserLimits tiny;
  tiny.bulk_bytes_max = 16;
  tiny.multibulk_args_max = 6;
  tiny.inline_bytes_max = 24;
  tiny.unauthenticated_multibulk_args_max = 3;
  tiny.unauthenticated_bulk_bytes_max = 8;
  return {{"redis defaults", ParserLimits{}, true},
          {"tiny limits", tiny, true},
          {"tiny limits, unauthenticated", tiny, false}};
}

// What a connection would see, plus the first broken per-call promise if any.
struct Trace {
  std::vector<std::vector<std::string>> commands;
  std::string end;  // "incomplete" or "error: <text>"
  std::string violation;
};

// Returns the size of the next piece to feed given how many bytes remain (>= 1).
using PieceSizer = std::function<size_t(size_t remaining)>;

// Feeds `data` to a fresh parser the way server/ Connection does: append each piece to a
// buffer, parse requests until one is incomplete, keep the unconsumed tail.
Trace Run(std::string_view data, const Config& config, const PieceSizer& next_piece) {
  RequestParser parser(config.limits);
  parser.SetAuthenticated(config.authenticated);
  Trace trace;
  std::string buffer;
  size_t offset = 0;  // start of the current request in `buffer`
  size_t fed = 0;
  // The buffer size below which the current request must stay incomplete, per the hint.
  size_t promised_incomplete_below = 0;
  while (fed < data.size()) {
    const size_t take = std::clamp<size_t>(next_piece(data.size() - fed), 1, data.size() - fed);
    buffer.append(data.substr(fed, take));
    fed += take;
    while (offset < buffer.size()) {
      const std::string_view input = std::string_view(buffer).substr(offset);
      const State state = parser.Parse(input);
      if (state == State::kIncomplete) {
        if (parser.consumed() != 0)
          trace.violation = "kIncomplete with consumed() > 0";
        if (parser.bytes_needed_hint() > 0) {
          promised_incomplete_below = buffer.size() + parser.bytes_needed_hint();
        }
        break;
      }
      if (buffer.size() < promised_incomplete_below) {
        trace.violation = "finished a request before bytes_needed_hint() bytes arrived";
      }
      promised_incomplete_below = 0;
      if (state == State::kProtocolError) {
        trace.end = "error: " + std::string(parser.error());
        return trace;
      }
      const size_t consumed = parser.consumed();
      if (consumed == 0 || consumed > input.size()) {
        trace.violation = "kComplete with consumed() " + std::to_string(consumed) +
                          " of an input of " + std::to_string(input.size()) + " bytes";
        trace.end = "bad consumed";
        return trace;
      }
      std::vector<std::string>& command = trace.commands.emplace_back();
      for (std::string_view arg : parser.args()) {
        // Multibulk arguments are views of the consumed bytes; inline ones may be owned.
        if (input[0] == '*' &&
            (arg.data() < input.data() || arg.data() + arg.size() > input.data() + consumed)) {
          trace.violation = "a multibulk argument outside the consumed bytes";
        }
        command.emplace_back(arg);
      }
      offset += consumed;
    }
  }
  trace.end = "incomplete";
  return trace;
}

std::string Describe(const Trace& trace) {
  std::string text = std::to_string(trace.commands.size()) + " commands, then " + trace.end;
  if (!trace.commands.empty()) {
    text += "; last command has " + std::to_string(trace.commands.back().size()) + " args";
  }
  return text;
}

}  // namespace

std::string CheckRequestParser(std::string_view data) {
  const uint64_t seed = Hash64(data);
  for (const Config& config : Configs()) {
    const Trace whole = Run(data, config, [](size_t remaining) { return remaining; });
    if (!whole.violation.empty())
      return std::string(config.name) + ", whole: " + whole.violation;

    std::vector<std::pair<const char*, PieceSizer>> patterns;
    if (data.size() <= kByteAtATimeBytesMax) {
      patterns.emplace_back("one byte at a time", [](size_t) { return size_t{1}; });
    }
    // Split points derived from the input: the fuzzer can steer them by changing the bytes.
    patterns.emplace_back("pieces of 1..8 bytes", [random = Random(seed)](size_t) mutable {
      return 1 + random.Uniform(8);
    });
    patterns.emplace_back("pieces of 1..512 bytes",
                          [random = Random(seed ^ 0x5bd1e995)](size_t remaining) mutable {
                            return random.OneIn(8) ? remaining / 2 + 1 : 1 + random.Uniform(512);
                          });

    for (const auto& [pattern_name, sizer] : patterns) {
      const Trace pieces = Run(data, config, sizer);
      const std::string where = std::string(config.name) + ", " + pattern_name + ": ";
      if (!pieces.violation.empty())
        return where + pieces.violation;
      if (pieces.commands != whole.commands || pieces.end != whole.end) {
        size_t first_difference = 0;
        while (first_difference < std::min(pieces.commands.size(), whole.commands.size()) &&
               pieces.commands[first_difference] == whole.commands[first_difference]) {
          ++first_difference;
        }
        return where + "differs from whole input at command " + std::to_string(first_difference) +
               ": whole gave " + Describe(whole) + ", pieces gave " + Describe(pieces);
      }
    }
  }
  return "";
}

}  // namespace weft::fuzz
