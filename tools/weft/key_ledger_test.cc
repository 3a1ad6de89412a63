#include "tools/weft/key_ledger.h"

#include <gtest/gtest.h>

namespace weft::tools {
namespace {

std::vector<KeyExpectation> Collect(const KeyLedger& ledger) {
  std::vector<KeyExpectation> all;
  ledger.ForEach("k:", 16, [&](const KeyExpectation& e) { all.push_back(e); });
  return all;
}

TEST(LoadValueTest, NamesItsWriterAndHasTheRequestedSize) {
  const std::string value = LoadValue(3, 1234, 100);
  EXPECT_EQ(value.size(), 100u);
  EXPECT_TRUE(value.starts_with("c3:n1234:"));
  EXPECT_EQ(ParseLoadValue(value), std::make_pair(3, uint64_t{1234}));
  // Never shorter than its tag, so it stays unique.
  EXPECT_EQ(LoadValue(12, 99999, 1), "c12:n99999:");
  EXPECT_NE(LoadValue(1, 2, 50), LoadValue(1, 3, 50));
  EXPECT_NE(LoadValue(1, 2, 50), LoadValue(2, 2, 50));
  EXPECT_FALSE(ParseLoadValue("hello").has_value());
  EXPECT_FALSE(ParseLoadValue("c1:x").has_value());
  EXPECT_EQ(LoadKey("p:", 42), "p:42");
}

TEST(KeyLedgerTest, ListsTheLastAcknowledgedWriteOfEveryWrittenKey) {
  KeyLedger ledger(/*connection=*/2, /*key_begin=*/10, /*key_end=*/20);
  ledger.Acknowledged(12, {1, false});
  ledger.Acknowledged(15, {2, false});
  ledger.Acknowledged(12, {3, false});
  ledger.Acknowledged(17, {4, false});
  ledger.Acknowledged(17, {5, true});  // deleted last
  const std::vector<KeyExpectation> all = Collect(ledger);
  ASSERT_EQ(all.size(), 3u);
  EXPECT_EQ(all[0].key, "k:12");
  EXPECT_EQ(all[0].value, LoadValue(2, 3, 16));
  EXPECT_EQ(all[1].key, "k:15");
  EXPECT_EQ(all[2].key, "k:17");
  EXPECT_FALSE(all[2].value.has_value());
  EXPECT_EQ(ledger.keys_in_doubt(), 0);
}

TEST(KeyLedgerTest, WritesInDoubtWidenWhatIsAccepted) {
  KeyLedger ledger(0, 0, 4);
  ledger.Acknowledged(1, {1, false});
  ledger.InDoubt(1, {2, false});
  ledger.InDoubt(2, {3, true});
  ledger.InDoubt(3, {4, false});
  const std::vector<KeyExpectation> all = Collect(ledger);
  ASSERT_EQ(all.size(), 3u);
  const KeyExpectation& one = all[0];
  EXPECT_TRUE(one.Accepts(LoadValue(0, 1, 16)));
  EXPECT_TRUE(one.Accepts(LoadValue(0, 2, 16)));
  EXPECT_FALSE(one.Accepts(std::nullopt));
  EXPECT_FALSE(one.Accepts(LoadValue(0, 3, 16)));
  // Never acknowledged: absent, or what the doubtful write left.
  const KeyExpectation& two = all[1];
  EXPECT_TRUE(two.Accepts(std::nullopt));
  EXPECT_FALSE(two.Accepts(LoadValue(0, 3, 16)));
  const KeyExpectation& three = all[2];
  EXPECT_TRUE(three.Accepts(std::nullopt));
  EXPECT_TRUE(three.Accepts(LoadValue(0, 4, 16)));
  EXPECT_EQ(ledger.keys_in_doubt(), 3);
}

TEST(KeyLedgerTest, TooManyWritesInDoubtMakeKeysUnverifiable) {
  KeyLedger ledger(0, 0, 2);
  for (uint64_t i = 1; i <= KeyLedger::kInDoubtMax; ++i)
    ledger.InDoubt(0, {i, false});
  ledger.InDoubt(1, {KeyLedger::kInDoubtMax + 1, false});
  EXPECT_EQ(ledger.keys_unverifiable(), 1);
  const std::vector<KeyExpectation> all = Collect(ledger);
  ASSERT_EQ(all.size(), 2u);
  EXPECT_FALSE(all[0].unverifiable);
  EXPECT_TRUE(all[1].unverifiable);
  EXPECT_TRUE(all[1].Accepts("anything"));
}

TEST(KeyExpectationTest, AcceptsOnlyTheAcknowledgedValueWithoutDoubt) {
  KeyExpectation expectation;
  expectation.key = "k";
  expectation.value = "v";
  EXPECT_TRUE(expectation.Accepts("v"));
  EXPECT_FALSE(expectation.Accepts("w"));
  EXPECT_FALSE(expectation.Accepts(std::nullopt));
}

}  // namespace
}  // namespace weft::tools
