// RespClient against real servers (weftd from this build; redis-server when installed).

#include "tools/weft/resp_client.h"

#include <signal.h>

#include <chrono>

#include <gtest/gtest.h>

#include "tools/weft/test_server.h"

namespace weft::tools {
namespace {

TEST(HostPortTest, ParsesAndPrints) {
  StatusOr<HostPort> plain = ParseHostPort("127.0.0.1:6379");
  ASSERT_TRUE(plain.ok());
  EXPECT_EQ(plain->host, "127.0.0.1");
  EXPECT_EQ(plain->port, 6379);
  EXPECT_EQ(plain->ToString(), "127.0.0.1:6379");
  StatusOr<HostPort> v6 = ParseHostPort("[::1]:7000");
  ASSERT_TRUE(v6.ok());
  EXPECT_EQ(v6->host, "::1");
  EXPECT_EQ(v6->ToString(), "[::1]:7000");
  for (const char* bad : {"", "host", "host:", ":1", "h:0", "h:65536", "h:12x", "::1:5", "[::1]"})
    EXPECT_FALSE(ParseHostPort(bad).ok()) << bad;
  StatusOr<std::vector<HostPort>> list = ParseHostPortList("a:1,,b:2");
  ASSERT_TRUE(list.ok());
  EXPECT_EQ(list->size(), 2u);
  EXPECT_FALSE(ParseHostPortList(",").ok());
}

TEST(RespClientTest, RefusedConnectionIsUnavailable) {
  // Start and stop a server to get a port that nothing listens on.
  HostPort address;
  {
    StatusOr<std::unique_ptr<TestServer>> server =
        TestServer::Start(TestServer::Kind::kWeft, TestWeftdPath());
    ASSERT_TRUE(server.ok()) << server.status();
    address = (*server)->address();
  }
  StatusOr<std::unique_ptr<RespClient>> client = RespClient::Connect(address);
  EXPECT_TRUE(absl::IsUnavailable(client.status())) << client.status();
  EXPECT_NE(std::string(StatusMessage(client.status())).find(address.ToString()),
            std::string::npos);
}

class RespClientServerTest : public ::testing::TestWithParam<TestServer::Kind> {
 protected:
  void SetUp() override {
    const std::string binary =
        GetParam() == TestServer::Kind::kWeft ? TestWeftdPath() : TestRedisServerPath();
    if (binary.empty())
      GTEST_SKIP() << "server binary not available";
    StatusOr<std::unique_ptr<TestServer>> server = TestServer::Start(GetParam(), binary);
    ASSERT_TRUE(server.ok()) << server.status();
    server_ = std::move(*server);
  }

  std::unique_ptr<RespClient> Connect(RespClientOptions options = {}) {
    StatusOr<std::unique_ptr<RespClient>> client = RespClient::Connect(server_->address(), options);
    EXPECT_TRUE(client.ok()) << client.status();
    return client.ok() ? std::move(*client) : nullptr;
  }

