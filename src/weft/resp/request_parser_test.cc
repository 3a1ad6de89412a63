#include "weft/resp/request_parser.h"

#include <chrono>
#include <string>
#include <vector>

#include <gtest/gtest.h>

namespace weft::resp {
namespace {

using State = RequestParser::State;
using std::string_literals::operator""s;
using std::string_view_literals::operator""sv;
using Command = std::vector<std::string>;

// What a connection would see: the commands in order, and how the input ended.
struct Outcome {
  std::vector<Command> commands;
  State last = State::kIncomplete;
  std::string error;
  size_t consumed_bytes = 0;

  bool operator==(const Outcome&) const = default;
};

Command Copy(std::span<const std::string_view> args) {
  return Command(args.begin(), args.end());
}

// Feeds `input` in pieces of the given sizes (the rest in one last piece), the way a
// connection does: append to a buffer, parse until incomplete, drop what was consumed.
Outcome ParseInPieces(std::string_view input, const std::vector<size_t>& piece_bytes,
                      ParserLimits limits = {}, bool authenticated = true) {
  RequestParser parser(limits);
  parser.SetAuthenticated(authenticated);
  Outcome outcome;
  std::string buffer;
  size_t fed = 0;
  size_t piece = 0;
  while (fed < input.size()) {
    const size_t take = piece < piece_bytes.size()
                            ? std::min(piece_bytes[piece++], input.size() - fed)
                            : input.size() - fed;
    buffer.append(input.substr(fed, take));
    fed += take;
    while (!buffer.empty()) {
      outcome.last = parser.Parse(buffer);
      if (outcome.last == State::kIncomplete)
        break;
      if (outcome.last == State::kProtocolError) {
        outcome.error = std::string(parser.error());
        return outcome;
      }
      EXPECT_GT(parser.consumed(), 0u);
      EXPECT_LE(parser.consumed(), buffer.size());
      outcome.commands.push_back(Copy(parser.args()));
      outcome.consumed_bytes += parser.consumed();
      buffer.erase(0, parser.consumed());
      outcome.last = State::kIncomplete;
    }
  }
  return outcome;
}

Outcome ParseWhole(std::string_view input, ParserLimits limits = {}, bool authenticated = true) {
  return ParseInPieces(input, {}, limits, authenticated);
}

std::string ErrorOf(std::string_view input, ParserLimits limits = {}, bool authenticated = true) {
  const Outcome outcome = ParseWhole(input, limits, authenticated);
  EXPECT_EQ(outcome.last, State::kProtocolError) << "input: " << input;
  return outcome.error;
}

TEST(RequestParserTest, MultibulkRequest) {
  RequestParser parser;
  const std::string input = "*3\r\n$3\r\nSET\r\n$3\r\nkey\r\n$5\r\nvalue\r\n";
  ASSERT_EQ(parser.Parse(input), State::kComplete);
  EXPECT_EQ(parser.consumed(), input.size());
  EXPECT_EQ(Copy(parser.args()), (Command{"SET", "key", "value"}));
  // The arguments are views into the caller's bytes.
  EXPECT_EQ(parser.args()[1].data(), input.data() + 17);
}

TEST(RequestParserTest, InlineRequest) {
  EXPECT_EQ(ParseWhole("PING\r\n").commands, (std::vector<Command>{{"PING"}}));
  EXPECT_EQ(ParseWhole("SET k v\n").commands, (std::vector<Command>{{"SET", "k", "v"}}));
  EXPECT_EQ(ParseWhole("  GET \t k  \r\n").commands, (std::vector<Command>{{"GET", "k"}}));
  // Only the '\r' right before the '\n' belongs to the line ending; others separate words.
  EXPECT_EQ(ParseWhole("a\rb\r\r\n").commands, (std::vector<Command>{{"a", "b"}}));
  // sdssplitargs ends a bare word only at space, tab, CR, LF: \v and \f stay inside it but are
  // skipped between words.
  EXPECT_EQ(ParseWhole("\va\vb \fc\n").commands, (std::vector<Command>{{"a\vb", "c"}}));
  // Bytes above 0x7f are ordinary.
  EXPECT_EQ(ParseWhole("GET \xff\xa0\n").commands, (std::vector<Command>{{"GET", "\xff\xa0"}}));
}

TEST(RequestParserTest, EmptyRequestsAreConsumedWithoutArguments) {
  const Outcome outcome = ParseWhole("\r\n\n   \r\n*0\r\n*-1\r\n*-100\r\nPING\r\n");
  EXPECT_EQ(outcome.commands, (std::vector<Command>{{}, {}, {}, {}, {}, {}, {"PING"}}));
  EXPECT_EQ(outcome.last, State::kIncomplete);
}

TEST(RequestParserTest, PipelinedRequestsInOneBuffer) {
  const std::string input =
      "*1\r\n$4\r\nPING\r\n"
      "ECHO hi\r\n"
      "*2\r\n$3\r\nGET\r\n$1\r\nk\r\n"
      "*2\r\n$3\r\nGET";  // incomplete tail
  RequestParser parser;
  size_t offset = 0;
  std::vector<Command> commands;
  while (parser.Parse(std::string_view(input).substr(offset)) == State::kComplete) {
    commands.push_back(Copy(parser.args()));
    offset += parser.consumed();
  }
  EXPECT_EQ(commands, (std::vector<Command>{{"PING"}, {"ECHO", "hi"}, {"GET", "k"}}));
  EXPECT_EQ(offset, input.size() - 11);
  EXPECT_EQ(parser.consumed(), 0u);
  EXPECT_TRUE(parser.args().empty());
}

TEST(RequestParserTest, BulkArgumentsMayHoldAnyByte) {
  const std::string_view input = "*3\r\n$3\r\na\0b\r\n$0\r\n\r\n$4\r\n\r\n\r\n\r\n"sv;
  const Outcome outcome = ParseWhole(input);
  ASSERT_EQ(outcome.commands.size(), 1u);
  EXPECT_EQ(outcome.commands[0], (Command{"a\0b"s, "", "\r\n\r\n"}));
  EXPECT_EQ(outcome.consumed_bytes, input.size());
}

TEST(RequestParserTest, BytesAfterABulkAreSkippedUnchecked) {
  // Redis skips the two bytes after a count line's '\r' and after a bulk without looking.
  EXPECT_EQ(ParseWhole("*2\rX$1\r\na??$1\r\nbYZ").commands, (std::vector<Command>{{"a", "b"}}));
}

TEST(RequestParserTest, NumbersFollowRedisString2ll) {
  EXPECT_EQ(ParseWhole("*1\r\n$0\r\n\r\n").commands, (std::vector<Command>{{""}}));
  EXPECT_EQ(ErrorOf("*01\r\n"), "Protocol error: invalid multibulk length");
  EXPECT_EQ(ErrorOf("*+1\r\n"), "Protocol error: invalid multibulk length");
  EXPECT_EQ(ErrorOf("* 1\r\n"), "Protocol error: invalid multibulk length");
  EXPECT_EQ(ErrorOf("*1 \r\n"), "Protocol error: invalid multibulk length");
  EXPECT_EQ(ErrorOf("*-0\r\n"), "Protocol error: invalid multibulk length");
  EXPECT_EQ(ErrorOf("*-\r\n"), "Protocol error: invalid multibulk length");
  EXPECT_EQ(ErrorOf("*\r\n"), "Protocol error: invalid multibulk length");
  EXPECT_EQ(ErrorOf("*99999999999999999999\r\n"), "Protocol error: invalid multibulk length");
  // Negative counts down to INT64_MIN are an empty request.
  EXPECT_EQ(ParseWhole("*-9223372036854775808\r\n").commands, (std::vector<Command>{{}}));
  EXPECT_EQ(ErrorOf("*-9223372036854775809\r\n"), "Protocol error: invalid multibulk length");
  EXPECT_EQ(ErrorOf("*1\r\n$01\r\nx\r\n"), "Protocol error: invalid bulk length");
  EXPECT_EQ(ErrorOf("*1\r\n$\r\n"), "Protocol error: invalid bulk length");
  EXPECT_EQ(ErrorOf("*1\r\n$-1\r\n"), "Protocol error: invalid bulk length");
  EXPECT_EQ(ErrorOf("*1\r\n$3x\r\nabc\r\n"), "Protocol error: invalid bulk length");
}

TEST(RequestParserTest, EveryProtocolErrorText) {
  EXPECT_EQ(ErrorOf("*x\r\n"), "Protocol error: invalid multibulk length");
  EXPECT_EQ(ErrorOf("*2147483648\r\n"), "Protocol error: invalid multibulk length");
  EXPECT_EQ(ErrorOf("*1\r\n$536870913\r\n"), "Protocol error: invalid bulk length");
  EXPECT_EQ(ErrorOf("*1\r\nGET\r\n"), "Protocol error: expected '$', got 'G'");
  EXPECT_EQ(ErrorOf("*2\r\n$1\r\na\r\n:1\r\n"), "Protocol error: expected '$', got ':'");
  // The byte Redis reports may be the '\r' itself; ReplyWriter::Error turns it into a space.
  EXPECT_EQ(ErrorOf("*1\r\n\r\n"), "Protocol error: expected '$', got '\r'");
  EXPECT_EQ(ErrorOf("SET \"a\n"), "Protocol error: unbalanced quotes in request");
  EXPECT_EQ(ErrorOf("*11\r\n", {}, false), "Protocol error: unauthenticated multibulk length");
  EXPECT_EQ(ErrorOf("*1\r\n$16385\r\n", {}, false), "Protocol error: unauthenticated bulk length");
  EXPECT_EQ(ErrorOf(std::string(64 * 1024 + 1, 'a')), "Protocol error: too big inline request");
  EXPECT_EQ(ErrorOf("*" + std::string(64 * 1024, '1')),
            "Protocol error: too big mbulk count string");
  EXPECT_EQ(ErrorOf("*1\r\n$" + std::string(64 * 1024, '1')),
            "Protocol error: too big bulk count string");
}

TEST(RequestParserTest, ErrorAfterCompleteRequestsInAPipeline) {
  const Outcome outcome = ParseWhole("PING\r\n*1\r\n$4\r\nPING\r\n*1\r\n+PING\r\n");
  EXPECT_EQ(outcome.commands, (std::vector<Command>{{"PING"}, {"PING"}}));
  EXPECT_EQ(outcome.error, "Protocol error: expected '$', got '+'");
}

TEST(RequestParserTest, ParserStartsAfreshAfterAnError) {
  RequestParser parser;
  ASSERT_EQ(parser.Parse("*x\r\n"), State::kProtocolError);
  EXPECT_EQ(parser.consumed(), 0u);
  ASSERT_EQ(parser.Parse("PING\r\n"), State::kComplete);
  EXPECT_EQ(Copy(parser.args()), (Command{"PING"}));
}

TEST(RequestParserTest, DefaultLimitsAreRedis7015) {
  const ParserLimits limits;
  EXPECT_EQ(limits.bulk_bytes_max, 512LL * 1024 * 1024);
  EXPECT_EQ(limits.multibulk_args_max, 2147483647);
  EXPECT_EQ(limits.inline_bytes_max, 64u * 1024);
  EXPECT_EQ(limits.unauthenticated_multibulk_args_max, 10);
  EXPECT_EQ(limits.unauthenticated_bulk_bytes_max, 16384);
  // At the limits themselves a request is still accepted (it just waits for its bytes).
  RequestParser parser;
  EXPECT_EQ(parser.Parse("*2147483647\r\n$536870912\r\n"), State::kIncomplete);
  EXPECT_EQ(parser.bytes_needed_hint(), 536870912u + 2);
}

TEST(RequestParserTest, ConfiguredLimits) {
  ParserLimits limits;
  limits.bulk_bytes_max = 4;
  limits.multibulk_args_max = 2;
  limits.inline_bytes_max = 8;
  EXPECT_EQ(ParseWhole("*2\r\n$4\r\nabcd\r\n$0\r\n\r\n", limits).commands,
            (std::vector<Command>{{"abcd", ""}}));
  EXPECT_EQ(ErrorOf("*3\r\n", limits), "Protocol error: invalid multibulk length");
  EXPECT_EQ(ErrorOf("*1\r\n$5\r\n", limits), "Protocol error: invalid bulk length");
  // An inline line (or count line) of inline_bytes_max bytes is fine; one more byte is not.
  EXPECT_EQ(ParseWhole("12345678\n", limits).commands, (std::vector<Command>{{"12345678"}}));
  EXPECT_EQ(ParseWhole("1234567\r\n", limits).commands, (std::vector<Command>{{"1234567"}}));
  EXPECT_EQ(ErrorOf("123456789\n", limits), "Protocol error: too big inline request");
  EXPECT_EQ(ErrorOf("12345678\r\n", limits), "Protocol error: too big inline request");
  EXPECT_EQ(ParseWhole("123456789", limits).last, State::kProtocolError);
  EXPECT_EQ(ParseWhole("12345678", limits).last, State::kIncomplete);
  EXPECT_EQ(ParseWhole("*0000001\r\n", limits).error, "Protocol error: invalid multibulk length");
  EXPECT_EQ(ErrorOf("*00000001\r\n", limits), "Protocol error: too big mbulk count string");
  EXPECT_EQ(ErrorOf("*1\r\n$00000001\r\n", limits), "Protocol error: too big bulk count string");
  EXPECT_EQ(ParseWhole("*1\r\n$0000001", limits).last, State::kIncomplete);
}

TEST(RequestParserTest, UnauthenticatedLimitsFollowTheSwitch) {
  RequestParser parser;
  parser.SetAuthenticated(false);
  EXPECT_FALSE(parser.authenticated());
  EXPECT_EQ(parser.Parse("*10\r\n"), State::kIncomplete);
  parser.Reset();
  EXPECT_EQ(parser.Parse("*1\r\n$16384\r\n"), State::kIncomplete);
  parser.Reset();
  EXPECT_EQ(parser.Parse("*11\r\n"), State::kProtocolError);
  parser.SetAuthenticated(true);
  EXPECT_EQ(parser.Parse("*11\r\n"), State::kIncomplete);
  // Inline requests have no unauthenticated limit in Redis.
  parser.Reset();
  parser.SetAuthenticated(false);
  EXPECT_EQ(parser.Parse("a b c d e f g h i j k l\n"), State::kComplete);
  EXPECT_EQ(parser.args().size(), 12u);
}

TEST(RequestParserTest, InlineQuoting) {
  auto parse = [](std::string_view line) {
    const Outcome outcome = ParseWhole(line);
    EXPECT_EQ(outcome.commands.size(), 1u) << line;
    return outcome.commands.empty() ? Command{} : outcome.commands[0];
  };
  EXPECT_EQ(parse("SET \"a b\" 'c d'\n"), (Command{"SET", "a b", "c d"}));
  EXPECT_EQ(parse("\"\\n\\r\\t\\b\\a\\\\\\\"\\q\"\n"), (Command{"\n\r\t\b\a\\\"q"}));
  EXPECT_EQ(parse("\"\\x41\\x6a\\xFf\\x00\"\n"), (Command{"Aj\xff\0"s}));
  // An \x without two hex digits is an ordinary escape of 'x'.
  EXPECT_EQ(parse("\"\\xZZ\\x4\"\n"), (Command{"xZZx4"}));
  EXPECT_EQ(parse("'it\\'s' 'a\\b\\n' '\"'\n"), (Command{"it's", "a\\b\\n", "\""}));
  EXPECT_EQ(parse("\"\" ''\n"), (Command{"", ""}));
  // A quote inside a word opens a quoted part of the same word.
  EXPECT_EQ(parse("foo\"bar baz\" x'y'\n"), (Command{"foobar baz", "xy"}));
  // Inside quotes a CR is kept; after the closing quote any isspace() byte may follow.
  EXPECT_EQ(parse("\"a\rb\"\v'c'\f\n"), (Command{"a\rb", "c"}));
  EXPECT_EQ(parse("plain \"quoted\" plain\n"), (Command{"plain", "quoted", "plain"}));

  const char* const unbalanced[] = {
      "\"abc\n",     "'abc\n", "\"a\"b\n",     "'a'b\n",
      "\"abc\\\"\n", "\"\\\n", "x \"a\" \"\n", "\"\\x4\n",
  };
  for (const char* line : unbalanced) {
    EXPECT_EQ(ErrorOf(line), "Protocol error: unbalanced quotes in request") << line;
  }
}

TEST(RequestParserTest, QuotedArgumentsAreOwnedByTheParser) {
  const std::string input = "SET k \"v\\x00w\"\r\n";
  RequestParser parser;
  ASSERT_EQ(parser.Parse(input), State::kComplete);
  ASSERT_EQ(parser.args().size(), 3u);
  EXPECT_EQ(parser.args()[1].data(), input.data() + 4);  // unquoted: a view
  EXPECT_EQ(parser.args()[2], "v\0w"sv);
}

TEST(RequestParserTest, NulHidesTheRestOfAnInlineLine) {
  // Redis finds an inline line's end with strchr, which stops at a NUL: the line never
  // completes and eventually is too big.
  EXPECT_EQ(ParseWhole("GET a\0b\r\nPING\r\n"sv).last, State::kIncomplete);
  std::string input = "GET a\0b\r\n"s;
  input.resize(64 * 1024 + 1, 'x');
  EXPECT_EQ(ErrorOf(input), "Protocol error: too big inline request");
  // Likewise in a multibulk count line.
  EXPECT_EQ(ParseWhole("*1\0\r\n$1\r\na\r\n"sv).last, State::kIncomplete);
}

TEST(RequestParserTest, ResumesWhenTheBufferMoves) {
  const std::string input = "*2\r\n$3\r\nGET\r\n$5\r\nhello\r\n";
  RequestParser parser;
  std::string first(input.substr(0, 20));
  ASSERT_EQ(parser.Parse(first), State::kIncomplete);
  EXPECT_EQ(parser.bytes_needed_hint(), 4u);
  std::string second = first + input.substr(20);
  first.assign("garbage garbage garbage");
  ASSERT_EQ(parser.Parse(second), State::kComplete);
  EXPECT_EQ(Copy(parser.args()), (Command{"GET", "hello"}));
  EXPECT_EQ(parser.bytes_needed_hint(), 0u);
}

TEST(RequestParserTest, HintCountsTheRestOfALargeBulk) {
  RequestParser parser;
  std::string input = "*1\r\n$1000000\r\n" + std::string(100, 'v');
  ASSERT_EQ(parser.Parse(input), State::kIncomplete);
  EXPECT_EQ(parser.bytes_needed_hint(), 1000000u - 100 + 2);
  input.append(1000000 - 100, 'v');
  ASSERT_EQ(parser.Parse(input), State::kIncomplete);
  EXPECT_EQ(parser.bytes_needed_hint(), 2u);
  input.append("\r\n");
  ASSERT_EQ(parser.Parse(input), State::kComplete);
  EXPECT_EQ(parser.args()[0].size(), 1000000u);
}

// Requests that together reach every state of the parser.
const std::string_view kSamples[] = {
    "*3\r\n$3\r\nSET\r\n$3\r\nkey\r\n$5\r\nvalue\r\n",
    "*2\r\n$3\r\nGET\r\n$0\r\n\r\n*0\r\n*-1\r\nPING\r\n",
    "SET \"a b\\x41\" 'c\\'d' e\r\n\r\nGET k\n",
    "*1\r\n$4\r\nPING\r\nECHO \"unterminated\r\n",
    "*2\r\n$3\r\nGET\r\n:1\r\n",
    "*1\r\n$-5\r\n",
    "*abc\r\n",
    "*2\rX$1\r\na??$1\r\nbYZ",
    "*1\r\n$3\r\na\0b\r\n"sv,
    "PING\r\nGET a\0b\r\n"sv,
};

TEST(RequestParserTest, EverySplitPointGivesTheSameResult) {
  for (std::string_view sample : kSamples) {
    const Outcome whole = ParseWhole(sample);
    for (size_t split = 0; split <= sample.size(); ++split) {
      EXPECT_EQ(ParseInPieces(sample, {split}), whole) << "split at " << split << " of " << sample;
    }
    EXPECT_EQ(ParseInPieces(sample, std::vector<size_t>(sample.size(), 1)), whole) << sample;
  }
}

TEST(RequestParserTest, EverySplitPointGivesTheSameResultNearLimits) {
  ParserLimits limits;
  limits.inline_bytes_max = 6;
  limits.bulk_bytes_max = 5;
  limits.multibulk_args_max = 3;
  const char* const samples[] = {
      "abcdef\nabcdefg\n",
      "abcd\r\nabcde\r\n",
      "*3\r\n$5\r\nabcde\r\n$0\r\n\r\n$1\r\nx\r\n",
      "*000003\r\n",
      "*1\r\n$00005\r\nabcde\r\n*1\r\n$000005\r\n",
      "*4\r\n",
      "*1\r\n$6\r\n",
  };
  for (std::string_view sample : samples) {
    const Outcome whole = ParseWhole(sample, limits);
    for (size_t split = 0; split <= sample.size(); ++split) {
      EXPECT_EQ(ParseInPieces(sample, {split}, limits), whole) << split << " " << sample;
    }
    EXPECT_EQ(ParseInPieces(sample, std::vector<size_t>(sample.size(), 1), limits), whole)
        << sample;
  }
}

TEST(RequestParserTest, MillionArgumentsInSmallReadsTakeLinearTime) {
  constexpr size_t kArgs = 1000000;
  std::string input = "*" + std::to_string(kArgs + 1) + "\r\n$4\r\nMSET\r\n";
  for (size_t i = 0; i < kArgs; ++i) {
    const std::string arg = std::to_string(i);
    input += "$" + std::to_string(arg.size()) + "\r\n" + arg + "\r\n";
  }
  const auto start = std::chrono::steady_clock::now();
  RequestParser parser;
  std::string buffer;
  State state = State::kIncomplete;
  for (size_t offset = 0; offset < input.size() && state == State::kIncomplete; offset += 4096) {
    buffer.append(std::string_view(input).substr(offset, 4096));
    state = parser.Parse(buffer);
  }
  const auto elapsed = std::chrono::steady_clock::now() - start;
  ASSERT_EQ(state, State::kComplete);
  EXPECT_EQ(parser.consumed(), input.size());
  ASSERT_EQ(parser.args().size(), kArgs + 1);
  EXPECT_EQ(parser.args()[0], "MSET");
  EXPECT_EQ(parser.args()[kArgs], std::to_string(kArgs - 1));
  // Linear work is well under a second even under sanitizers; rescanning from the start on
  // each of the ~2300 reads would take minutes.
  EXPECT_LT(elapsed, std::chrono::seconds(20));
}

}  // namespace
}  // namespace weft::resp
