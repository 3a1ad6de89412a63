// Command semantics through the command table, without sockets: a ManualClock makes expiry
// exact, and replies are compared byte for byte in RESP2.

#include <set>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "weft/base/clock.h"
#include "weft/server/command_table.h"
#include "weft/server/server_state.h"

namespace weft::server {
namespace {

class CommandsTest : public ::testing::Test {
 protected:
  CommandsTest()
      : state_(MakeConfig(), clock_, 7), session_(1, "127.0.0.1:1", "127.0.0.1:2", 5, 0) {}

  static ServerConfig MakeConfig() {
    ServerConfig config;
    config.regions = {{"default", true}, {"second", true}};
    config.shard_count = 16;
    return config;
  }

  // Runs one command and returns its raw RESP reply.
  std::string Run(std::vector<std::string> words) {
    std::vector<std::string_view> args(words.begin(), words.end());
    std::string out;
    resp::ReplyWriter reply(&out, session_.protocol());
    GlobalCommandTable().Execute(state_, session_, reply, args);
    return out;
  }

  ManualClock clock_;
  ServerState state_;
  Session session_;
};

TEST_F(CommandsTest, DebugReplicationHooksNeedTheFlagAndACluster) {
  EXPECT_EQ(Run({"DEBUG", "HOLD-PHASE", "image", "ON"}),
            "-ERR DEBUG replication hooks are not allowed: start weftd with "
            "--enable-debug-command\r\n");
  EXPECT_EQ(Run({"DEBUG", "EVENTS", "k"}).substr(0, 40),
            "-ERR DEBUG replication hooks are not all");
  EXPECT_EQ(Run({"DEBUG", "NO-SUCH-THING"}).substr(0, 40),
            "-ERR unknown subcommand or wrong number ");
}

TEST_F(CommandsTest, SetGetAndOptions) {
  EXPECT_EQ(Run({"SET", "k", "v"}), "+OK\r\n");
  EXPECT_EQ(Run({"get", "k"}), "$1\r\nv\r\n");
  EXPECT_EQ(Run({"SET", "k", "w", "NX"}), "$-1\r\n");
  EXPECT_EQ(Run({"SET", "k", "w", "XX", "GET"}), "$1\r\nv\r\n");
  EXPECT_EQ(Run({"SET", "missing", "w", "XX"}), "$-1\r\n");
  EXPECT_EQ(Run({"SET", "k", "w", "NX", "XX"}), "-ERR syntax error\r\n");
  EXPECT_EQ(Run({"SET", "k", "w", "EX", "0"}), "-ERR invalid expire time in 'set' command\r\n");
  EXPECT_EQ(Run({"SET", "k", "w", "EX", "x"}), "-ERR value is not an integer or out of range\r\n");
  EXPECT_EQ(Run({"SET", "k", "w", "EX", "10", "KEEPTTL"}), "-ERR syntax error\r\n");
}

TEST_F(CommandsTest, ExpiryFollowsTheClock) {
  Run({"SET", "k", "v", "PX", "1500"});
  EXPECT_EQ(Run({"PTTL", "k"}), ":1500\r\n");
  EXPECT_EQ(Run({"TTL", "k"}), ":2\r\n");  // Redis rounds (1500 + 500) / 1000
  clock_.AdvanceMs(1499);
  EXPECT_EQ(Run({"GET", "k"}), "$1\r\nv\r\n");
  clock_.AdvanceMs(1);
  EXPECT_EQ(Run({"GET", "k"}), "$-1\r\n");
  EXPECT_EQ(Run({"TTL", "k"}), ":-2\r\n");
}

TEST_F(CommandsTest, KeepTtlAndCountersKeepTheExpiry) {
  Run({"SET", "k", "1", "EX", "100"});
  Run({"INCR", "k"});
  EXPECT_EQ(Run({"TTL", "k"}), ":100\r\n");
  Run({"SET", "k", "5", "KEEPTTL"});
  EXPECT_EQ(Run({"TTL", "k"}), ":100\r\n");
  Run({"SET", "k", "5"});
  EXPECT_EQ(Run({"TTL", "k"}), ":-1\r\n");
}

TEST_F(CommandsTest, ExpireFlags) {
  Run({"SET", "k", "v"});
  EXPECT_EQ(Run({"EXPIRE", "k", "100", "XX"}), ":0\r\n");
  EXPECT_EQ(Run({"EXPIRE", "k", "100", "NX"}), ":1\r\n");
  EXPECT_EQ(Run({"EXPIRE", "k", "50", "GT"}), ":0\r\n");
  EXPECT_EQ(Run({"EXPIRE", "k", "200", "GT"}), ":1\r\n");
  EXPECT_EQ(Run({"EXPIRE", "k", "300", "LT"}), ":0\r\n");
  EXPECT_EQ(Run({"EXPIRE", "k", "10", "NX", "XX"}),
            "-ERR NX and XX, GT or LT options at the same time are not compatible\r\n");
  EXPECT_EQ(Run({"EXPIRE", "k", "10", "GT", "LT"}),
            "-ERR GT and LT options at the same time are not compatible\r\n");
  EXPECT_EQ(Run({"EXPIRE", "k", "10", "BAD"}), "-ERR Unsupported option BAD\r\n");
  EXPECT_EQ(Run({"EXPIRE", "k", "-1"}), ":1\r\n");
  EXPECT_EQ(Run({"EXISTS", "k"}), ":0\r\n");
  // The amount is checked before the key is looked up, as in Redis.
  EXPECT_EQ(Run({"EXPIRE", "k", "9223372036854775807"}),
            "-ERR invalid expire time in 'expire' command\r\n");
  Run({"SET", "k", "v"});
  EXPECT_EQ(Run({"EXPIRE", "k", "9223372036854775807"}),
            "-ERR invalid expire time in 'expire' command\r\n");
}

TEST_F(CommandsTest, IncrementErrors) {
  Run({"SET", "n", "9223372036854775807"});
  EXPECT_EQ(Run({"INCR", "n"}), "-ERR increment or decrement would overflow\r\n");
  Run({"SET", "s", "abc"});
  EXPECT_EQ(Run({"INCR", "s"}), "-ERR value is not an integer or out of range\r\n");
  Run({"SET", "lead", "01"});
  EXPECT_EQ(Run({"INCR", "lead"}), "-ERR value is not an integer or out of range\r\n");
  EXPECT_EQ(Run({"INCRBYFLOAT", "f", "10.5"}), "$4\r\n10.5\r\n");
  EXPECT_EQ(Run({"INCRBYFLOAT", "f", "0.1"}), "$4\r\n10.6\r\n");
  EXPECT_EQ(Run({"INCRBYFLOAT", "f", "x"}), "-ERR value is not a valid float\r\n");
  EXPECT_EQ(Run({"DECRBY", "n2", "-9223372036854775808"}), "-ERR decrement would overflow\r\n");
}

TEST_F(CommandsTest, RangesAndAppend) {
  EXPECT_EQ(Run({"APPEND", "a", "Hello"}), ":5\r\n");
  EXPECT_EQ(Run({"APPEND", "a", " World"}), ":11\r\n");
  EXPECT_EQ(Run({"GETRANGE", "a", "0", "4"}), "$5\r\nHello\r\n");
  EXPECT_EQ(Run({"GETRANGE", "a", "-5", "-1"}), "$5\r\nWorld\r\n");
  EXPECT_EQ(Run({"GETRANGE", "a", "5", "1"}), "$0\r\n\r\n");
  EXPECT_EQ(Run({"SETRANGE", "b", "3", "xy"}), ":5\r\n");
  EXPECT_EQ(Run({"GET", "b"}), std::string("$5\r\n\0\0\0xy\r\n", 11));
  EXPECT_EQ(Run({"SETRANGE", "b", "-1", "xy"}), "-ERR offset is out of range\r\n");
  EXPECT_EQ(Run({"SETRANGE", "empty", "0", ""}), ":0\r\n");
  EXPECT_EQ(Run({"EXISTS", "empty"}), ":0\r\n");
}

TEST_F(CommandsTest, MultiKeyCommands) {
  EXPECT_EQ(Run({"MSET", "a", "1", "b", "2"}), "+OK\r\n");
  EXPECT_EQ(Run({"MGET", "a", "b", "c"}), "*3\r\n$1\r\n1\r\n$1\r\n2\r\n$-1\r\n");
  EXPECT_EQ(Run({"MSETNX", "c", "3", "a", "9"}), ":0\r\n");
  EXPECT_EQ(Run({"EXISTS", "c"}), ":0\r\n");
  EXPECT_EQ(Run({"MSETNX", "c", "3", "d", "4"}), ":1\r\n");
  EXPECT_EQ(Run({"MSET", "a"}), "-ERR wrong number of arguments for 'mset' command\r\n");
  EXPECT_EQ(Run({"EXISTS", "a", "a", "zz"}), ":2\r\n");
  EXPECT_EQ(Run({"DEL", "a", "a", "b", "zz"}), ":2\r\n");
  EXPECT_EQ(Run({"DBSIZE"}), ":2\r\n");
}

TEST_F(CommandsTest, RenameMovesValueAndTtl) {
  EXPECT_EQ(Run({"RENAME", "none", "x"}), "-ERR no such key\r\n");
  Run({"SET", "src", "v", "EX", "100"});
  EXPECT_EQ(Run({"RENAME", "src", "dst"}), "+OK\r\n");
  EXPECT_EQ(Run({"GET", "dst"}), "$1\r\nv\r\n");
  EXPECT_EQ(Run({"TTL", "dst"}), ":100\r\n");
  EXPECT_EQ(Run({"EXISTS", "src"}), ":0\r\n");
  Run({"SET", "other", "o"});
  EXPECT_EQ(Run({"RENAMENX", "dst", "other"}), ":0\r\n");
}

TEST_F(CommandsTest, ScanReturnsEveryKeyOnce) {
  for (int i = 0; i < 500; ++i)
    Run({"SET", "key:" + std::to_string(i), "v"});
  Run({"SET", "other", "v"});
  std::set<std::string> seen;
  std::string cursor = "0";
  int calls = 0;
  do {
    const std::string reply = Run({"SCAN", cursor, "MATCH", "key:*", "COUNT", "50"});
    // *2\r\n$<n>\r\n<cursor>\r\n*<m>\r\n($<len>\r\n<key>\r\n)*
    size_t pos = reply.find("\r\n", 4) + 2;
    const size_t cursor_end = reply.find("\r\n", pos);
    cursor = reply.substr(pos, cursor_end - pos);
    pos = reply.find("\r\n", cursor_end + 2) + 2;
    while (pos < reply.size()) {
      const size_t header_end = reply.find("\r\n", pos);
      const size_t length = std::stoul(reply.substr(pos + 1, header_end - pos - 1));
      seen.insert(reply.substr(header_end + 2, length));
      pos = header_end + 2 + length + 2;
    }
    ASSERT_LT(++calls, 10000);
  } while (cursor != "0");
  EXPECT_EQ(seen.size(), 500u);
  EXPECT_EQ(seen.count("other"), 0u);
}

TEST_F(CommandsTest, SelectChoosesARegion) {
  Run({"SET", "k", "zero"});
  EXPECT_EQ(Run({"SELECT", "1"}), "+OK\r\n");
  EXPECT_EQ(Run({"GET", "k"}), "$-1\r\n");
  EXPECT_EQ(Run({"SELECT", "2"}), "-ERR DB index is out of range\r\n");
  EXPECT_EQ(Run({"SELECT", "0"}), "+OK\r\n");
  EXPECT_EQ(Run({"GET", "k"}), "$4\r\nzero\r\n");
}

TEST_F(CommandsTest, UnknownCommandAndArity) {
  EXPECT_EQ(Run({"FOO", "a", "b"}),
            "-ERR unknown command 'FOO', with args beginning with: 'a' 'b' \r\n");
  EXPECT_EQ(Run({"GET"}), "-ERR wrong number of arguments for 'get' command\r\n");
  EXPECT_EQ(Run({"CLIENT", "SETNAME"}),
            "-ERR wrong number of arguments for 'client|setname' command\r\n");
}

TEST_F(CommandsTest, AuthGatesCommands) {
  ASSERT_TRUE(state_.settings().Set("requirepass", "secret").ok());
  EXPECT_EQ(Run({"GET", "k"}), "-NOAUTH Authentication required.\r\n");
  EXPECT_EQ(Run({"AUTH", "wrong"}),
            "-WRONGPASS invalid username-password pair or user is disabled.\r\n");
  EXPECT_EQ(Run({"AUTH", "secret"}), "+OK\r\n");
  EXPECT_EQ(Run({"GET", "k"}), "$-1\r\n");
}

TEST_F(CommandsTest, HelloSwitchesToResp3) {
  const std::string reply = Run({"HELLO", "3"});
  EXPECT_EQ(reply.substr(0, 4), "%7\r\n");
  EXPECT_EQ(session_.protocol(), 3);
  EXPECT_EQ(Run({"GET", "missing"}), "_\r\n");
  EXPECT_EQ(Run({"HELLO", "4"}), "-NOPROTO unsupported protocol version\r\n");
}

TEST_F(CommandsTest, DigestChangesWithContents) {
  Run({"SELECT", "0"});
  Run({"SET", "a", "1"});
  Run({"SET", "b", "2"});
  const std::string first = Run({"WEFT.DIGEST"});
  Run({"FLUSHDB"});
  EXPECT_NE(Run({"WEFT.DIGEST"}), first);
}

TEST_F(CommandsTest, RandomKeyReturnsExistingKeys) {
  EXPECT_EQ(Run({"RANDOMKEY"}), "$-1\r\n");
  Run({"SET", "only", "v"});
  for (int i = 0; i < 20; ++i)
    EXPECT_EQ(Run({"RANDOMKEY"}), "$4\r\nonly\r\n");
  Run({"SET", "other", "v"});
  std::set<std::string> seen;
  for (int i = 0; i < 200; ++i)
    seen.insert(Run({"RANDOMKEY"}));
  EXPECT_EQ(seen.size(), 2u);
  Run({"DEL", "only", "other"});
  EXPECT_EQ(Run({"RANDOMKEY"}), "$-1\r\n");
}

TEST_F(CommandsTest, TickClosesClientsIdleLongerThanTimeout) {
  auto idle = std::make_shared<Session>(2, "127.0.0.1:3", "127.0.0.1:2", 6, clock_.NowUnixMs());
  bool closed = false;
  idle->set_closer([&closed] { closed = true; });
  state_.clients().Add(idle);
  state_.Tick();
  EXPECT_FALSE(closed);  // timeout 0: never
  ASSERT_TRUE(state_.settings().Set("timeout", "2").ok());
  clock_.AdvanceMs(2000);
  state_.Tick();
  EXPECT_FALSE(closed);
  clock_.AdvanceMs(1);
  state_.Tick();
  EXPECT_TRUE(closed);
}

}  // namespace
}  // namespace weft::server
