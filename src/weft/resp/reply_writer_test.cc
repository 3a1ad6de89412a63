#include "weft/resp/reply_writer.h"

#include <cmath>
#include <cstdio>
#include <limits>
#include <string>

#include <gtest/gtest.h>

namespace weft::resp {
namespace {

using std::string_literals::operator""s;

// Runs `write` against a fresh writer in the given protocol and returns the bytes it wrote.
template <typename Write>
std::string Written(int protocol, Write write) {
  std::string out;
  ReplyWriter writer(&out, protocol);
  write(writer);
  return out;
}

// The same bytes in both protocols.
template <typename Write>
void ExpectBoth(const std::string& expected, Write write) {
  EXPECT_EQ(Written(2, write), expected);
  EXPECT_EQ(Written(3, write), expected);
}

TEST(ReplyWriterTest, SimpleStringAndOk) {
  ExpectBoth("+PONG\r\n", [](ReplyWriter& w) { w.SimpleString("PONG"); });
  ExpectBoth("+\r\n", [](ReplyWriter& w) { w.SimpleString(""); });
  ExpectBoth("+a  b\r\n", [](ReplyWriter& w) { w.SimpleString("a\r\nb"); });
  ExpectBoth("+OK\r\n", [](ReplyWriter& w) { w.Ok(); });
}

TEST(ReplyWriterTest, ErrorReplacesLineBreaks) {
  ExpectBoth("-ERR syntax error\r\n", [](ReplyWriter& w) { w.Error("ERR syntax error"); });
  ExpectBoth("-WRONGTYPE Operation against a key holding the wrong kind of value\r\n",
             [](ReplyWriter& w) {
               w.Error("WRONGTYPE Operation against a key holding the wrong kind of value");
             });
  ExpectBoth("-ERR Protocol error: expected '$', got ' '\r\n",
             [](ReplyWriter& w) { w.Error("ERR Protocol error: expected '$', got '\r'"); });
  ExpectBoth("-ERR a  b \r\n", [](ReplyWriter& w) { w.Error("ERR a\r\nb\n"); });
}

TEST(ReplyWriterTest, Integer) {
  ExpectBoth(":0\r\n", [](ReplyWriter& w) { w.Integer(0); });
  ExpectBoth(":1\r\n", [](ReplyWriter& w) { w.Integer(1); });
  ExpectBoth(":-1\r\n", [](ReplyWriter& w) { w.Integer(-1); });
  ExpectBoth(":9\r\n:10\r\n:99\r\n:100\r\n:101\r\n", [](ReplyWriter& w) {
    for (int64_t v : {9, 10, 99, 100, 101})
      w.Integer(v);
  });
  ExpectBoth(":1234567890\r\n", [](ReplyWriter& w) { w.Integer(1234567890); });
  ExpectBoth(":9223372036854775807\r\n",
             [](ReplyWriter& w) { w.Integer(std::numeric_limits<int64_t>::max()); });
  ExpectBoth(":-9223372036854775808\r\n",
             [](ReplyWriter& w) { w.Integer(std::numeric_limits<int64_t>::min()); });
  // Every power of ten and its neighbours, against the C library.
  int64_t power = 1;
  for (int digits = 1; digits <= 18; ++digits, power *= 10) {
    for (int64_t v : {power - 1, power, power + 1, -power, -(power - 1), -(power + 1)}) {
      char expected[32];
      std::snprintf(expected, sizeof(expected), ":%lld\r\n", static_cast<long long>(v));
      ExpectBoth(expected, [v](ReplyWriter& w) { w.Integer(v); });
    }
  }
}

TEST(ReplyWriterTest, Bulk) {
  ExpectBoth("$5\r\nhello\r\n", [](ReplyWriter& w) { w.Bulk("hello"); });
  ExpectBoth("$0\r\n\r\n", [](ReplyWriter& w) { w.Bulk(""); });
  ExpectBoth("$4\r\na\0\r\n\r\n"s, [](ReplyWriter& w) { w.Bulk("a\0\r\n"s); });
  const std::string big(12345, 'x');
  ExpectBoth("$12345\r\n" + big + "\r\n", [&big](ReplyWriter& w) { w.Bulk(big); });
}

TEST(ReplyWriterTest, Nulls) {
  EXPECT_EQ(Written(2, [](ReplyWriter& w) { w.Null(); }), "$-1\r\n");
  EXPECT_EQ(Written(3, [](ReplyWriter& w) { w.Null(); }), "_\r\n");
  EXPECT_EQ(Written(2, [](ReplyWriter& w) { w.NullArray(); }), "*-1\r\n");
  EXPECT_EQ(Written(3, [](ReplyWriter& w) { w.NullArray(); }), "_\r\n");
}

TEST(ReplyWriterTest, AggregateHeaders) {
  ExpectBoth("*0\r\n", [](ReplyWriter& w) { w.ArrayHeader(0); });
  ExpectBoth("*3\r\n", [](ReplyWriter& w) { w.ArrayHeader(3); });
  ExpectBoth("*1000000\r\n", [](ReplyWriter& w) { w.ArrayHeader(1000000); });

  EXPECT_EQ(Written(2, [](ReplyWriter& w) { w.MapHeader(0); }), "*0\r\n");
  EXPECT_EQ(Written(2, [](ReplyWriter& w) { w.MapHeader(7); }), "*14\r\n");
  EXPECT_EQ(Written(3, [](ReplyWriter& w) { w.MapHeader(7); }), "%7\r\n");

  EXPECT_EQ(Written(2, [](ReplyWriter& w) { w.SetHeader(5); }), "*5\r\n");
  EXPECT_EQ(Written(3, [](ReplyWriter& w) { w.SetHeader(5); }), "~5\r\n");

  EXPECT_EQ(Written(2, [](ReplyWriter& w) { w.PushHeader(3); }), "*3\r\n");
  EXPECT_EQ(Written(3, [](ReplyWriter& w) { w.PushHeader(3); }), ">3\r\n");
}

TEST(ReplyWriterTest, Double) {
  EXPECT_EQ(Written(2, [](ReplyWriter& w) { w.Double(1.5); }), "$3\r\n1.5\r\n");
  EXPECT_EQ(Written(3, [](ReplyWriter& w) { w.Double(1.5); }), ",1.5\r\n");
  // Redis 7.0.15 formats with "%.17g", so 0.1 shows its binary expansion.
  EXPECT_EQ(Written(2, [](ReplyWriter& w) { w.Double(0.1); }), "$19\r\n0.10000000000000001\r\n");
  EXPECT_EQ(Written(3, [](ReplyWriter& w) { w.Double(0.1); }), ",0.10000000000000001\r\n");
  EXPECT_EQ(Written(3, [](ReplyWriter& w) { w.Double(0); }), ",0\r\n");
  EXPECT_EQ(Written(3, [](ReplyWriter& w) { w.Double(-0.0); }), ",-0\r\n");
  EXPECT_EQ(Written(3, [](ReplyWriter& w) { w.Double(1e100); }), ",1e+100\r\n");
  EXPECT_EQ(Written(3, [](ReplyWriter& w) { w.Double(-2.5e-300); }), ",-2.5e-300\r\n");

  const double inf = std::numeric_limits<double>::infinity();
  EXPECT_EQ(Written(2, [inf](ReplyWriter& w) { w.Double(inf); }), "$3\r\ninf\r\n");
  EXPECT_EQ(Written(2, [inf](ReplyWriter& w) { w.Double(-inf); }), "$4\r\n-inf\r\n");
  EXPECT_EQ(Written(3, [inf](ReplyWriter& w) { w.Double(inf); }), ",inf\r\n");
  EXPECT_EQ(Written(3, [inf](ReplyWriter& w) { w.Double(-inf); }), ",-inf\r\n");
  const double nan = std::numeric_limits<double>::quiet_NaN();
  EXPECT_EQ(Written(2, [nan](ReplyWriter& w) { w.Double(nan); }), "$3\r\nnan\r\n");
  EXPECT_EQ(Written(3, [nan](ReplyWriter& w) { w.Double(nan); }), ",nan\r\n");
  EXPECT_EQ(Written(3, [nan](ReplyWriter& w) { w.Double(std::copysign(nan, -1.0)); }), ",nan\r\n");

  // Finite values match the C library's "%.17g" byte for byte.
  const double values[] = {
      1,       -1,
      3.14159, 1.0 / 3,
      2.0 / 3, 123456789012345678.0,
      1e16,    1e17,
      1e-5,    1e-4,
      5e-324,  1e21,
      1e22,    std::numeric_limits<double>::max(),
      -1e-7,   1234.5678,
      100,     0.000123,
      4.35,    std::numeric_limits<double>::min(),
  };
  for (double v : values) {
    char expected[64];
    const int length = std::snprintf(expected, sizeof(expected), "%.17g", v);
    EXPECT_EQ(Written(3, [v](ReplyWriter& w) { w.Double(v); }),
              "," + std::string(expected) + "\r\n");
    EXPECT_EQ(Written(2, [v](ReplyWriter& w) { w.Double(v); }),
              "$" + std::to_string(length) + "\r\n" + expected + "\r\n");
  }
}

TEST(ReplyWriterTest, Boolean) {
  EXPECT_EQ(Written(2, [](ReplyWriter& w) { w.Boolean(true); }), ":1\r\n");
  EXPECT_EQ(Written(2, [](ReplyWriter& w) { w.Boolean(false); }), ":0\r\n");
  EXPECT_EQ(Written(3, [](ReplyWriter& w) { w.Boolean(true); }), "#t\r\n");
  EXPECT_EQ(Written(3, [](ReplyWriter& w) { w.Boolean(false); }), "#f\r\n");
}

TEST(ReplyWriterTest, Verbatim) {
  EXPECT_EQ(Written(2, [](ReplyWriter& w) { w.Verbatim("txt", "Some string"); }),
            "$11\r\nSome string\r\n");
  EXPECT_EQ(Written(3, [](ReplyWriter& w) { w.Verbatim("txt", "Some string"); }),
            "=15\r\ntxt:Some string\r\n");
  EXPECT_EQ(Written(3, [](ReplyWriter& w) { w.Verbatim("mkd", ""); }), "=4\r\nmkd:\r\n");
  // Like Redis, the format is cut or padded to three bytes.
  EXPECT_EQ(Written(3, [](ReplyWriter& w) { w.Verbatim("md", "x"); }), "=5\r\nmd :x\r\n");
  EXPECT_EQ(Written(3, [](ReplyWriter& w) { w.Verbatim("", "x"); }), "=5\r\n   :x\r\n");
  EXPECT_EQ(Written(3, [](ReplyWriter& w) { w.Verbatim("text", "x"); }), "=5\r\ntex:x\r\n");
  EXPECT_EQ(Written(3, [](ReplyWriter& w) { w.Verbatim("txt", "a\r\nb"); }),
            "=8\r\ntxt:a\r\nb\r\n");
}

TEST(ReplyWriterTest, ProtocolSwitchAppliesToLaterReplies) {
  std::string out = "existing";
  ReplyWriter writer(&out, 2);
  EXPECT_EQ(writer.protocol(), 2);
  writer.Null();
  writer.set_protocol(3);
  EXPECT_EQ(writer.protocol(), 3);
  writer.Null();
  writer.MapHeader(1);
  writer.Bulk("k");
  writer.Boolean(true);
  EXPECT_EQ(out, "existing$-1\r\n_\r\n%1\r\n$1\r\nk\r\n#t\r\n");
}

}  // namespace
}  // namespace weft::resp
