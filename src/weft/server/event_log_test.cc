#include "weft/server/event_log.h"

#include <gtest/gtest.h>

namespace weft::server {
namespace {

replication::ChangeEvent Event(std::string_view key, std::optional<std::string_view> old_value,
                               std::optional<std::string_view> new_value, uint64_t stamp) {
  return {"default", key, old_value, new_value, storage::Version{stamp, 7, stamp}};
}

TEST(EventLogTest, KeepsEachKeysEventsInDeliveryOrder) {
  EventLog log(10);
  log.OnChange(Event("a", std::nullopt, "1", 1));
  log.OnChange(Event("b", "x", std::nullopt, 2));
  log.OnChange(Event("a", "1", "2", 3));
  const std::vector<RecordedEvent> a = log.EventsOf("a");
  ASSERT_EQ(a.size(), 2u);
  EXPECT_EQ(a[0].old_value, std::nullopt);
  EXPECT_EQ(a[0].new_value, "1");
  EXPECT_EQ(a[1].old_value, "1");
  EXPECT_EQ(a[1].version.stamp, 3u);
  const std::vector<RecordedEvent> b = log.EventsOf("b");
  ASSERT_EQ(b.size(), 1u);
  EXPECT_EQ(b[0].new_value, std::nullopt);
  EXPECT_TRUE(log.EventsOf("c").empty());
  EXPECT_EQ(log.recorded(), 3u);
  EXPECT_EQ(log.dropped(), 0u);
}

TEST(EventLogTest, CountsWhatItHasNoRoomFor) {
  EventLog log(2);
  for (uint64_t i = 1; i <= 5; ++i) {
    log.OnChange(Event("k", std::nullopt, "v", i));
  }
  EXPECT_EQ(log.recorded(), 2u);
  EXPECT_EQ(log.dropped(), 3u);
  EXPECT_EQ(log.EventsOf("k").size(), 2u);
}

}  // namespace
}  // namespace weft::server
