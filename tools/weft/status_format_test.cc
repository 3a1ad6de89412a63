#include "tools/weft/status_format.h"

#include <gtest/gtest.h>

namespace weft::tools {
namespace {

ReplicationInfo Parse(std::string_view text) {
  StatusOr<ReplicationInfo> info = ParseReplicationInfo(text);
  EXPECT_TRUE(info.ok()) << info.status();
  return info.ok() ? *info : ReplicationInfo{};
}

TEST(StatusFormatTest, ShowsMemberRegionsMembersAndChannels) {
  const ReplicationInfo info = Parse(
      "role:member\nmember_id:3f2a\nmember_name:m1\nregions:1\n"
      "region0:name=default,state=ACTIVE,mode=sync,phase=none,provider=,members=2,join_ms=0\n"
      "region0_member0:id=3f2a,name=m1,state=ACTIVE,peer=127.0.0.1:7001\n"
      "region0_member1:id=0a1b,name=m2,state=INITIALIZING,peer=127.0.0.1:7002\n"
      "channel0:region=default,peer=m2,dir=out,lane=0,state=connected,sent=1200,acked=1195,"
      "lag=5\n"
      "channel1:region=default,peer=m2,dir=in,lane=0,state=connected,received=1180\n");
  EXPECT_EQ(FormatStatus(info, HostPort{"127.0.0.1", 6001}),
            "member m1 (id 3f2a) at 127.0.0.1:6001, role member\n"
            "region default: ACTIVE, mode sync, phase none, 2 members\n"
            "  NAME  ID    STATE         PEER\n"
            "  m1    3f2a  ACTIVE        127.0.0.1:7001\n"
            "  m2    0a1b  INITIALIZING  127.0.0.1:7002\n"
            "channels:\n"
            "  REGION   PEER  DIR  LANE  STATE      SENT  ACKED  LAG  RECEIVED\n"
            "  default  m2    out     0  connected  1200   1195    5         -\n"
            "  default  m2    in      0  connected     -      -    -      1180\n");
}

TEST(StatusFormatTest, ShowsWhyARegionFailed) {
  const ReplicationInfo info = Parse(
      "role:member\nmember_name:m3\n"
      "region0:name=default,state=FAILED,mode=sync,phase=none,provider=,members=2,join_ms=0\n"
      "region0_failure:this member is missing from the region's group (revision 9): its lease "
      "expired, or a member expelled it\n");
  ASSERT_EQ(info.regions.size(), 1u);
  EXPECT_EQ(info.regions[0].failure,
            "this member is missing from the region's group (revision 9): its lease expired, or a "
            "member expelled it");
  const std::string text = FormatStatus(info, HostPort{"h", 1});
  EXPECT_NE(text.find("region default: FAILED, mode sync, phase none, 2 members\n"
                      "  failed: this member is missing from the region's group (revision 9): "
                      "its lease expired, or a member expelled it\n"),
            std::string::npos)
      << text;
}

TEST(StatusFormatTest, ShowsAJoinAndItsProgress) {
  const ReplicationInfo info = Parse(
      "role:member\nmember_name:m4\n"
      "region0:name=default,state=INITIALIZING,mode=sync,phase=image,provider=m1,"
      "entries=1500000,bytes=157286400,rate_bps=52428800,eta_ms=3000,members=4,join_ms=3100\n");
  const std::string text = FormatStatus(info, HostPort{"h", 1});
  EXPECT_NE(text.find("region default: INITIALIZING, mode sync, phase image, 4 members, "
                      "provider m1, 1.50M entries, 150 MiB received, joining for 3.1s"),
            std::string::npos)
      << text;
  const ProgressState state = JoinProgress(info.regions[0]);
  EXPECT_EQ(state.done, 157'286'400);
  EXPECT_EQ(state.total, 157'286'400 + 52'428'800 * 3);  // bytes + rate * ETA
  EXPECT_EQ(FormatProgressLine(state, 8),
            "join default [####....]  50% 150 MiB/300 MiB  50.0 MiB/s  ETA 3.0s  "
            "1.50M entries, phase image, provider m1");
}

TEST(StatusFormatTest, ProgressWithoutRateHasNoTotal) {
  const ReplicationInfo info =
      Parse("role:member\nregion0:name=r,state=INITIALIZING,phase=stabilize,provider=m1\n");
  const ProgressState state = JoinProgress(info.regions[0]);
  EXPECT_EQ(state.total, 0);
  EXPECT_EQ(FormatProgressLine(state, 0), "join r 0 B  0 entries, phase stabilize, provider m1");
}

TEST(StatusFormatTest, RedisHasNoRegions) {
  const ReplicationInfo info = Parse("role:master\nconnected_slaves:0\n");
  EXPECT_EQ(FormatStatus(info, HostPort{"127.0.0.1", 6379}),
            "member (unnamed) at 127.0.0.1:6379, role master\nno regions\nchannels: none\n");
}

}  // namespace
}  // namespace weft::tools
