#include "weft/replication/applier.h"

#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "gtest/gtest.h"

#include "weft/base/clock.h"
#include "weft/replication/change_consumer.h"
#include "weft/replication/messages.h"
#include "weft/replication/recent_changes.h"
#include "weft/storage/store.h"
#include "weft/storage/version.h"

namespace weft::replication {
namespace {

constexpr uint64_t kSelf = 1;
constexpr uint64_t kSender = 2;

// An event with its views copied out (they are valid only during OnChange).
struct SeenEvent {
  std::string key;
  std::optional<std::string> old_value;
  std::optional<std::string> new_value;
  storage::Version version;
};

class RecordingConsumer final : public ChangeConsumer {
 public:
  void OnChange(const ChangeEvent& event) override {
    EXPECT_EQ(event.region, "r");
    SeenEvent seen;
    seen.key = std::string(event.key);
    if (event.old_value) {
      seen.old_value = std::string(*event.old_value);
    }
    if (event.new_value) {
      seen.new_value = std::string(*event.new_value);
    }
    seen.version = event.version;
    events.push_back(std::move(seen));
  }

  std::vector<SeenEvent> events;
};

// What a store holds for a key, copied out.
struct Held {
  bool tombstone = false;
  std::string value;
  storage::Version version;
};

std::optional<Held> HeldIn(storage::Store& store, std::string_view key) {
  return store.WithKey(key, [&](storage::LockedKeys& keys) -> std::optional<Held> {
    const std::optional<storage::EntryView> entry = keys.FindAny(key);
    if (!entry) {
      return std::nullopt;
    }
    return Held{entry->tombstone, std::string(entry->value), entry->version};
  });
}

storage::Version At(uint64_t stamp, uint64_t origin = kSender) {
  return storage::Version{stamp, origin, stamp};
}

// A change without a pre-image (what an ACTIVE member is sent).
ChangeRecord Change(std::string_view key, std::string_view value, uint64_t stamp) {
  ChangeRecord change;
  change.post = storage::EntryView{key, value, At(stamp), 0, false};
  return change;
}
ChangeRecord Deletion(std::string_view key, uint64_t stamp) {
  ChangeRecord change;
  change.post = storage::EntryView{key, {}, At(stamp), 0, true};
  return change;
}
// The same change as a joiner receives it: with the sender's pre-image (nullopt: absent).
ChangeRecord WithPre(ChangeRecord change, std::optional<std::string_view> pre) {
  change.has_pre = true;
  change.pre_present = pre.has_value();
  change.pre_value = pre.value_or(std::string_view());
  return change;
}

class ApplierTest : public ::testing::Test {
 protected:
  // Puts `value` (or a tombstone, for nullopt) at `stamp` into `store` the way the image does.
  static void Put(storage::Store& store, std::string_view key,
                  std::optional<std::string_view> value, uint64_t stamp) {
    store.WithKey(key, [&](storage::LockedKeys& keys) {
      keys.ApplyIfNewer(
          storage::EntryView{key, value.value_or(""), At(stamp), 0, !value.has_value()});
    });
  }

