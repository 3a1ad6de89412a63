#include <set>

#include <gtest/gtest.h>

#include "weft/base/clock.h"
#include "weft/base/hash.h"
#include "weft/base/random.h"
#include "weft/base/status.h"

namespace weft {
namespace {

TEST(RandomTest, SameSeedSameSequence) {
  Random a(42);
  Random b(42);
  for (int i = 0; i < 1000; ++i)
    EXPECT_EQ(a.Next(), b.Next());
}

TEST(RandomTest, DifferentSeedsDiverge) {
  Random a(1);
  Random b(2);
  EXPECT_NE(a.Next(), b.Next());
}

TEST(RandomTest, UniformStaysBelowBoundAndCoversIt) {
  Random random(7);
  std::set<uint64_t> seen;
  for (int i = 0; i < 1000; ++i) {
    const uint64_t value = random.Uniform(10);
    ASSERT_LT(value, 10u);
    seen.insert(value);
  }
  EXPECT_EQ(seen.size(), 10u);
}

TEST(ClockTest, ManualClockMovesOnlyWhenTold) {
  ManualClock clock;
  const int64_t start = clock.NowUnixMs();
  EXPECT_EQ(clock.NowUnixMs(), start);
  clock.AdvanceMs(1500);
  EXPECT_EQ(clock.NowUnixMs(), start + 1500);
  EXPECT_EQ(clock.NowMonotonicUs(), (start + 1500) * 1000);
}

TEST(HashTest, SeedChangesHash) {
  EXPECT_NE(Hash64("key", 0), Hash64("key", 1));
  EXPECT_EQ(Hash64("key"), Hash64(std::string_view("key")));
}

StatusOr<int> Half(int x) {
  if (x % 2 != 0)
    return absl::InvalidArgumentError("odd");
  return x / 2;
}

Status Quarter(int x, int* out) {
  WEFT_ASSIGN_OR_RETURN(int half, Half(x));
  WEFT_ASSIGN_OR_RETURN(*out, Half(half));
  return absl::OkStatus();
}

TEST(StatusTest, MacrosPropagateErrors) {
  int out = 0;
  EXPECT_TRUE(Quarter(8, &out).ok());
  EXPECT_EQ(out, 2);
  EXPECT_EQ(Quarter(6, &out).code(), absl::StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace weft
