#include "weft/replication/write_path.h"

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "gtest/gtest.h"

#include "weft/base/clock.h"
#include "weft/replication/change_consumer.h"
#include "weft/replication/messages.h"
#include "weft/replication/outbox.h"
#include "weft/replication/write_ticket.h"
#include "weft/storage/store.h"

namespace weft::replication {
namespace {

constexpr uint32_t kLanes = 2;

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

// A change record as it left an outbox, with its views copied out.
struct SentChange {
  uint64_t seq = 0;
  std::string key;
  std::string value;
  storage::Version version;
  bool has_pre = false;
  bool pre_present = false;
  std::string pre_value;
};

// Everything unsent in `outbox`, decoded.
std::vector<SentChange> TakeSent(Outbox& outbox) {
  std::vector<SentChange> sent;
  std::string payload;
  if (!outbox.FillPayload(&payload, size_t{1} << 20)) {
    return sent;
  }
  RecordReader reader(payload);
  Record record;
  while (true) {
    StatusOr<bool> more = reader.Next(&record);
    EXPECT_TRUE(more.ok()) << more.status();
    if (!more.ok() || !*more) {
      return sent;
    }
    EXPECT_EQ(record.kind, RecordKind::kChange);
    const ChangeRecord& change = record.change;
    sent.push_back(SentChange{record.seq, std::string(change.post.key),
                              std::string(change.post.value), change.post.version, change.has_pre,
                              change.pre_present, std::string(change.pre_value)});
  }
}

std::shared_ptr<PeerOutboxes> MakeOutboxes(uint64_t member) {
  auto outboxes = std::make_shared<PeerOutboxes>();
  outboxes->member = member;
  for (uint32_t lane = 0; lane < kLanes; ++lane) {
    outboxes->lanes.push_back(std::make_unique<Outbox>(size_t{1} << 20, /*stream_id=*/lane + 1));
  }
  return outboxes;
}

storage::EntryView Live(std::string_view key, std::string_view value, uint64_t stamp) {
  return storage::EntryView{key, value, storage::Version{stamp, /*origin=*/1, stamp}, 0, false};
}

storage::EntryView Tombstone(std::string_view key, uint64_t stamp) {
  return storage::EntryView{key, {}, storage::Version{stamp, /*origin=*/1, stamp}, 0, true};
}

// The live value `store` holds for `key` (nullopt: absent or a tombstone).
std::optional<std::string> LiveIn(storage::Store& store, std::string_view key) {
  return store.WithKey(key, [&](storage::LockedKeys& keys) -> std::optional<std::string> {
    const std::optional<std::string_view> value = LiveValue(keys.FindAny(key));
    return value ? std::optional<std::string>(*value) : std::nullopt;
  });
}

class WritePathTest : public ::testing::Test {
 protected:
  explicit WritePathTest(ReplicationMode mode = ReplicationMode::kSync)
      : path_("r", mode, kLanes, store_, &consumer_, clock_,
              [this](uint64_t epoch) { drained_.push_back(epoch); }) {}

  // One local write's three steps, the Enqueue under the key's shard lock as required.
  void Write(const storage::EntryView* before, const storage::EntryView& after,
             const std::shared_ptr<WriteTicket>* ticket = nullptr) {
    const std::shared_ptr<const RecipientSet> set = path_.Begin();
    Enqueue(*set, before, after, ticket);
    path_.End(*set);
  }
  void Enqueue(const RecipientSet& set, const storage::EntryView* before,
               const storage::EntryView& after, const std::shared_ptr<WriteTicket>* ticket) {
    store_.WithKey(after.key,
                   [&](storage::LockedKeys&) { path_.Enqueue(set, before, after, ticket); });
  }
  Outbox& LaneOf(const std::shared_ptr<PeerOutboxes>& outboxes, std::string_view key) {
    return *outboxes->lanes[path_.LaneOf(key)];
  }