  std::unique_ptr<TestServer> server_;
};

TEST_P(RespClientServerTest, CallsReturnEveryReplyType) {
  std::unique_ptr<RespClient> client = Connect();
  ASSERT_NE(client, nullptr);
  StatusOr<RespReply> reply = client->Call({"SET", "k", "v"});
  ASSERT_TRUE(reply.ok()) << reply.status();
  EXPECT_TRUE(reply->is_ok());
  reply = client->Call({"GET", "k"});
  ASSERT_TRUE(reply.ok());
  EXPECT_EQ(reply->text, "v");
  reply = client->Call({"GET", "missing"});
  ASSERT_TRUE(reply.ok());
  EXPECT_TRUE(reply->is_null());
  reply = client->Call({"INCR", "n"});
  ASSERT_TRUE(reply.ok());
  EXPECT_EQ(reply->integer, 1);
  reply = client->Call(std::vector<std::string>{"MGET", "k", "missing"});
  ASSERT_TRUE(reply.ok());
  ASSERT_EQ(reply->elements.size(), 2u);
  EXPECT_EQ(reply->elements[0].text, "v");
  // An error reply is a reply, and the connection stays usable.
  reply = client->Call({"NOSUCHCOMMAND"});
  ASSERT_TRUE(reply.ok());
  EXPECT_TRUE(reply->is_error());
  EXPECT_TRUE(reply->text.starts_with("ERR unknown command")) << reply->text;
  EXPECT_FALSE(client->broken());
  EXPECT_TRUE(client->Call({"PING"}).ok());
}

TEST_P(RespClientServerTest, LargeValuesRoundTrip) {
  std::unique_ptr<RespClient> client = Connect();
  ASSERT_NE(client, nullptr);
  std::string value(3 << 20, 'x');
  value[12345] = '\r';
  value[12346] = '\n';
  ASSERT_TRUE(client->Call({"SET", "big", value}).ok());
  StatusOr<RespReply> reply = client->Call({"GET", "big"});
  ASSERT_TRUE(reply.ok()) << reply.status();
  EXPECT_EQ(reply->text, value);
}

TEST_P(RespClientServerTest, PipelinesThousandsOfCommandsInOrder) {
  std::unique_ptr<RespClient> client = Connect();
  ASSERT_NE(client, nullptr);
  std::vector<std::vector<std::string>> commands;
  for (int i = 0; i < 5000; ++i)
    commands.push_back({"SET", "p" + std::to_string(i), std::to_string(i * 7)});
  for (int i = 0; i < 5000; ++i)
    commands.push_back({"GET", "p" + std::to_string(i)});
  StatusOr<std::vector<RespReply>> replies = client->Pipeline(commands);
  ASSERT_TRUE(replies.ok()) << replies.status();
  ASSERT_EQ(replies->size(), 10'000u);
  for (int i = 0; i < 5000; ++i) {
    ASSERT_TRUE((*replies)[i].is_ok());
    ASSERT_EQ((*replies)[5000 + i].text, std::to_string(i * 7));
  }
}

TEST_P(RespClientServerTest, PollReplyTimesOutAndStaysUsable) {
  std::unique_ptr<RespClient> client = Connect();
  ASSERT_NE(client, nullptr);
  // Nothing sent: no reply can come.
  const auto start = std::chrono::steady_clock::now();
  StatusOr<std::optional<RespReply>> reply = client->PollReply(20'000);
  EXPECT_GE(std::chrono::steady_clock::now() - start, std::chrono::milliseconds(19));
  ASSERT_TRUE(reply.ok()) << reply.status();
  EXPECT_FALSE(reply->has_value());
  EXPECT_FALSE(client->broken());
  client->Append({"PING"});
  ASSERT_TRUE(client->Flush().ok());
  reply = client->PollReply(5'000'000);
  ASSERT_TRUE(reply.ok()) << reply.status();
  ASSERT_TRUE(reply->has_value());
  EXPECT_EQ((*reply)->text, "PONG");
}

TEST_P(RespClientServerTest, CallTimesOutOnAStoppedServerAndBreaks) {
  RespClientOptions options;
  options.io_timeout_ms = 200;
  std::unique_ptr<RespClient> client = Connect(options);
  ASSERT_NE(client, nullptr);
  server_->Signal(SIGSTOP);
  const auto start = std::chrono::steady_clock::now();
  StatusOr<RespReply> reply = client->Call({"PING"});
  const auto waited = std::chrono::steady_clock::now() - start;
  server_->Signal(SIGCONT);
  EXPECT_TRUE(absl::IsDeadlineExceeded(reply.status())) << reply.status();
  EXPECT_GE(waited, std::chrono::milliseconds(190));
  EXPECT_LT(waited, std::chrono::seconds(5));
  EXPECT_TRUE(client->broken());
  EXPECT_TRUE(absl::IsFailedPrecondition(client->Call({"PING"}).status()));
}

TEST_P(RespClientServerTest, ServerClosingTheConnectionIsUnavailable) {
  std::unique_ptr<RespClient> client = Connect();
  ASSERT_NE(client, nullptr);
  StatusOr<RespReply> reply = client->Call({"QUIT"});
  ASSERT_TRUE(reply.ok()) << reply.status();
  reply = client->Call({"PING"});
  EXPECT_TRUE(absl::IsUnavailable(reply.status())) << reply.status();
  EXPECT_TRUE(client->broken());
}

std::string KindName(const ::testing::TestParamInfo<TestServer::Kind>& info) {
  return info.param == TestServer::Kind::kWeft ? "Weftd" : "Redis";
}

INSTANTIATE_TEST_SUITE_P(Servers, RespClientServerTest,
                         ::testing::Values(TestServer::Kind::kWeft, TestServer::Kind::kRedis),
                         KindName);

}  // namespace
}  // namespace weft::tools
