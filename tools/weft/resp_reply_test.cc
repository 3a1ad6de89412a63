#include "tools/weft/resp_reply.h"

#include <gtest/gtest.h>

namespace weft::tools {
namespace {

// Parses `input`, expecting exactly one complete reply that uses all of it.
RespReply ParseWhole(std::string_view input) {
  size_t consumed = 0;
  StatusOr<std::optional<RespReply>> reply = ParseReply(input, &consumed);
  EXPECT_TRUE(reply.ok()) << reply.status();
  EXPECT_TRUE(reply.ok() && reply->has_value()) << input;
  EXPECT_EQ(consumed, input.size());
  return reply.ok() && reply->has_value() ? **reply : RespReply{};
}

Status ParseError(std::string_view input, const ReplyLimits& limits = {}) {
  size_t consumed = 0;
  return ParseReply(input, &consumed, limits).status();
}

TEST(RespReplyTest, ParsesEveryRespTwoType) {
  EXPECT_TRUE(ParseWhole("+OK\r\n").is_ok());
  RespReply error = ParseWhole("-LOADING weft is loading\r\n");
  EXPECT_TRUE(error.is_error());
  EXPECT_EQ(error.text, "LOADING weft is loading");
  RespReply integer = ParseWhole(":-42\r\n");
  EXPECT_EQ(integer.type, RespReply::Type::kInteger);
  EXPECT_EQ(integer.integer, -42);
  RespReply bulk = ParseWhole("$5\r\nhello\r\n");
  EXPECT_EQ(bulk.type, RespReply::Type::kBulkString);
  EXPECT_EQ(bulk.text, "hello");
  EXPECT_TRUE(ParseWhole("$-1\r\n").is_null());
  EXPECT_TRUE(ParseWhole("*-1\r\n").is_null());
  EXPECT_EQ(ParseWhole("$0\r\n\r\n").text, "");
}

TEST(RespReplyTest, BulkStringsAreBinarySafe) {
  RespReply bulk = ParseWhole(std::string_view("$6\r\na\r\n\0bc\r\n", 12));
  EXPECT_EQ(bulk.text, std::string("a\r\n\0bc", 6));
}

TEST(RespReplyTest, ParsesNestedArrays) {
  RespReply array = ParseWhole("*3\r\n:1\r\n*2\r\n$1\r\na\r\n$-1\r\n+x\r\n");
  ASSERT_EQ(array.type, RespReply::Type::kArray);
  ASSERT_EQ(array.elements.size(), 3u);
  EXPECT_EQ(array.elements[0].integer, 1);
  ASSERT_EQ(array.elements[1].elements.size(), 2u);
  EXPECT_EQ(array.elements[1].elements[0].text, "a");
  EXPECT_TRUE(array.elements[1].elements[1].is_null());
  EXPECT_EQ(array.elements[2].text, "x");
}

TEST(RespReplyTest, EveryStrictPrefixNeedsMoreBytes) {
  const std::string full = "*2\r\n$5\r\nhello\r\n*1\r\n:7\r\n";
  for (size_t length = 0; length < full.size(); ++length) {
    size_t consumed = 99;
    StatusOr<std::optional<RespReply>> reply = ParseReply(full.substr(0, length), &consumed);
    ASSERT_TRUE(reply.ok()) << length;
    EXPECT_FALSE(reply->has_value()) << length;
    EXPECT_EQ(consumed, 99u);
  }
}

TEST(RespReplyTest, StopsAfterTheFirstReply) {
  size_t consumed = 0;
  StatusOr<std::optional<RespReply>> reply = ParseReply("+OK\r\n:5\r\n", &consumed);
  ASSERT_TRUE(reply.ok() && reply->has_value());
  EXPECT_EQ(consumed, 5u);
}

TEST(RespReplyTest, RejectsMalformedReplies) {
  EXPECT_TRUE(absl::IsDataLoss(ParseError("?what\r\n")));
  EXPECT_TRUE(absl::IsDataLoss(ParseError("\r\n")));
  EXPECT_TRUE(absl::IsDataLoss(ParseError(":12a\r\n")));
  EXPECT_TRUE(absl::IsDataLoss(ParseError("$-2\r\n")));
  EXPECT_TRUE(absl::IsDataLoss(ParseError("$3\r\nabcde\r\n")));
  EXPECT_TRUE(absl::IsDataLoss(ParseError("*x\r\n")));
}

TEST(RespReplyTest, EnforcesLimits) {
  ReplyLimits limits;
  limits.bulk_bytes_max = 4;
  limits.array_elements_max = 2;
  limits.depth_max = 1;
  limits.line_bytes_max = 8;
  EXPECT_TRUE(absl::IsDataLoss(ParseError("$5\r\nhello\r\n", limits)));
  EXPECT_TRUE(absl::IsDataLoss(ParseError("*3\r\n", limits)));
  EXPECT_TRUE(absl::IsDataLoss(ParseError("*1\r\n*1\r\n*1\r\n:1\r\n", limits)));
  // Too long with or without its CRLF buffered: no unbounded wait for a line end.
  EXPECT_TRUE(absl::IsDataLoss(ParseError("+123456789\r\n", limits)));
  EXPECT_TRUE(absl::IsDataLoss(ParseError("+123456789", limits)));
}

TEST(RespReplyTest, EncodesCommandsAsMultibulk) {
  std::string out;
  AppendCommand(&out, {"SET", "k", ""});
  EXPECT_EQ(out, "*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$0\r\n\r\n");
  out.clear();
  AppendCommand(&out, std::vector<std::string>{"GET", "a\r\nb"});
  EXPECT_EQ(out, "*2\r\n$3\r\nGET\r\n$4\r\na\r\nb\r\n");
}

TEST(RespReplyTest, DebugStringIsShort) {
  EXPECT_EQ(ParseWhole("+OK\r\n").DebugString(), "+OK");
  EXPECT_EQ(ParseWhole("$-1\r\n").DebugString(), "(nil)");
  RespReply long_bulk;
  long_bulk.type = RespReply::Type::kBulkString;
  long_bulk.text = std::string(1000, 'x');
  EXPECT_LT(long_bulk.DebugString().size(), 100u);
}

}  // namespace
}  // namespace weft::tools