  ManualClock clock_;
  storage::Store store_{storage::StoreOptions{.shard_count = 16}, clock_};
  RecordingConsumer consumer_;
  std::vector<uint64_t> drained_;
  WritePath path_;
};

class AsyncWritePathTest : public WritePathTest {
 protected:
  AsyncWritePathTest() : WritePathTest(ReplicationMode::kAsync) {}
};

TEST_F(WritePathTest, ReplaceIsNotDrainedUntilTheOlderWriteEnds) {
  ASSERT_EQ(path_.Replace({}, nullptr), 1u);
  const std::shared_ptr<const RecipientSet> old_set = path_.Begin();
  EXPECT_EQ(old_set->epoch, 1u);

  EXPECT_EQ(path_.Replace({Recipient{MakeOutboxes(2), false}}, nullptr), 2u);
  EXPECT_EQ(path_.Current()->epoch, 2u);
  EXPECT_FALSE(path_.Drained(2));
  EXPECT_TRUE(path_.Drained(1));
  EXPECT_TRUE(drained_.empty());

  path_.End(*old_set);
  EXPECT_TRUE(path_.Drained(2));
  EXPECT_EQ(drained_, std::vector<uint64_t>{2});
}

TEST_F(WritePathTest, EndOfACurrentEpochWriteReportsNoDrain) {
  path_.Replace({}, nullptr);
  const std::shared_ptr<const RecipientSet> set = path_.Begin();
  EXPECT_TRUE(path_.Drained(1));  // only writes of older epochs count
  path_.End(*set);
  EXPECT_TRUE(drained_.empty());
  EXPECT_TRUE(path_.Drained(1));
}

TEST_F(WritePathTest, DrainWaitsForEveryWriteOfTheOlderEpoch) {
  path_.Replace({}, nullptr);
  const std::shared_ptr<const RecipientSet> first = path_.Begin();
  const std::shared_ptr<const RecipientSet> second = path_.Begin();
  path_.Replace({}, nullptr);

  path_.End(*first);
  EXPECT_FALSE(path_.Drained(2));
  EXPECT_TRUE(drained_.empty());
  path_.End(*second);
  EXPECT_TRUE(path_.Drained(2));
  EXPECT_EQ(drained_, std::vector<uint64_t>{2});
}

TEST_F(WritePathTest, EpochsDrainInOrderAsTheirOlderWritesEnd) {
  path_.Replace({}, nullptr);
  const std::shared_ptr<const RecipientSet> on_epoch1 = path_.Begin();
  path_.Replace({}, nullptr);
  const std::shared_ptr<const RecipientSet> on_epoch2 = path_.Begin();
  path_.Replace({}, nullptr);
  ASSERT_EQ(path_.Current()->epoch, 3u);

  path_.End(*on_epoch1);  // epoch 2 has nothing older in flight; epoch 3 still waits
  EXPECT_TRUE(path_.Drained(2));
  EXPECT_FALSE(path_.Drained(3));
  EXPECT_EQ(drained_, std::vector<uint64_t>{2});

  path_.End(*on_epoch2);
  EXPECT_TRUE(path_.Drained(3));
  EXPECT_EQ(drained_, (std::vector<uint64_t>{2, 3}));
}

TEST_F(WritePathTest, AYoungerWriteEndingFirstDoesNotReportTheDrain) {
  path_.Replace({}, nullptr);
  const std::shared_ptr<const RecipientSet> on_epoch1 = path_.Begin();
  path_.Replace({}, nullptr);
  const std::shared_ptr<const RecipientSet> on_epoch2 = path_.Begin();
  path_.Replace({}, nullptr);

  path_.End(*on_epoch2);  // epoch 1 still has a write: nothing is drained yet
  EXPECT_TRUE(drained_.empty());
  EXPECT_FALSE(path_.Drained(2));

  path_.End(*on_epoch1);
  EXPECT_TRUE(path_.Drained(3));
  EXPECT_EQ(drained_, std::vector<uint64_t>{3});
}

TEST_F(WritePathTest, EnqueueShipsThePreImageOnlyToRecipientsThatWantIt) {
  const std::shared_ptr<PeerOutboxes> member = MakeOutboxes(2);
  const std::shared_ptr<PeerOutboxes> joiner = MakeOutboxes(3);
  path_.Replace({Recipient{member, false}, Recipient{joiner, true}}, nullptr);

  const storage::EntryView before = Live("k", "old", 10);
  Write(&before, Live("k", "new", 20));

  const std::vector<SentChange> to_member = TakeSent(LaneOf(member, "k"));
  ASSERT_EQ(to_member.size(), 1u);
  EXPECT_EQ(to_member[0].seq, 1u);
  EXPECT_EQ(to_member[0].key, "k");
  EXPECT_EQ(to_member[0].value, "new");
  EXPECT_EQ(to_member[0].version, (storage::Version{20, 1, 20}));
  EXPECT_FALSE(to_member[0].has_pre);

  const std::vector<SentChange> to_joiner = TakeSent(LaneOf(joiner, "k"));
  ASSERT_EQ(to_joiner.size(), 1u);
  EXPECT_EQ(to_joiner[0].value, "new");
  EXPECT_TRUE(to_joiner[0].has_pre);
  EXPECT_TRUE(to_joiner[0].pre_present);
  EXPECT_EQ(to_joiner[0].pre_value, "old");

  // Only the key's lane carries it.
  const uint32_t other_lane = 1 - path_.LaneOf("k");
  EXPECT_FALSE(member->lanes[other_lane]->has_unsent());
  EXPECT_FALSE(joiner->lanes[other_lane]->has_unsent());
}

TEST_F(WritePathTest, JoinerLearnsThatAKeyWasAbsentBefore) {
  const std::shared_ptr<PeerOutboxes> joiner = MakeOutboxes(3);
  path_.Replace({Recipient{joiner, true}}, nullptr);
  Write(nullptr, Live("k", "new", 20));
  const std::vector<SentChange> sent = TakeSent(LaneOf(joiner, "k"));
  ASSERT_EQ(sent.size(), 1u);
  EXPECT_TRUE(sent[0].has_pre);
  EXPECT_FALSE(sent[0].pre_present);
}

TEST_F(WritePathTest, SyncWriteTakesOneTicketCountPerRecipient) {
  const std::shared_ptr<PeerOutboxes> first = MakeOutboxes(2);
  const std::shared_ptr<PeerOutboxes> second = MakeOutboxes(3);
  path_.Replace({Recipient{first, false}, Recipient{second, true}}, nullptr);
  bool done = false;
  auto ticket = std::make_shared<WriteTicket>([&](bool) { done = true; });

  Write(nullptr, Live("k", "v", 20), &ticket);
  EXPECT_EQ(ticket->pending(), 3);  // the Arm reference and one per recipient
  EXPECT_FALSE(ticket->Arm());

  LaneOf(first, "k").Acknowledge(1);
  EXPECT_EQ(ticket->pending(), 1);
  EXPECT_FALSE(done);
  LaneOf(second, "k").Acknowledge(1);
  EXPECT_EQ(ticket->pending(), 0);
  EXPECT_TRUE(done);
}

TEST_F(AsyncWritePathTest, AsyncWriteTakesNoTicket) {
  const std::shared_ptr<PeerOutboxes> member = MakeOutboxes(2);
  path_.Replace({Recipient{member, false}}, nullptr);
  auto ticket = std::make_shared<WriteTicket>([](bool) {});

  Write(nullptr, Live("k", "v", 20), &ticket);
  EXPECT_EQ(LaneOf(member, "k").sent(), 1u);  // the change did go out
  EXPECT_EQ(ticket->pending(), 1);
  EXPECT_TRUE(ticket->Arm());
}

TEST_F(WritePathTest, EventCarriesTheBeforeValueAsOld) {
  path_.Replace({Recipient{MakeOutboxes(2), false}}, nullptr);
  const storage::EntryView before = Live("k", "old", 10);
  Write(&before, Live("k", "new", 20));
  Write(nullptr, Live("fresh", "v", 21));

  ASSERT_EQ(consumer_.events.size(), 2u);
  EXPECT_EQ(consumer_.events[0].key, "k");
  EXPECT_EQ(consumer_.events[0].old_value, "old");
  EXPECT_EQ(consumer_.events[0].new_value, "new");
  EXPECT_EQ(consumer_.events[0].version, (storage::Version{20, 1, 20}));
  EXPECT_EQ(consumer_.events[1].key, "fresh");
  EXPECT_EQ(consumer_.events[1].old_value, std::nullopt);
}

TEST_F(WritePathTest, EventsDoNotDependOnHavingRecipients) {
  const storage::EntryView before = Live("k", "old", 10);
  Write(&before, Tombstone("k", 20));
  ASSERT_EQ(consumer_.events.size(), 1u);
  EXPECT_EQ(consumer_.events[0].old_value, "old");
  EXPECT_EQ(consumer_.events[0].new_value, std::nullopt);
}

TEST_F(WritePathTest, DeletingAnAbsentKeyMakesNoEvent) {
  const std::shared_ptr<PeerOutboxes> member = MakeOutboxes(2);
  path_.Replace({Recipient{member, false}}, nullptr);
  Write(nullptr, Tombstone("k", 20));
  EXPECT_TRUE(consumer_.events.empty());
  EXPECT_EQ(LaneOf(member, "k").sent(), 1u);  // the tombstone still replicates
}

TEST_F(WritePathTest, EventIndexSuppliesTheOldValueWhenItHoldsTheKey) {
  EventIndex event_index(16, clock_);
  storage::Store& index = event_index.store;
  index.WithKey("held",
                [](storage::LockedKeys& keys) { keys.ApplyIfNewer(Live("held", "indexed", 15)); });
  index.WithKey("deleted",
                [](storage::LockedKeys& keys) { keys.ApplyIfNewer(Tombstone("deleted", 15)); });
  path_.Replace({Recipient{MakeOutboxes(2), false}}, &event_index);

  const storage::EntryView before_held = Live("held", "base", 10);
  Write(&before_held, Live("held", "new", 20));
  const storage::EntryView before_deleted = Live("deleted", "base", 10);
  Write(&before_deleted, Live("deleted", "back", 21));
  const storage::EntryView before_missing = Live("missing", "base", 10);
  Write(&before_missing, Live("missing", "new", 22));

  ASSERT_EQ(consumer_.events.size(), 3u);
  EXPECT_EQ(consumer_.events[0].old_value, "indexed");
  EXPECT_EQ(consumer_.events[1].old_value, std::nullopt);  // the index's last event deleted it
  EXPECT_EQ(consumer_.events[2].old_value, "base");        // not in the index: `before`

  // The index follows every local write, so it stays the key's last event.
  EXPECT_EQ(LiveIn(index, "held"), "new");
  EXPECT_EQ(LiveIn(index, "deleted"), "back");
  EXPECT_EQ(LiveIn(index, "missing"), "new");
}

TEST_F(WritePathTest, AReleasedIndexOutlivesTheWritesThatCouldStillReachIt) {
  auto event_index = std::make_unique<EventIndex>(16, clock_);
  event_index->store.WithKey(
      "k", [](storage::LockedKeys& keys) { keys.ApplyIfNewer(Live("k", "indexed", 15)); });
  path_.Replace({}, event_index.get());
  const std::shared_ptr<const RecipientSet> late = path_.Begin();

  // The join ends (or the member rejoins) while that write is between Begin and End.
  event_index->released.store(true);
  path_.RetireIndex(std::move(event_index), path_.Replace({}, nullptr));
  EXPECT_EQ(path_.retired_indexes(), 1u);
  path_.FreeRetiredIndexes();
  EXPECT_EQ(path_.retired_indexes(), 1u);  // `late` may still reach it

  // Released, it no longer decides: the late write's old value is the base store's.
  const storage::EntryView before = Live("k", "base", 10);
  Enqueue(*late, &before, Live("k", "new", 20), nullptr);
  path_.End(*late);
  ASSERT_EQ(consumer_.events.size(), 1u);
  EXPECT_EQ(consumer_.events[0].old_value, "base");
  path_.FreeRetiredIndexes();
  EXPECT_EQ(path_.retired_indexes(), 0u);

  // With no write in flight, a retired index goes at once.
  auto idle = std::make_unique<EventIndex>(16, clock_);
  idle->released.store(true);
  path_.RetireIndex(std::move(idle), path_.Replace({}, nullptr));
  EXPECT_EQ(path_.retired_indexes(), 0u);
}

TEST_F(WritePathTest, ResendMakesNoEventAndShipsThePreImageOnlyToJoiners) {
  const std::shared_ptr<PeerOutboxes> member = MakeOutboxes(2);
  const std::shared_ptr<PeerOutboxes> joiner = MakeOutboxes(3);
  path_.Replace({Recipient{member, false}, Recipient{joiner, true}}, nullptr);
  const std::shared_ptr<const RecipientSet> set = path_.Current();
  const storage::EntryView entry = Live("k", "repaired", 30);
  store_.WithKey(
      "k", [&](storage::LockedKeys&) { path_.Resend(*set, entry, /*pre_known=*/true, "before"); });

  EXPECT_TRUE(consumer_.events.empty());
  const std::vector<SentChange> to_member = TakeSent(LaneOf(member, "k"));
  ASSERT_EQ(to_member.size(), 1u);
  EXPECT_EQ(to_member[0].value, "repaired");
  EXPECT_EQ(to_member[0].version, entry.version);
  EXPECT_FALSE(to_member[0].has_pre);
  const std::vector<SentChange> to_joiner = TakeSent(LaneOf(joiner, "k"));
  ASSERT_EQ(to_joiner.size(), 1u);
  EXPECT_TRUE(to_joiner[0].has_pre);
  EXPECT_TRUE(to_joiner[0].pre_present);
  EXPECT_EQ(to_joiner[0].pre_value, "before");
}

TEST_F(WritePathTest, ResendTellsAJoinerOnlyWhatIsKnownOfThePreImage) {
  const std::shared_ptr<PeerOutboxes> joiner = MakeOutboxes(3);
  path_.Replace({Recipient{joiner, true}}, nullptr);
  const std::shared_ptr<const RecipientSet> set = path_.Current();
  store_.WithKey("k", [&](storage::LockedKeys&) {
    path_.Resend(*set, Live("k", "v1", 30), /*pre_known=*/false, std::nullopt);
    path_.Resend(*set, Live("k", "v2", 31), /*pre_known=*/true, std::nullopt);
  });

  const std::vector<SentChange> sent = TakeSent(LaneOf(joiner, "k"));
  ASSERT_EQ(sent.size(), 2u);
  EXPECT_FALSE(sent[0].has_pre);  // unknown: the joiner must not take it for "absent"
  EXPECT_TRUE(sent[1].has_pre);   // known to be absent
  EXPECT_FALSE(sent[1].pre_present);
}

TEST_F(WritePathTest, ResendTakesNoTicketEvenInSyncMode) {
  const std::shared_ptr<PeerOutboxes> member = MakeOutboxes(2);
  path_.Replace({Recipient{member, false}}, nullptr);
  const std::shared_ptr<const RecipientSet> set = path_.Current();
  store_.WithKey(
      "k", [&](storage::LockedKeys&) { path_.Resend(*set, Live("k", "v", 30), true, "old"); });
  auto ticket = std::make_shared<WriteTicket>([](bool) {});
  Write(nullptr, Live("k", "w", 31), &ticket);
  EXPECT_EQ(ticket->pending(), 2);
  LaneOf(member, "k").Acknowledge(1);  // the resent record: releases nothing
  EXPECT_EQ(ticket->pending(), 2);
  LaneOf(member, "k").Acknowledge(2);
  EXPECT_EQ(ticket->pending(), 1);
}

TEST_F(WritePathTest, LocalChangeThroughTheStoreRunsAllThreeSteps) {
  const std::shared_ptr<PeerOutboxes> member = MakeOutboxes(2);
  path_.Replace({Recipient{member, false}}, nullptr);
  store_.set_change_observer(&path_);
  auto ticket = std::make_shared<WriteTicket>([](bool) {});
  const WriteContext context(ticket);
  store_.WithKey(
      "k",
      [](storage::LockedKeys& keys) {
        keys.Set("k", "v", storage::Version{20, 1, 1}, 0);
      },
      &context);
  store_.set_change_observer(nullptr);

  EXPECT_EQ(ticket->pending(), 2);
  ASSERT_EQ(consumer_.events.size(), 1u);
  EXPECT_EQ(consumer_.events[0].new_value, "v");
  EXPECT_EQ(TakeSent(LaneOf(member, "k")).size(), 1u);
  // The write began and ended: a later Replace drains at once.
  EXPECT_TRUE(path_.Drained(path_.Replace({}, nullptr)));
}

}  // namespace
}  // namespace weft::replication
