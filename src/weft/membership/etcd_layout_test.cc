#include "weft/membership/etcd_layout.h"

#include <string>

#include "gtest/gtest.h"

#include "weft/membership/etcd_client.h"
#include "weft/membership/etcd_registry.h"

namespace weft::membership {
namespace {

TEST(EtcdLayoutTest, KeysSortByMemberIdAndPrefixEndCoversTheRegion) {
  EXPECT_EQ(etcd_layout::MemberKey("c", 0xab), "/weft/c/members/00000000000000ab");
  EXPECT_EQ(etcd_layout::RegionPrefix("c", "orders"), "/weft/c/regions/orders/");
  EXPECT_EQ(etcd_layout::RegionMemberKey("c", "orders", 1),
            "/weft/c/regions/orders/0000000000000001");
  EXPECT_LT(etcd_layout::RegionMemberKey("c", "r", 0x0f),
            etcd_layout::RegionMemberKey("c", "r", 0x10));
  const std::string prefix = etcd_layout::RegionPrefix("c", "r");
  const std::string end = etcd_layout::PrefixEnd(prefix);
  EXPECT_EQ(end, "/weft/c/regions/r0");
  EXPECT_LT(etcd_layout::RegionMemberKey("c", "r", ~uint64_t{0}), end);
  // Region "r" does not contain region "r2"'s keys... but "r/" never prefixes "r2/".
  EXPECT_NE(etcd_layout::RegionMemberKey("c", "r2", 1).substr(0, prefix.size()), prefix);
  EXPECT_EQ(etcd_layout::PrefixEnd("a\xff"), "b");
}

TEST(EtcdLayoutTest, MemberValuesRoundTrip) {
  MemberInfo info;
  info.member_id = 0x0123456789abcdefULL;
  info.name = "node \"one\"\\\n\x01";
  info.peer_address = "10.0.0.1:7000";
  info.client_address = "10.0.0.1:6379";
  const std::string value = etcd_layout::EncodeMember(info, MemberState::kInitializing);
  StatusOr<GroupMember> decoded = etcd_layout::DecodeRegionMember(value);
  ASSERT_TRUE(decoded.ok()) << decoded.status() << " " << value;
  EXPECT_EQ(decoded->info, info);
  EXPECT_EQ(decoded->state, MemberState::kInitializing);
  EXPECT_FALSE(etcd_layout::DecodeRegionMember(etcd_layout::EncodeMember(info, std::nullopt)).ok());
  EXPECT_FALSE(etcd_layout::DecodeRegionMember("not json").ok());
  EXPECT_FALSE(etcd_layout::DecodeRegionMember(R"({"state":"ACTIVE","member_id":"12"})").ok());
}

TEST(EtcdLayoutTest, MemberIdsParseStrictly) {
  EXPECT_EQ(etcd_layout::ParseMemberId("00000000000000ff"), 0xffu);
  EXPECT_EQ(etcd_layout::ParseMemberId("0000000000000000"), std::nullopt);
  EXPECT_EQ(etcd_layout::ParseMemberId("00000000000000FF"), std::nullopt);
  EXPECT_EQ(etcd_layout::ParseMemberId("ff"), std::nullopt);
  EXPECT_EQ(etcd_layout::ParseMemberId("00000000000000fg"), std::nullopt);
}

TEST(EtcdClientTest, Base64AndJsonQuote) {
  for (const std::string& bytes : {std::string(""), std::string("a"), std::string("ab"),
                                   std::string("abc"), std::string("\0\xff\x10zz", 5)}) {
    std::optional<std::string> decoded = Base64Decode(Base64Encode(bytes));
    ASSERT_TRUE(decoded.has_value());
    EXPECT_EQ(*decoded, bytes);
  }
  EXPECT_EQ(Base64Encode("/weft/"), "L3dlZnQv");
  EXPECT_EQ(Base64Decode("abc"), std::nullopt);
  EXPECT_EQ(Base64Decode("a!c="), std::nullopt);
  EXPECT_EQ(JsonQuote("a\"b\\c\nd\x01"), "\"a\\\"b\\\\c\\nd\\u0001\"");
}

TEST(EtcdClientTest, ParseEtcdUrl) {
  EXPECT_EQ(*ParseEtcdUrl("etcd://127.0.0.1:2379"), "127.0.0.1:2379");
  EXPECT_EQ(*ParseEtcdUrl("etcd://etcd.local:2379/"), "etcd.local:2379");
  EXPECT_FALSE(ParseEtcdUrl("http://127.0.0.1:2379").ok());
  EXPECT_FALSE(ParseEtcdUrl("etcd://127.0.0.1").ok());
  EXPECT_FALSE(ParseEtcdUrl("etcd://127.0.0.1:99999").ok());
  EXPECT_FALSE(ParseEtcdUrl("etcd://:2379").ok());
}

}  // namespace
}  // namespace weft::membership
