#include "weft/replication/messages.h"

#include <optional>

#include "gtest/gtest.h"

#include "weft/replication/outbox.h"

namespace weft::replication {
namespace {

storage::EntryView Live(std::string_view key, std::string_view value) {
  return storage::EntryView{key, value, storage::Version{7 << 16, 3, 9}, 1234, false};
}

TEST(MessagesTest, ChangeRecordRoundTripWithAndWithoutPreImage) {
  const storage::EntryView post = Live("k", "new");
  const storage::EntryView pre = Live("k", "old");
  std::string plain, with_pre, absent_pre, payload;
  EncodeChangeBody(&plain, post, &pre, false);
  EncodeChangeBody(&with_pre, post, &pre, true);
  EncodeChangeBody(&absent_pre, post, nullptr, true);
  AppendRecord(&payload, RecordKind::kChange, 1, plain);
  AppendRecord(&payload, RecordKind::kChange, 2, with_pre);
  AppendRecord(&payload, RecordKind::kChange, 3, absent_pre);
  RecordReader reader(payload);
  Record record;
  ASSERT_TRUE(*reader.Next(&record));
  EXPECT_EQ(record.seq, 1u);
  EXPECT_EQ(record.change.post.key, "k");
  EXPECT_EQ(record.change.post.value, "new");
  EXPECT_EQ(record.change.post.expire_at_unix_ms, 1234);
  EXPECT_EQ(record.change.post.version, post.version);
  EXPECT_FALSE(record.change.has_pre);
  ASSERT_TRUE(*reader.Next(&record));
  EXPECT_TRUE(record.change.has_pre);
  EXPECT_TRUE(record.change.pre_present);
  EXPECT_EQ(record.change.pre_value, "old");
  ASSERT_TRUE(*reader.Next(&record));
  EXPECT_TRUE(record.change.has_pre);
  EXPECT_FALSE(record.change.pre_present);
  EXPECT_FALSE(*reader.Next(&record));
}

TEST(MessagesTest, TombstoneAndControlRecords) {
  storage::EntryView tombstone{"gone", {}, storage::Version{1, 2, 3}, 0, true};
  std::string body, control_body, payload;
  EncodeChangeBody(&body, tombstone, nullptr, false);
  ControlRecord control;
  control.join_id = 42;
  control.member = 5;
  control.revision = 7;
  control.view_revision = 9;
  control.members = {1, 2, 3};
  control.counters = {10, 20};
  control.name = "m4";
  control.peer_address = "127.0.0.1:7004";
  EncodeControlBody(&control_body, control);
  AppendRecord(&payload, RecordKind::kChange, 8, body);
  AppendRecord(&payload, RecordKind::kStateMarker, 9, control_body);
  RecordReader reader(payload);
  Record record;
  ASSERT_TRUE(*reader.Next(&record));
  EXPECT_TRUE(record.change.post.tombstone);
  EXPECT_EQ(record.change.post.key, "gone");
  ASSERT_TRUE(*reader.Next(&record));
  EXPECT_EQ(record.kind, RecordKind::kStateMarker);
  EXPECT_EQ(record.control.join_id, 42u);
  EXPECT_EQ(record.control.revision, 7);
  EXPECT_EQ(record.control.view_revision, 9);
  EXPECT_EQ(record.control.members, (std::vector<uint64_t>{1, 2, 3}));
  EXPECT_EQ(record.control.counters, (std::vector<uint64_t>{10, 20}));
  EXPECT_EQ(record.control.peer_address, "127.0.0.1:7004");
}

TEST(MessagesTest, EveryTruncationOfARecordIsRejected) {
  std::string body, payload;
  const storage::EntryView pre = Live("k", "old");
  EncodeChangeBody(&body, Live("key", "value"), &pre, true);
  AppendRecord(&payload, RecordKind::kChange, 1, body);
  for (size_t size = 1; size < payload.size(); ++size) {
    RecordReader reader(std::string_view(payload).substr(0, size));
    Record record;
    EXPECT_FALSE(reader.Next(&record).ok()) << size;
  }
}

TEST(MessagesTest, UnknownRecordKindAndHugeLengthsAreRejected) {
  Record record;
  EXPECT_FALSE(RecordReader(std::string("\x63\x01", 2)).Next(&record).ok());
  // A change whose key claims 2^62 bytes.
  EXPECT_FALSE(RecordReader(std::string("\x01\x01\xff\xff\xff\xff\xff\xff\xff\xff\x3f", 11))
                   .Next(&record)
                   .ok());
}

TEST(MessagesTest, ChannelOpenImageAndCounters) {
  ChannelOpen open{"region", 1, 2, 1, 4, 9, 42};
  const std::string encoded = EncodeChannelOpen(open);  // decoded views point into it
  StatusOr<ChannelOpen> decoded = DecodeChannelOpen(encoded);
  ASSERT_TRUE(decoded.ok());
  EXPECT_EQ(decoded->region, "region");
  EXPECT_EQ(decoded->lane, 1u);
  EXPECT_EQ(decoded->stream_id, 9u);
  EXPECT_EQ(decoded->sender_entry, 42);
  EXPECT_FALSE(
      DecodeChannelOpen(EncodeChannelOpen({"r", 1, 2, 4, 4, 1, 1})).ok());  // lane >= lanes
  EXPECT_FALSE(DecodeChannelOpen(EncodeChannelOpen({"r", 1, 2, 0, 4, 0, 1})).ok());  // no stream
  EXPECT_FALSE(DecodeChannelOpen(EncodeChannelOpen({"r", 1, 2, 0, 4, 1, 0})).ok());  // no entry
  EXPECT_EQ(*DecodeCounter(EncodeCounter(77)), 77u);
  EXPECT_FALSE(DecodeCounter("abc").ok());

  std::string chunk;
  BeginImageChunk(&chunk, 1000);
  AppendImageEntry(&chunk, Live("a", "1"));
  AppendImageEntry(&chunk, storage::EntryView{"b", {}, storage::Version{1, 1, 1}, 0, true});
  StatusOr<ImageChunk> decoded_chunk = DecodeImageChunk(chunk);
  ASSERT_TRUE(decoded_chunk.ok());
  EXPECT_EQ(decoded_chunk->entries_estimate, 1000u);
  ImageEntryReader reader(decoded_chunk->entries);
  storage::EntryView entry;
  ASSERT_TRUE(*reader.Next(&entry));
  EXPECT_EQ(entry.value, "1");
  ASSERT_TRUE(*reader.Next(&entry));
  EXPECT_TRUE(entry.tombstone);
  EXPECT_FALSE(*reader.Next(&entry));
}

TEST(OutboxTest, NumbersRecordsResendsAfterRewindAndReleasesTickets) {
  Outbox outbox(1 << 20, 1);
  int wakes = 0;
  outbox.set_waker([&] { ++wakes; });
  int done = 0;
  auto ticket = std::make_shared<WriteTicket>([&](bool) { ++done; });
  auto encoded = std::make_shared<std::string>();
  EncodeChangeBody(encoded.get(), Live("k", "v"), nullptr, false);
  std::shared_ptr<const std::string> body = encoded;
  outbox.Append(RecordKind::kChange, body, &ticket);
  outbox.Append(RecordKind::kChange, body, &ticket);
  EXPECT_EQ(wakes, 1);  // once per idle-to-busy transition
  EXPECT_FALSE(ticket->Arm());
  EXPECT_EQ(outbox.sent(), 2u);
  std::string payload;
  ASSERT_TRUE(outbox.FillPayload(&payload, 1024));
  EXPECT_FALSE(outbox.FillPayload(&payload, 1024));
  outbox.Rewind(1);  // the receiver applied record 1; record 2 must go again
  EXPECT_EQ(done, 0);
  std::string again;
  ASSERT_TRUE(outbox.FillPayload(&again, 1024));
  RecordReader reader(again);
  Record record;
  ASSERT_TRUE(*reader.Next(&record));
  EXPECT_EQ(record.seq, 2u);
  outbox.Acknowledge(2);
  EXPECT_EQ(done, 1);
  EXPECT_EQ(outbox.acked(), 2u);
  EXPECT_EQ(outbox.bytes(), 0u);
}

TEST(OutboxTest, OnlyRetiringReleasesTicketsOfUnacknowledgedRecords) {
  Outbox outbox(1 << 20, 1);
  int done = 0;
  auto ticket = std::make_shared<WriteTicket>([&](bool) { ++done; });
  auto body = std::make_shared<const std::string>("x");
  outbox.Append(RecordKind::kChange, body, &ticket);
  EXPECT_FALSE(ticket->Arm());
  std::string payload;
  ASSERT_TRUE(outbox.FillPayload(&payload, 1024));
  outbox.Rewind(0);  // a reconnect: the record goes again, its write still waits
  EXPECT_EQ(done, 0);
  outbox.Retire();  // the recipient left the group
  EXPECT_EQ(done, 1);
  auto later = std::make_shared<WriteTicket>([](bool) {});
  outbox.Append(RecordKind::kChange, body, &later);  // a writer with an old snapshot
  EXPECT_TRUE(later->Arm());                         // waits for nobody
}

TEST(OutboxTest, AbandonedTicketsReportTheirWritesUnconfirmed) {
  Outbox outbox(1 << 20, 1);
  std::optional<bool> acknowledged;
  auto ticket = std::make_shared<WriteTicket>([&](bool ok) { acknowledged = ok; });
  auto body = std::make_shared<const std::string>("x");
  outbox.Append(RecordKind::kChange, body, &ticket);
  outbox.Append(RecordKind::kChange, body, &ticket);
  EXPECT_FALSE(ticket->Arm());
  outbox.Acknowledge(1);  // one recipient lane confirmed the first change
  EXPECT_FALSE(acknowledged.has_value());
  outbox.AbandonTickets();  // this member was dropped from the group
  ASSERT_TRUE(acknowledged.has_value());
  EXPECT_FALSE(*acknowledged);
  EXPECT_TRUE(ticket->abandoned());
}

}  // namespace
}  // namespace weft::replication
