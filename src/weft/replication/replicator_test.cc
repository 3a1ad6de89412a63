// The replication protocol on the in-memory network: deterministic interleavings (seeded) of
// writes, deletes, joins and crashes, checked for convergence, completeness of joins and the
// exact old values of the joiner's events.
#include "weft/replication/replicator.h"

#include <map>
#include <string>

#include "gtest/gtest.h"

#include "weft/replication/testing/mem_network.h"

namespace weft::replication {
namespace {

using testing::MemMember;
using testing::MemNetwork;
using testing::RecordedEvent;

std::string Key(uint64_t i) {
  return "key:" + std::to_string(i);
}

// Every member holds the same entries.
void ExpectConverged(MemNetwork& network) {
  std::vector<MemMember*> members = network.members();
  ASSERT_FALSE(members.empty());
  const uint64_t digest = members[0]->store().Digest();
  for (MemMember* member : members) {
    EXPECT_EQ(member->replicator().state(), RegionState::kActive) << member->name();
    EXPECT_EQ(member->store().Digest(), digest)
        << member->name() << " differs from " << members[0]->name();
    EXPECT_EQ(member->store().KeyCount(), members[0]->store().KeyCount()) << member->name();
  }
}

// Per key: versions strictly increase, each event's old value is the previous event's new
// value, and the last event's new value is what the store holds.
void ExpectEventChains(MemMember& member) {
  std::map<std::string, const RecordedEvent*> last;
  for (const RecordedEvent& event : member.consumer().events) {
    auto it = last.find(event.key);
    if (it != last.end()) {
      EXPECT_TRUE(event.version.NewerThan(it->second->version)) << event.key;
      EXPECT_EQ(event.old_value, it->second->new_value) << member.name() << " " << event.key;
      if (event.old_value != it->second->new_value) {
        for (const RecordedEvent& e : member.consumer().events) {
          if (e.key == event.key) {
            fprintf(stderr, "DEBUG %s old=%s new=%s stamp=%lu origin=%lx\n", e.key.c_str(),
                    e.old_value.value_or("nil").c_str(), e.new_value.value_or("nil").c_str(),
                    e.version.stamp, e.version.origin);
          }
        }
      }
    }
    last[event.key] = &event;
  }
  for (const auto& [key, event] : last) {
    EXPECT_EQ(member.Get(key), event->new_value) << member.name() << " " << key;
  }
}

// A random write on a random ACTIVE member: mostly SET, some DEL, over a small key space so
// that keys are written concurrently from several members.
void RandomWrite(MemNetwork& network, uint64_t keys, uint64_t n) {
  std::vector<MemMember*> active;
  for (MemMember* member : network.members()) {
    if (member->replicator().serving()) {
      active.push_back(member);
    }
  }
  if (active.empty()) {
    return;
  }
  MemMember* writer = active[network.random().Uniform(active.size())];
  const std::string key = Key(network.random().Uniform(keys));
  if (network.random().OneIn(5)) {
    writer->Delete(key);
  } else {
    writer->Set(key, writer->name() + ":" + std::to_string(n));
  }
  network.clock().AdvanceUs(static_cast<int64_t>(network.random().Uniform(300)));
}

TEST(ReplicatorTest, FirstMemberBootstrapsAndSecondJoinsAnEmptyRegion) {
  MemNetwork network(1);
  MemMember& m1 = network.AddMember("m1");
  EXPECT_EQ(m1.replicator().state(), RegionState::kActive);
  MemMember& m2 = network.AddMember("m2");
  EXPECT_EQ(m2.replicator().state(), RegionState::kInitializing);
  network.Run();
  EXPECT_EQ(m2.replicator().state(), RegionState::kActive);
  EXPECT_EQ(m2.replicator().GetStatus().phase, JoinPhase::kNone);
  m1.Set("a", "1");
  m2.Set("b", "2");
  network.Run();
  EXPECT_EQ(m2.Get("a"), "1");
  EXPECT_EQ(m1.Get("b"), "2");
  ExpectConverged(network);
}

TEST(ReplicatorTest, CountersMatchAfterTraffic) {
  MemNetwork network(2);
  MemMember& m1 = network.AddMember("m1");
  MemMember& m2 = network.AddMember("m2");
  network.Run();
  for (int i = 0; i < 100; ++i) {
    m1.Set(Key(i), "v");
  }
  network.Run();
  for (uint32_t lane = 0; lane < 2; ++lane) {
    EXPECT_EQ(m1.replicator().SentCounter(m2.id(), lane),
              m2.replicator().ReceivedCounter(m1.id(), lane));
  }
  EXPECT_GT(m1.replicator().SentCounter(m2.id(), 0) + m1.replicator().SentCounter(m2.id(), 1),
            100u);
}

TEST(ReplicatorTest, SyncWriteWaitsForEveryRecipient) {
  MemNetwork network(3);
  MemMember& m1 = network.AddMember("m1");
  network.AddMember("m2");
  network.AddMember("m3");
  network.Run();
  bool done = false;
  auto ticket = std::make_shared<WriteTicket>([&] { done = true; });
  {
    ScopedWriteTicket scope(ticket);
    m1.Set("k", "v");
  }
  EXPECT_EQ(ticket->pending(), 3);  // one per recipient, plus the Arm reference
  EXPECT_FALSE(ticket->Arm());
  EXPECT_FALSE(done);  // one per recipient
  network.Run();
  EXPECT_TRUE(done);
}

TEST(ReplicatorTest, CrashedRecipientReleasesWaitingWrites) {
  MemNetwork network(4);
  MemMember& m1 = network.AddMember("m1");
  MemMember& m2 = network.AddMember("m2");
  network.Run();
  bool done = false;
  auto ticket = std::make_shared<WriteTicket>([&] { done = true; });
  {
    ScopedWriteTicket scope(ticket);
    m1.Set("k", "v");
  }
  EXPECT_FALSE(ticket->Arm());
  EXPECT_FALSE(done);
  network.Crash(m2);
  EXPECT_TRUE(done);
  network.Run();
}

TEST(ReplicatorTest, MemberWhoseLeaseExpiredStopsServing) {
  MemNetwork network(5);
  MemMember& m1 = network.AddMember("m1");
  MemMember& m2 = network.AddMember("m2");
  network.Run();
  ASSERT_TRUE(m2.replicator().serving());
  network.ExpireLease(m2);
  network.Run();
  // The others dropped m2, so its copy would miss their changes: it must not serve from it.
  EXPECT_EQ(m2.replicator().state(), RegionState::kFailed);
  EXPECT_FALSE(m2.replicator().serving());
  EXPECT_NE(m2.replicator().failure_reason().find("missing from the region's group"),
            std::string::npos);
  EXPECT_TRUE(m1.replicator().serving());
  EXPECT_EQ(m1.replicator().GetStatus().members.size(), 1u);
  EXPECT_TRUE(m1.replicator().failure_reason().empty());
}

TEST(ReplicatorTest, RecipientTooFarBehindIsExpelledAndStopsServing) {
  MemNetwork network(6);
  ReplicatorOptions options;
  options.mode = ReplicationMode::kAsync;  // writes go on while m2 takes nothing
  options.outbox_bytes_max = 4096;
  MemMember& m1 = network.AddMember("m1", options);
  MemMember& m2 = network.AddMember("m2", options);
  network.Run();
  ASSERT_TRUE(m2.replicator().serving());
  for (uint32_t lane = 0; lane < options.lanes; ++lane) {
    network.HoldLane(m1, m2, lane, true);
  }
  for (int i = 0; i < 100; ++i) {
    m1.Set("key" + std::to_string(i), std::string(100, 'v'));
  }
  m1.replicator().OnTick();
  network.Run();
  EXPECT_EQ(m2.replicator().state(), RegionState::kFailed);
  EXPECT_TRUE(m1.replicator().serving());
  EXPECT_EQ(m1.replicator().GetStatus().members.size(), 1u);
  // The backlog went with the member.
  EXPECT_EQ(m1.replicator().PeerLinkFor(m2.id()), nullptr);
}

TEST(ReplicatorTest, RecipientThatStopsAcknowledgingIsExpelledAndReleasesWrites) {
  MemNetwork network(7);
  ReplicatorOptions options;
  options.ack_timeout_ms = 10'000;
  MemMember& m1 = network.AddMember("m1", options);
  MemMember& m2 = network.AddMember("m2", options);
  network.Run();
  const uint32_t lane = m1.replicator().LaneOf("k");
  network.HoldLane(m1, m2, lane, true);  // connected, but nothing comes back
  bool done = false;
  auto ticket = std::make_shared<WriteTicket>([&] { done = true; });
  {
    ScopedWriteTicket scope(ticket);
    m1.Set("k", "v");
  }
  EXPECT_FALSE(ticket->Arm());
  m1.replicator().OnTick();
  network.clock().AdvanceMs(9'000);
  m1.replicator().OnTick();
  network.Run();
  EXPECT_FALSE(done) << "expelled before the timeout";
  EXPECT_EQ(m2.replicator().state(), RegionState::kActive);
  network.clock().AdvanceMs(2'000);
  m1.replicator().OnTick();
  network.Run();
  EXPECT_TRUE(done);
  EXPECT_EQ(m2.replicator().state(), RegionState::kFailed);
  EXPECT_EQ(m1.replicator().GetStatus().members.size(), 1u);
}

class ReplicatorSeededTest : public ::testing::TestWithParam<uint64_t> {};

TEST_P(ReplicatorSeededTest, JoinUnderConcurrentWritesConverges) {
  MemNetwork network(GetParam());
  network.AddMember("m1");
  network.AddMember("m2");
  network.AddMember("m3");
  network.Run();
  for (uint64_t i = 0; i < 300; ++i) {
    RandomWrite(network, 120, i);
    if (network.random().OneIn(2)) {
      network.Step();
    }
  }
  MemMember& joiner = network.AddMember("m4");
  uint64_t n = 1000;
  while (joiner.replicator().GetStatus().phase != JoinPhase::kNone ||
         joiner.replicator().state() != RegionState::kActive) {
    RandomWrite(network, 120, n++);
    for (int s = 0; s < 3; ++s) {
      if (!network.Step()) {
        for (MemMember* member : network.members()) {
          member->replicator().OnTick();
        }
      }
    }
    ASSERT_LT(n, 100'000u) << "the join did not finish";
  }
  for (int i = 0; i < 200; ++i) {
    RandomWrite(network, 120, n++);
    network.Step();
  }
  network.Run();
  ExpectConverged(network);
  for (MemMember* member : network.members()) {
    ExpectEventChains(*member);
  }
  EXPECT_GT(joiner.replicator().GetStatus().postimage_changes, 0u);
}

TEST_P(ReplicatorSeededTest, TwoJoinsAtOnceConverge) {
  MemNetwork network(GetParam());
  network.AddMember("m1");
  network.AddMember("m2");
  network.Run();
  for (uint64_t i = 0; i < 200; ++i) {
    RandomWrite(network, 80, i);
  }
  MemMember& j1 = network.AddMember("j1");
  MemMember& j2 = network.AddMember("j2");
  uint64_t n = 1000;
  while (!(j1.replicator().serving() && j2.replicator().serving() &&
           j1.replicator().GetStatus().phase == JoinPhase::kNone &&
           j2.replicator().GetStatus().phase == JoinPhase::kNone)) {
    RandomWrite(network, 80, n++);
    if (!network.Step()) {
      for (MemMember* member : network.members()) {
        member->replicator().OnTick();
      }
    }
    network.Step();
    ASSERT_LT(n, 100'000u);
  }
  network.Run();
  ExpectConverged(network);
  ExpectEventChains(j1);
  ExpectEventChains(j2);
}

TEST_P(ReplicatorSeededTest, ProviderCrashDuringImageRetriesWithAnother) {
  MemNetwork network(GetParam());
  MemMember& m1 = network.AddMember("m1");
  network.AddMember("m2");
  network.AddMember("m3");
  network.Run();
  for (uint64_t i = 0; i < 2000; ++i) {
    m1.Set(Key(i), std::string(100, 'x'));
  }
  network.Run();
  ReplicatorOptions options;
  options.preferred_provider = "m1";
  options.image_chunk_bytes = 4096;  // many chunks: the crash lands mid-image
  MemMember& joiner = network.AddMember("m4", options);
  uint64_t n = 5000;
  while (joiner.replicator().GetStatus().image_entries < 200) {
    RandomWrite(network, 3000, n++);
    network.Step();
    ASSERT_LT(n, 100'000u);
  }
  network.Crash(m1);
  while (!(joiner.replicator().serving() &&
           joiner.replicator().GetStatus().phase == JoinPhase::kNone)) {
    RandomWrite(network, 3000, n++);
    if (!network.Step()) {
      for (MemMember* member : network.members()) {
        member->replicator().OnTick();
      }
    }
    ASSERT_LT(n, 200'000u) << "phase " << JoinPhaseName(joiner.replicator().GetStatus().phase)
                           << " state " << RegionStateName(joiner.replicator().state());
  }
  network.Run();
  EXPECT_EQ(joiner.replicator().GetStatus().join_attempts, 2);
  ExpectConverged(network);
  ExpectEventChains(joiner);
}

INSTANTIATE_TEST_SUITE_P(Seeds, ReplicatorSeededTest, ::testing::Range<uint64_t>(1, 21));

// DESIGN §5: the image may deliver a post-cut change before the change itself arrives live;
// the live arrival still makes exactly one event, with the sender's pre-image as old value.
TEST(ReplicatorTest, ImageBeforeLiveChangeStillMakesOneEvent) {
  MemNetwork network(7);
  MemMember& m1 = network.AddMember("m1");
  network.Run();
  m1.Set("k", "before");
  network.Run();
  ReplicatorOptions options;
  MemMember& joiner = network.AddMember("m2", options);
  joiner.replicator().HoldPhase(JoinPhase::kImage, true);
  network.Run();  // stabilized, waiting to ask for the image
  const uint32_t lane = m1.replicator().LaneOf("k");
  network.HoldLane(m1, joiner, lane, true);
  m1.Set("k", "after");  // post-cut: sent live to the joiner (held) and in the image
  joiner.replicator().HoldPhase(JoinPhase::kImage, false);
  network.Run();  // the image arrives and is applied; the live change is still held
  EXPECT_EQ(joiner.replicator().GetStatus().phase, JoinPhase::kFlush);
  EXPECT_TRUE(joiner.consumer().events.empty());
  network.HoldLane(m1, joiner, lane, false);
  network.Run();
  ASSERT_EQ(joiner.consumer().events.size(), 1u);
  const RecordedEvent& event = joiner.consumer().events[0];
  EXPECT_EQ(event.key, "k");
  EXPECT_EQ(event.old_value, "before");
  EXPECT_EQ(event.new_value, "after");
  EXPECT_EQ(joiner.Get("k"), "after");
  EXPECT_EQ(joiner.replicator().GetStatus().phase, JoinPhase::kNone);
}

TEST(ReplicatorTest, DeleteRacingTheImageDoesNotResurrect) {
  MemNetwork network(8);
  MemMember& m1 = network.AddMember("m1");
  MemMember& m2 = network.AddMember("m2");
  network.Run();
  for (int i = 0; i < 500; ++i) {
    m1.Set(Key(i), "v");
  }
  network.Run();
  ReplicatorOptions options;
  options.image_chunk_bytes = 1024;
  MemMember& joiner = network.AddMember("m3", options);
  int deleted = 0;
  while (!joiner.replicator().serving()) {
    if (deleted < 500) {
      (deleted % 2 == 0 ? m1 : m2).Delete(Key(deleted));
      ++deleted;
    }
    if (!network.Step()) {
      for (MemMember* member : network.members()) {
        member->replicator().OnTick();
      }
    }
  }
  while (deleted < 500) {
    m2.Delete(Key(deleted++));
  }
  network.Run();
  ExpectConverged(network);
  EXPECT_EQ(joiner.store().KeyCount(), 0u);
}

}  // namespace
}  // namespace weft::replication
