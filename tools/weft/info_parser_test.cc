#include "tools/weft/info_parser.h"

#include <gtest/gtest.h>

namespace weft::tools {
namespace {

// The agreed format (DESIGN.md §8 and the tools' brief), as weftd will send it.
constexpr std::string_view kSpecExample =
    "# Replication\r\n"
    "role:member\r\n"
    "member_id:3f2a9c0d11e4b7a2\r\n"
    "member_name:m1\r\n"
    "regions:1\r\n"
    "region0:name=default,state=ACTIVE,mode=sync,phase=none,provider=,entries=0,bytes=0,"
    "rate_bps=0,eta_ms=0,postimage_keys=0,members=3,join_ms=0\r\n"
    "region0_member0:id=3f2a9c0d11e4b7a2,name=m1,state=ACTIVE,peer=127.0.0.1:7001\r\n"
    "region0_member1:id=0a1b2c3d4e5f6071,name=m2,state=INITIALIZING,peer=127.0.0.1:7002\r\n"
    "channel0:region=default,peer=m2,dir=out,lane=0,state=connected,sent=1200,acked=1195,"
    "lag=5\r\n"
    "channel1:region=default,peer=m2,dir=in,lane=0,state=connected,received=1180\r\n";

TEST(InfoParserTest, ParsesTheAgreedFormat) {
  StatusOr<ReplicationInfo> info = ParseReplicationInfo(kSpecExample);
  ASSERT_TRUE(info.ok()) << info.status();
  EXPECT_EQ(info->role, "member");
  EXPECT_EQ(info->member_id, "3f2a9c0d11e4b7a2");
  EXPECT_EQ(info->member_name, "m1");
  EXPECT_EQ(info->regions_declared, 1);
  ASSERT_EQ(info->regions.size(), 1u);
  const RegionInfo& region = info->regions[0];
  EXPECT_EQ(region.name, "default");
  EXPECT_EQ(region.state, MemberState::kActive);
  EXPECT_EQ(region.mode, "sync");
  EXPECT_EQ(region.phase, JoinPhase::kNone);
  EXPECT_FALSE(region.join_running());
  EXPECT_EQ(region.provider, "");
  EXPECT_EQ(region.member_count, 3);
  ASSERT_EQ(region.members.size(), 2u);
  EXPECT_EQ(region.members[1].name, "m2");
  EXPECT_EQ(region.members[1].id, "0a1b2c3d4e5f6071");
  EXPECT_EQ(region.members[1].state, MemberState::kInitializing);
  EXPECT_EQ(region.members[1].peer, "127.0.0.1:7002");
  ASSERT_EQ(info->channels.size(), 2u);
  const ChannelInfo& out = info->channels[0];
  EXPECT_EQ(out.region, "default");
  EXPECT_EQ(out.peer, "m2");
  EXPECT_EQ(out.direction, "out");
  EXPECT_EQ(out.lane, 0);
  EXPECT_EQ(out.state, "connected");
  EXPECT_EQ(out.sent, 1200);
  EXPECT_EQ(out.acked, 1195);
  EXPECT_EQ(out.lag, 5);
  EXPECT_FALSE(out.received.has_value());
  const ChannelInfo& in = info->channels[1];
  EXPECT_EQ(in.direction, "in");
  EXPECT_EQ(in.received, 1180);
  EXPECT_FALSE(in.sent.has_value());
  EXPECT_FALSE(info->any_join_running());
}

TEST(InfoParserTest, ReadsAJoinInProgress) {
  StatusOr<ReplicationInfo> info = ParseReplicationInfo(
      "role:member\n"
      "region0:name=orders,state=INITIALIZING,mode=async,phase=image,provider=m1,"
      "entries=1200000,bytes=134217728,rate_bps=67108864,eta_ms=1500,postimage_keys=42,"
      "members=3,join_ms=2100\n");
  ASSERT_TRUE(info.ok()) << info.status();
  const RegionInfo& region = info->regions.at(0);
  EXPECT_EQ(region.state, MemberState::kInitializing);
  EXPECT_EQ(region.phase, JoinPhase::kImage);
  EXPECT_TRUE(region.join_running());
  EXPECT_TRUE(info->any_join_running());
  EXPECT_EQ(region.provider, "m1");
  EXPECT_EQ(region.entries, 1'200'000);
  EXPECT_EQ(region.bytes, 134'217'728);
  EXPECT_EQ(region.rate_bps, 67'108'864);
  EXPECT_EQ(region.eta_ms, 1500);
  EXPECT_EQ(region.postimage_keys, 42);
  EXPECT_EQ(region.join_ms, 2100);
}

TEST(InfoParserTest, KeepsUnknownLinesAndFields) {
  StatusOr<ReplicationInfo> info = ParseReplicationInfo(
      "# Replication\r\n"
      "role:member\r\n"
      "future_thing:7\r\n"
      "line without colon\r\n"
      "region0:name=r,state=ACTIVE,phase=none,shiny=yes,flag\r\n"
      "region0_member0:id=1,name=a,state=LEAVING,peer=h:1,zone=eu\r\n"
      "region0_extra:what=ever\r\n"
      "channel0:region=r,peer=a,dir=out,lane=2,state=backoff,sent=1,acked=1,lag=0,rtt_us=80\r\n"
      "channelx:nonsense\r\n");
  ASSERT_TRUE(info.ok()) << info.status();
  const RegionInfo& region = info->regions.at(0);
  EXPECT_EQ(FindField(region.fields, "shiny"), "yes");
  EXPECT_EQ(FindField(region.fields, "flag"), "");
  EXPECT_EQ(region.members.at(0).state, MemberState::kLeaving);
  EXPECT_EQ(FindField(region.members.at(0).fields, "zone"), "eu");
  EXPECT_EQ(info->channels.at(0).lane, 2);
  EXPECT_EQ(FindField(info->channels.at(0).fields, "rtt_us"), "80");
  ASSERT_EQ(info->channels.size(), 1u);
  // Lines that look like nothing known are kept, in order, for anyone who wants them.
  ASSERT_EQ(info->other.size(), 3u);
  EXPECT_EQ(info->other[0].first, "future_thing");
  EXPECT_EQ(info->other[1].first, "region0_extra");
  EXPECT_EQ(info->other[2].first, "channelx");
}

TEST(InfoParserTest, UnknownStatesAndPhasesAndBadNumbersDoNotFail) {
  StatusOr<ReplicationInfo> info = ParseReplicationInfo(
      "role:member\n"
      "region0:name=r,state=SLEEPING,phase=teleport,entries=lots,bytes=-\n");
  ASSERT_TRUE(info.ok()) << info.status();
  const RegionInfo& region = info->regions.at(0);
  EXPECT_EQ(region.state, MemberState::kUnknown);
  EXPECT_EQ(region.state_text, "SLEEPING");
  EXPECT_EQ(region.phase, JoinPhase::kUnknown);
  // A phase this tool does not know is still a join under way: status keeps following it.
  EXPECT_TRUE(region.join_running());
  EXPECT_EQ(region.entries, 0);
  EXPECT_EQ(FindField(region.fields, "entries"), "lots");
}

TEST(InfoParserTest, FailedJoinIsNotRunning) {
  StatusOr<ReplicationInfo> info =
      ParseReplicationInfo("role:member\nregion0:name=r,state=FAILED,phase=failed\n");
  ASSERT_TRUE(info.ok());
  EXPECT_EQ(info->regions.at(0).state, MemberState::kFailed);
  EXPECT_EQ(info->regions.at(0).phase, JoinPhase::kFailed);
  EXPECT_FALSE(info->any_join_running());
}

TEST(InfoParserTest, SortsIndicesThatArriveOutOfOrder) {
  StatusOr<ReplicationInfo> info = ParseReplicationInfo(
      "role:member\n"
      "region1_member1:name=d\n"
      "region1:name=second\n"
      "region1_member0:name=c\n"
      "region0:name=first\n"
      "channel5:peer=y\n"
      "channel2:peer=x\n");
  ASSERT_TRUE(info.ok());
  ASSERT_EQ(info->regions.size(), 2u);
  EXPECT_EQ(info->regions[0].name, "first");
  EXPECT_EQ(info->regions[1].name, "second");
  ASSERT_EQ(info->regions[1].members.size(), 2u);
  EXPECT_EQ(info->regions[1].members[0].name, "c");
  EXPECT_EQ(info->regions[1].members[1].index, 1);
  ASSERT_EQ(info->channels.size(), 2u);
  EXPECT_EQ(info->channels[0].index, 2);
  EXPECT_EQ(info->channels[1].peer, "y");
}

TEST(InfoParserTest, ReadsWhatWeftdSendsToday) {
  // weftd before replication: Redis-like role, regions without members or channels.
  StatusOr<ReplicationInfo> info = ParseReplicationInfo(
      "# Replication\r\nrole:master\r\nconnected_slaves:0\r\n"
      "region0:name=default,mode=sync,state=ACTIVE,phase=none,provider=none,entries=0,"
      "bytes=0\r\n");
  ASSERT_TRUE(info.ok()) << info.status();
  EXPECT_EQ(info->role, "master");
  ASSERT_EQ(info->regions.size(), 1u);
  EXPECT_EQ(info->regions[0].provider, "none");
  EXPECT_FALSE(info->any_join_running());
  EXPECT_TRUE(info->channels.empty());
}

TEST(InfoParserTest, ReadsRedisAndSkipsOtherSections) {
  StatusOr<ReplicationInfo> info = ParseReplicationInfo(
      "# Server\r\nredis_version:7.0.15\r\nrole:confusing\r\n\r\n"
      "# Replication\r\nrole:master\r\nconnected_slaves:0\r\nmaster_repl_offset:0\r\n\r\n"
      "# Keyspace\r\ndb0:keys=1,expires=0\r\n");
  ASSERT_TRUE(info.ok()) << info.status();
  EXPECT_EQ(info->role, "master");
  EXPECT_TRUE(info->regions.empty());
  EXPECT_EQ(info->other.size(), 2u);
}

TEST(InfoParserTest, RejectsTextWithoutRole) {
  EXPECT_TRUE(absl::IsInvalidArgument(ParseReplicationInfo("").status()));
  EXPECT_TRUE(absl::IsInvalidArgument(ParseReplicationInfo("hello world\r\n").status()));
  EXPECT_TRUE(absl::IsInvalidArgument(ParseReplicationInfo("# Server\r\nrole:x\r\n").status()));
}

TEST(InfoParserTest, ParsesStateAndPhaseNamesCaseInsensitively) {
  EXPECT_EQ(ParseMemberState("active"), MemberState::kActive);
  EXPECT_EQ(ParseMemberState("Initializing"), MemberState::kInitializing);
  EXPECT_EQ(ParseMemberState(""), MemberState::kUnknown);
  EXPECT_EQ(ParseJoinPhase("STABILIZE"), JoinPhase::kStabilize);
  EXPECT_EQ(ParseJoinPhase("incorporate"), JoinPhase::kIncorporate);
  EXPECT_EQ(ParseJoinPhase("flush"), JoinPhase::kFlush);
  EXPECT_EQ(ParseJoinPhase("intent"), JoinPhase::kIntent);
}

}  // namespace
}  // namespace weft::tools