  // Reconciles the whole index; returns the number of Reconcile calls.
  int ReconcileAll() {
    int calls = 0;
    uint64_t cursor = 0;
    do {
      cursor = applier_.Reconcile(cursor, 4);
      ++calls;
    } while (cursor != 0 && calls < 10'000);
    EXPECT_EQ(cursor, 0u);
    return calls;
  }

  ManualClock clock_;
  storage::Store base_{storage::StoreOptions{.shard_count = 16}, clock_};
  storage::VersionSource versions_{clock_, kSelf};
  RecordingConsumer consumer_;
  RecentChanges recent_{1024, size_t{1} << 20, 30'000};
  Applier applier_{"r", base_, versions_, &consumer_, recent_, clock_, 16};
};

TEST_F(ApplierTest, ActiveEmitsTheStoredValueAsOld) {
  Put(base_, "k", "v1", 10);
  applier_.Apply(Change("k", "v2", 20));
  applier_.Apply(Change("fresh", "v", 21));

  ASSERT_EQ(consumer_.events.size(), 2u);
  EXPECT_EQ(consumer_.events[0].key, "k");
  EXPECT_EQ(consumer_.events[0].old_value, "v1");
  EXPECT_EQ(consumer_.events[0].new_value, "v2");
  EXPECT_EQ(consumer_.events[0].version, At(20));
  EXPECT_EQ(consumer_.events[1].old_value, std::nullopt);
  EXPECT_EQ(HeldIn(base_, "k")->value, "v2");
  EXPECT_EQ(HeldIn(base_, "k")->version, At(20));
  EXPECT_GE(versions_.last_stamp(), 21u);  // the clock moved past what it saw
}

TEST_F(ApplierTest, ActiveDropsLosersAndDuplicates) {
  applier_.Apply(Change("k", "v2", 20));
  ASSERT_EQ(consumer_.events.size(), 1u);

  applier_.Apply(Change("k", "v2", 20));   // duplicate
  applier_.Apply(Change("k", "old", 15));  // loser
  ChangeRecord tie = Change("k", "tie", 20);
  tie.post.version.origin = kSender - 1;  // same stamp, lower origin: loses
  applier_.Apply(tie);

  EXPECT_EQ(consumer_.events.size(), 1u);
  EXPECT_EQ(HeldIn(base_, "k")->value, "v2");
}

TEST_F(ApplierTest, ActiveDeletionOfAnAbsentKeyMakesNoEventButKeepsTheTombstone) {
  applier_.Apply(Deletion("k", 20));
  EXPECT_TRUE(consumer_.events.empty());
  ASSERT_TRUE(HeldIn(base_, "k").has_value());
  EXPECT_TRUE(HeldIn(base_, "k")->tombstone);
  applier_.Apply(Change("k", "late", 15));  // older than the deletion
  EXPECT_TRUE(consumer_.events.empty());
}

TEST_F(ApplierTest, AnExpiryFromAClockAheadIsTakenSilently) {
  // The write lives until an hour from now on this clock; a member whose clock is ahead
  // reports its expiry (a tombstone under the write's own version). Expiry makes no event.
  ChangeRecord write = Change("k", "v", 20);
  write.post.expire_at_unix_ms = clock_.NowUnixMs() + 3'600'000;
  applier_.Apply(write);
  ASSERT_EQ(consumer_.events.size(), 1u);

  applier_.Apply(Deletion("k", 20));
  EXPECT_EQ(consumer_.events.size(), 1u);
  ASSERT_TRUE(HeldIn(base_, "k").has_value());
  EXPECT_TRUE(HeldIn(base_, "k")->tombstone);
  applier_.Apply(write);  // the write again (a repair): the expiry stands
  EXPECT_EQ(consumer_.events.size(), 1u);
  EXPECT_TRUE(HeldIn(base_, "k")->tombstone);
}

TEST_F(ApplierTest, JoiningDecidesAgainstTheIndexOnly) {
  applier_.BeginJoin();
  ASSERT_EQ(applier_.mode(), Applier::Mode::kJoining);
  ASSERT_NE(applier_.index(), nullptr);
  Put(base_, "older", "image", 10);  // image entries, older and newer than the live changes
  Put(base_, "newer", "image", 90);

  applier_.Apply(WithPre(Change("older", "live", 50), "pre-older"));
  applier_.Apply(WithPre(Change("newer", "live", 50), "pre-newer"));

  ASSERT_EQ(consumer_.events.size(), 2u);
  EXPECT_EQ(consumer_.events[0].key, "older");
  EXPECT_EQ(consumer_.events[0].old_value, "pre-older");
  EXPECT_EQ(consumer_.events[1].key, "newer");
  EXPECT_EQ(consumer_.events[1].old_value, "pre-newer");
  // Only the index is written; the base store is the image's.
  EXPECT_EQ(HeldIn(base_, "older")->value, "image");
  EXPECT_EQ(HeldIn(base_, "newer")->value, "image");
  EXPECT_EQ(HeldIn(*applier_.index(), "older")->value, "live");
  EXPECT_EQ(HeldIn(*applier_.index(), "newer")->value, "live");
  EXPECT_EQ(applier_.postimage_changes(), 2u);
}

TEST_F(ApplierTest, JoiningTakesTheOldValueFromTheIndexBeforeThePreImage) {
  applier_.BeginJoin();
  applier_.Apply(WithPre(Change("k", "v1", 20), "shipped"));
  applier_.Apply(WithPre(Change("k", "v2", 30), "stale pre-image"));
  applier_.Apply(WithPre(Change("k", "v2", 30), "v1"));    // duplicate
  applier_.Apply(WithPre(Change("k", "lost", 25), "v1"));  // loser against the index

  ASSERT_EQ(consumer_.events.size(), 2u);
  EXPECT_EQ(consumer_.events[0].old_value, "shipped");  // the index lacked the key
  EXPECT_EQ(consumer_.events[1].old_value, "v1");       // the index's last event wins
  EXPECT_EQ(consumer_.events[1].new_value, "v2");
}

TEST_F(ApplierTest, JoiningTakesAnAbsentPreImageAsAbsent) {
  applier_.BeginJoin();
  Put(base_, "k", "image", 10);
  applier_.Apply(WithPre(Change("k", "v", 20), std::nullopt));
  ASSERT_EQ(consumer_.events.size(), 1u);
  EXPECT_EQ(consumer_.events[0].old_value, std::nullopt);
  EXPECT_EQ(applier_.changes_without_pre_image(), 0u);
}

TEST_F(ApplierTest, JoiningChangeWithoutAPreImageFallsBackToTheBaseStore) {
  applier_.BeginJoin();
  Put(base_, "k", "image", 10);
  applier_.Apply(Change("k", "repaired", 20));
  ASSERT_EQ(consumer_.events.size(), 1u);
  EXPECT_EQ(consumer_.events[0].old_value, "image");
  EXPECT_EQ(applier_.changes_without_pre_image(), 1u);
}

TEST_F(ApplierTest, JoiningDeletionOfAnAbsentKeyMakesNoEventButIsRemembered) {
  applier_.BeginJoin();
  applier_.Apply(WithPre(Deletion("k", 20), std::nullopt));
  EXPECT_TRUE(consumer_.events.empty());
  const std::optional<Held> remembered = HeldIn(*applier_.index(), "k");
  ASSERT_TRUE(remembered.has_value());
  EXPECT_TRUE(remembered->tombstone);
  EXPECT_EQ(remembered->version, At(20));
  EXPECT_FALSE(HeldIn(base_, "k").has_value());

  // An older change arriving later loses to the remembered deletion.
  applier_.Apply(WithPre(Change("k", "late", 15), std::nullopt));
  EXPECT_TRUE(consumer_.events.empty());
}

TEST_F(ApplierTest, MergingWritesBothStores) {
  applier_.BeginJoin();
  applier_.BeginMerge();
  ASSERT_EQ(applier_.mode(), Applier::Mode::kMerging);
  Put(base_, "newer", "image", 90);

  applier_.Apply(WithPre(Change("k", "v", 20), "pre"));
  applier_.Apply(WithPre(Change("newer", "live", 50), "pre"));

  ASSERT_EQ(consumer_.events.size(), 2u);  // the index decides events, as while joining
  EXPECT_EQ(consumer_.events[0].old_value, "pre");
  EXPECT_EQ(HeldIn(base_, "k")->value, "v");
  EXPECT_EQ(HeldIn(*applier_.index(), "k")->value, "v");
  // The base store takes a change only if it is newer than what it holds.
  EXPECT_EQ(HeldIn(base_, "newer")->value, "image");
  EXPECT_EQ(HeldIn(*applier_.index(), "newer")->value, "live");
}

TEST_F(ApplierTest, ReconcileCopiesNewerIndexEntriesIntoTheBase) {
  applier_.BeginJoin();
  Put(base_, "stale", "image", 10);
  applier_.Apply(WithPre(Change("stale", "live", 50), "image"));
  applier_.Apply(WithPre(Change("missing", "live", 51), std::nullopt));
  applier_.Apply(WithPre(Deletion("deleted", 52), "was"));
  Put(base_, "deleted", "image", 11);
  applier_.BeginMerge();
  consumer_.events.clear();

  ReconcileAll();
  EXPECT_TRUE(consumer_.events.empty());
  EXPECT_EQ(applier_.corrections(), 0u);
  EXPECT_EQ(HeldIn(base_, "stale")->value, "live");
  EXPECT_EQ(HeldIn(base_, "missing")->value, "live");
  EXPECT_TRUE(HeldIn(base_, "deleted")->tombstone);
  EXPECT_EQ(HeldIn(base_, "deleted")->version, At(52));
}

TEST_F(ApplierTest, ReconcileLeavesIndexAndBaseAgreeingOnAnExpiry) {
  // Seed 79497838 of the simulator: a departure repair brought a write's expiry into the index
  // (the repairer's clock was ahead), the image brought the write itself into the base store.
  // Equal versions; before the fix each store kept its own, and once the base decided events
  // their old values showed a value no event had. And the other way round.
  applier_.BeginJoin();
  Put(base_, "k1", "v", 20);           // image: the write, live on this clock
  applier_.Apply(Deletion("k1", 20));  // repair (no pre-image): its expiry
  Put(base_, "k2", std::nullopt, 30);  // image: the expiry
  ChangeRecord live = WithPre(Change("k2", "w", 30), std::nullopt);
  live.post.expire_at_unix_ms = clock_.NowUnixMs() + 3'600'000;
  applier_.Apply(live);  // the write, live, made an event
  ASSERT_EQ(consumer_.events.size(), 1u);
  EXPECT_EQ(consumer_.events[0].key, "k2");

  applier_.BeginMerge();
  ReconcileAll();
  EXPECT_EQ(consumer_.events.size(), 1u);  // expiry makes no event
  for (std::string_view key : {"k1", "k2"}) {
    SCOPED_TRACE(key);
    ASSERT_TRUE(HeldIn(base_, key).has_value());
    ASSERT_TRUE(HeldIn(*applier_.index(), key).has_value());
    EXPECT_TRUE(HeldIn(base_, key)->tombstone);
    EXPECT_TRUE(HeldIn(*applier_.index(), key)->tombstone);
  }
  applier_.EndJoin();
  applier_.Apply(Change("k1", "next", 40));
  ASSERT_EQ(consumer_.events.size(), 2u);
  EXPECT_EQ(consumer_.events[1].old_value, std::nullopt);
}

TEST_F(ApplierTest, ReconcileEmitsOneCorrectionWhereTheBaseIsNewer) {
  applier_.BeginJoin();
  applier_.Apply(WithPre(Change("k", "live", 30), "pre"));
  applier_.Apply(WithPre(Change("same", "v", 40), "pre"));
  Put(base_, "k", "image", 60);  // a newer change that only the image carried
  Put(base_, "same", "v", 40);
  applier_.BeginMerge();
  consumer_.events.clear();

  ReconcileAll();
  ASSERT_EQ(consumer_.events.size(), 1u);
  EXPECT_EQ(consumer_.events[0].key, "k");
  EXPECT_EQ(consumer_.events[0].old_value, "live");
  EXPECT_EQ(consumer_.events[0].new_value, "image");
  EXPECT_EQ(consumer_.events[0].version, At(60));
  EXPECT_EQ(applier_.corrections(), 1u);
  EXPECT_EQ(HeldIn(*applier_.index(), "k")->value, "image");
  EXPECT_EQ(HeldIn(base_, "k")->value, "image");

  ReconcileAll();  // the index caught up: nothing to report twice
  EXPECT_EQ(consumer_.events.size(), 1u);
  EXPECT_EQ(applier_.corrections(), 1u);
}

TEST_F(ApplierTest, ReconcileCorrectionOfADeletionCarriesTheIndexValueAsOld) {
  applier_.BeginJoin();
  applier_.Apply(WithPre(Change("k", "live", 30), std::nullopt));
  Put(base_, "k", std::nullopt, 60);  // the image says it was deleted later
  applier_.BeginMerge();
  consumer_.events.clear();

  ReconcileAll();
  ASSERT_EQ(consumer_.events.size(), 1u);
  EXPECT_EQ(consumer_.events[0].old_value, "live");
  EXPECT_EQ(consumer_.events[0].new_value, std::nullopt);
  EXPECT_TRUE(HeldIn(*applier_.index(), "k")->tombstone);
}

TEST_F(ApplierTest, ChangesBetweenReconcileBatchesAreNeverReportedTwice) {
  applier_.BeginJoin();
  for (int i = 0; i < 8; ++i) {
    const std::string key = "k" + std::to_string(i);
    applier_.Apply(WithPre(Change(key, "live", 30), std::nullopt));
    Put(base_, key, "live", 30);  // the image agrees: nothing to correct
  }
  applier_.BeginMerge();
  consumer_.events.clear();

  // A live change to every key after every batch: each is one event, and the merge, reading
  // both stores under their locks, finds nothing to correct.
  uint64_t cursor = 0;
  uint64_t stamp = 100;
  int batches = 0;
  size_t applied = 0;
  do {
    cursor = applier_.Reconcile(cursor, 1);
    ++stamp;
    for (int i = 0; i < 8; ++i) {
      const std::string key = "k" + std::to_string(i);
      applier_.Apply(WithPre(Change(key, "v" + std::to_string(stamp), stamp), "ignored"));
      ++applied;
    }
  } while (cursor != 0 && ++batches < 10'000);

  EXPECT_EQ(applier_.corrections(), 0u);
  EXPECT_EQ(consumer_.events.size(), applied);
  // Per key, each event's old value is the previous event's new value.
  std::map<std::string, std::optional<std::string>> last;
  for (const SeenEvent& event : consumer_.events) {
    auto it = last.find(event.key);
    const std::optional<std::string> expected_old =
        it == last.end() ? std::optional<std::string>("live") : it->second;
    EXPECT_EQ(event.old_value, expected_old) << event.key;
    last[event.key] = event.new_value;
  }
  for (int i = 0; i < 8; ++i) {
    const std::string key = "k" + std::to_string(i);
    EXPECT_EQ(HeldIn(base_, key)->version, At(stamp)) << key;
  }
}

TEST_F(ApplierTest, EndJoinReturnsTheIndexReleased) {
  applier_.BeginJoin();
  storage::Store* const index = applier_.index();
  applier_.Apply(WithPre(Change("k", "live", 30), std::nullopt));
  applier_.BeginMerge();
  ReconcileAll();
  EXPECT_EQ(applier_.index_entries(), 1u);

  const std::unique_ptr<EventIndex> returned = applier_.EndJoin();
  EXPECT_EQ(&returned->store, index);
  EXPECT_TRUE(returned->released.load());
  EXPECT_EQ(HeldIn(returned->store, "k")->value, "live");
  EXPECT_EQ(applier_.mode(), Applier::Mode::kActive);
  EXPECT_EQ(applier_.index(), nullptr);
  EXPECT_EQ(applier_.index_entries(), 0u);

  // Active again: the base store decides, and the returned index is no longer written.
  applier_.Apply(Change("k", "after", 40));
  EXPECT_EQ(consumer_.events.back().old_value, "live");
  EXPECT_EQ(HeldIn(base_, "k")->value, "after");
  EXPECT_EQ(HeldIn(returned->store, "k")->value, "live");
}

TEST_F(ApplierTest, CancelJoinDropsTheIndex) {
  applier_.BeginJoin();
  applier_.Apply(WithPre(Change("k", "live", 30), std::nullopt));
  applier_.CancelJoin();
  EXPECT_EQ(applier_.mode(), Applier::Mode::kActive);
  EXPECT_EQ(applier_.index(), nullptr);
  EXPECT_FALSE(HeldIn(base_, "k").has_value());
}

}  // namespace
}  // namespace weft::replication
