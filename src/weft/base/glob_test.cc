#include "weft/base/glob.h"

#include <string>

#include <gtest/gtest.h>

namespace weft {
namespace {

TEST(GlobTest, StarAndQuestionMark) {
  EXPECT_TRUE(GlobMatch("*", ""));
  EXPECT_TRUE(GlobMatch("*", "anything"));
  EXPECT_TRUE(GlobMatch("key:*", "key:1"));
  EXPECT_FALSE(GlobMatch("key:*", "kex:1"));
  EXPECT_TRUE(GlobMatch("h?llo", "hello"));
  EXPECT_FALSE(GlobMatch("h?llo", "hllo"));
  EXPECT_TRUE(GlobMatch("a*b*c", "aXXbYYc"));
  EXPECT_FALSE(GlobMatch("a*b*c", "aXXbYY"));
  EXPECT_TRUE(GlobMatch("a**", "a"));
}

TEST(GlobTest, Classes) {
  EXPECT_TRUE(GlobMatch("h[ae]llo", "hallo"));
  EXPECT_FALSE(GlobMatch("h[ae]llo", "hillo"));
  EXPECT_TRUE(GlobMatch("h[^e]llo", "hallo"));
  EXPECT_FALSE(GlobMatch("h[^e]llo", "hello"));
  EXPECT_TRUE(GlobMatch("h[a-b]llo", "hbllo"));
  EXPECT_TRUE(GlobMatch("h[b-a]llo", "hallo"));
  EXPECT_FALSE(GlobMatch("h[a-b]llo", "hcllo"));
}

TEST(GlobTest, EscapesAndCase) {
  EXPECT_TRUE(GlobMatch("a\\*b", "a*b"));
  EXPECT_FALSE(GlobMatch("a\\*b", "axb"));
  EXPECT_TRUE(GlobMatch("MAXCLIENTS", "maxclients", true));
  EXPECT_FALSE(GlobMatch("MAXCLIENTS", "maxclients", false));
}

TEST(GlobTest, BinarySafe) {
  const std::string text("a\0b", 3);
  EXPECT_TRUE(GlobMatch("a?b", text));
  EXPECT_TRUE(GlobMatch(std::string_view("a\0*", 3), text));
}

TEST(GlobTest, NestedStarsFailFast) {
  // Redis's "pattern matching long nested loops" regression: exponential without give-up.
  std::string pattern;
  for (int i = 0; i < 500; ++i)
    pattern += "a*";
  pattern += "b";
  const std::string text(5000, 'a');
  EXPECT_FALSE(GlobMatch(pattern, text));
  EXPECT_TRUE(GlobMatch("a*a*b", "aaaab"));
  EXPECT_TRUE(GlobMatch("*b*c", "xxbyyc"));
}

}  // namespace
}  // namespace weft
