#include "weft/server/config.h"

#include <fstream>
#include <string>
#include <vector>

#include <gtest/gtest.h>

namespace weft::server {
namespace {

// Runs ParseCommandLine over `words` (program name first).
StatusOr<ServerConfig> Parse(std::vector<std::string> words, int* exit_code) {
  std::vector<char*> argv;
  for (std::string& word : words)
    argv.push_back(word.data());
  return ParseCommandLine(static_cast<int>(argv.size()), argv.data(), exit_code);
}

std::string WriteFile(const std::string& name, const std::string& text) {
  const std::string path = ::testing::TempDir() + "/" + name;
  std::ofstream(path) << text;
  return path;
}

TEST(ConfigTest, DefaultsGiveOneSyncRegion) {
  int exit_code = -1;
  StatusOr<ServerConfig> config = Parse({"weftd"}, &exit_code);
  ASSERT_TRUE(config.ok()) << config.status();
  EXPECT_EQ(config->port, 6379);
  ASSERT_EQ(config->regions.size(), 1u);
  EXPECT_EQ(config->regions[0].name, "default");
  EXPECT_TRUE(config->regions[0].sync);
  EXPECT_GE(config->io_threads, 1);
}

TEST(ConfigTest, FlagsWinOverTheFile) {
  const std::string path = WriteFile("weftd.toml",
                                     "port = 7001\nname = \"from-file\"\nmaxclients = 50\n"
                                     "region = [\"orders:async\", \"users\"]\n");
  int exit_code = -1;
  StatusOr<ServerConfig> config = Parse({"weftd", "--config", path, "--port", "7002"}, &exit_code);
  ASSERT_TRUE(config.ok()) << config.status();
  EXPECT_EQ(config->port, 7002);
  EXPECT_EQ(config->name, "from-file");
  EXPECT_EQ(config->maxclients, 50);
  ASSERT_EQ(config->regions.size(), 2u);
  EXPECT_EQ(config->regions[0].name, "orders");
  EXPECT_FALSE(config->regions[0].sync);

  config = Parse({"weftd", "--config=" + path, "--region", "only"}, &exit_code);
  ASSERT_TRUE(config.ok()) << config.status();
  ASSERT_EQ(config->regions.size(), 1u);
  EXPECT_EQ(config->regions[0].name, "only");
}

TEST(ConfigTest, BadInputIsAnErrorWithAnExitCode) {
  int exit_code = -1;
  EXPECT_FALSE(Parse({"weftd", "--port", "70000"}, &exit_code).ok());
  EXPECT_NE(exit_code, 0);
  EXPECT_FALSE(Parse({"weftd", "--shards", "1000"}, &exit_code).ok());
  EXPECT_EQ(exit_code, 2);
  EXPECT_FALSE(Parse({"weftd", "--region", "r:maybe"}, &exit_code).ok());
  EXPECT_FALSE(Parse({"weftd", "--config", "/nonexistent/weftd.toml"}, &exit_code).ok());
  const std::string broken = WriteFile("broken.toml", "port = = 1\n");
  EXPECT_FALSE(Parse({"weftd", "--config", broken}, &exit_code).ok());
  EXPECT_FALSE(Parse({"weftd", "--peer-timeout", "5", "--lease-ttl", "5"}, &exit_code).ok());
  EXPECT_TRUE(Parse({"weftd", "--peer-timeout", "6", "--lease-ttl", "5"}, &exit_code).ok());
  EXPECT_FALSE(Parse({"weftd", "--peer-backlog-limit", "12"}, &exit_code).ok());
  EXPECT_FALSE(Parse({"weftd", "--peer-backlog-limit", "lots"}, &exit_code).ok());
  StatusOr<ServerConfig> backlog = Parse({"weftd", "--peer-backlog-limit", "64mb"}, &exit_code);
  ASSERT_TRUE(backlog.ok());
  EXPECT_EQ(backlog->peer_backlog_limit, int64_t{64} << 20);
  // The replication test hooks are refused unless the debug command is enabled.
  EXPECT_FALSE(Parse({"weftd", "--debug-event-log", "10"}, &exit_code).ok());
  EXPECT_FALSE(Parse({"weftd", "--debug-hold-phase", "image"}, &exit_code).ok());
  EXPECT_FALSE(
      Parse({"weftd", "--enable-debug-command", "--debug-hold-phase", "soon"}, &exit_code).ok());
  EXPECT_TRUE(
      Parse({"weftd", "--enable-debug-command", "--debug-hold-phase", "flush"}, &exit_code).ok());
  // --help is not a failure: the text comes back with exit code 0.
  StatusOr<ServerConfig> help = Parse({"weftd", "--help"}, &exit_code);
  EXPECT_FALSE(help.ok());
  EXPECT_EQ(exit_code, 0);
  EXPECT_NE(help.status().message().find("--port"), absl::string_view::npos);
}

TEST(ConfigTest, MemoryUnitsFollowRedis) {
  EXPECT_EQ(*ParseMemory("12345"), 12345);
  EXPECT_EQ(*ParseMemory("64mb"), 64LL << 20);
  EXPECT_EQ(*ParseMemory("1GB"), 1LL << 30);
  EXPECT_EQ(*ParseMemory("100k"), 100000);
  EXPECT_FALSE(ParseMemory("ten").ok());
  EXPECT_FALSE(ParseMemory("-1").ok());
}

TEST(ConfigTest, RuntimeSettingsGetAndSet) {
  RuntimeSettings settings;
  EXPECT_TRUE(settings.Set("client-output-buffer-limit", "normal 64mb 32mb 10").ok());
  EXPECT_EQ(settings.output_buffer_limit().hard_bytes, 64LL << 20);
  EXPECT_EQ(settings.output_buffer_limit().soft_seconds, 10);
  EXPECT_FALSE(settings.Set("client-output-buffer-limit", "normal 64mb").ok());
  EXPECT_FALSE(settings.Set("maxclients", "many").ok());
  EXPECT_TRUE(absl::IsNotFound(settings.Set("no-such-thing", "1")));
  std::vector<std::pair<std::string, std::string>> found;
  settings.Get("max*", &found);
  ASSERT_EQ(found.size(), 1u);
  EXPECT_EQ(found[0].first, "maxclients");
}

}  // namespace
}  // namespace weft::server
