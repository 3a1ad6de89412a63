#include "weft/replication/join_service.h"

#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "gtest/gtest.h"

#include "weft/base/clock.h"
#include "weft/base/random.h"
#include "weft/replication/messages.h"
#include "weft/replication/peers.h"
#include "weft/replication/region_env.h"
#include "weft/replication/testing_host.h"
#include "weft/replication/write_path.h"
#include "weft/storage/store.h"

namespace weft::replication {
namespace {

using testing::FakeHost;

constexpr uint64_t kSelf = 1;
constexpr uint64_t kProvider = 2;
constexpr uint64_t kOther = 3;  // another ACTIVE member
constexpr uint64_t kJoiner = 9;
constexpr int64_t kEveryEntry = INT64_MAX;  // Peers::Remove: every entry of the peer is over
constexpr uint64_t kJoinId = 77;
constexpr uint32_t kLanes = 2;

// A record as it left an outbox toward a peer (control records own their fields).
struct SentRecord {
  uint32_t lane = 0;
  uint64_t seq = 0;
  RecordKind kind = RecordKind::kChange;
  ControlRecord control;
  bool has_pre = false;  // change records
};

struct StabilizedCall {
  uint64_t joiner = 0;
  uint64_t join_id = 0;
  std::map<uint64_t, Marker> markers;
};

class RecordingObserver final : public JoinServiceObserver {
 public:
  void OnStabilized(uint64_t joiner, uint64_t join_id,
                    const std::map<uint64_t, Marker>& markers) override {
    calls.push_back(StabilizedCall{joiner, join_id, markers});
  }

  std::vector<StabilizedCall> calls;
};

membership::MemberInfo Member(uint64_t id) {
  membership::MemberInfo info;
  info.member_id = id;
  info.name = "m" + std::to_string(id);
  info.peer_address = "127.0.0.1:" + std::to_string(7000 + id);
  return info;
}

ReplicatorOptions Options() {
  ReplicatorOptions options;
  options.region = "r";
  options.lanes = kLanes;
  return options;
}

class JoinServiceTest : public ::testing::Test {
 protected:
  JoinServiceTest() {
    self_ = Member(kSelf);
    // Production posts OnDrained from the writer's thread to the protocol's.
    path_ = std::make_unique<WritePath>(
        "r", ReplicationMode::kSync, kLanes, store_, nullptr, clock_,
        [this](uint64_t epoch) { host_.Post([this, epoch] { service_->OnDrained(epoch); }); });
    peers_ = std::make_unique<Peers>(env_, *path_, peer_history_);
    service_ = std::make_unique<JoinService>(
        env_, *peers_, *path_, store_, [this] { return active_; },
        [this](int64_t revision) {
          view_reads_ += view_revision_ < revision ? 1 : 0;
          return view_revision_ >= revision;
        },
        &observer_);
  }

  // The joiner's intent: join kJoinId with `provider`, having told `members`.
  static ControlRecord Intent(uint64_t provider, std::vector<uint64_t> members,
                              uint64_t join_id = kJoinId) {
    ControlRecord intent;
    intent.join_id = join_id;
    intent.member = provider;
    intent.revision = 5;
    intent.members = std::move(members);
    intent.name = "joiner";
    intent.peer_address = "127.0.0.1:7009";
    intent.client_address = "127.0.0.1:6009";
    return intent;
  }
  static ControlRecord MarkerRecord(std::vector<uint64_t> counters, std::vector<uint64_t> streams,
                                    uint64_t join_id = kJoinId) {
    ControlRecord marker;
    marker.join_id = join_id;
    marker.member = kJoiner;
    marker.counters = std::move(counters);
    marker.streams = std::move(streams);
    return marker;
  }

  void AddPeer(uint64_t id) {
    peers_->Add(Member(id), /*listed_since=*/1, /*wants_pre_image=*/false, /*entered_at=*/1);
    peers_->Publish();
  }

  // Everything not yet taken from the outboxes toward `member`, every lane, decoded.
  std::vector<SentRecord> TakeSent(uint64_t member) {
    std::vector<SentRecord> sent;
    Peers::Peer* peer = peers_->Find(member);
    if (peer == nullptr) {
      return sent;
    }
    for (uint32_t lane = 0; lane < peer->outboxes->lanes.size(); ++lane) {
      std::string payload;
      if (!peer->outboxes->lanes[lane]->FillPayload(&payload, size_t{1} << 20)) {
        continue;
      }
      RecordReader reader(payload);
      Record record;
      while (true) {
        StatusOr<bool> more = reader.Next(&record);
        EXPECT_TRUE(more.ok()) << more.status();
        if (!more.ok() || !*more) {
          break;
        }
        sent.push_back(SentRecord{lane, record.seq, record.kind, record.control,
                                  record.kind == RecordKind::kChange && record.change.has_pre});
      }
    }
    return sent;
  }
  static std::vector<SentRecord> OfKind(const std::vector<SentRecord>& sent, RecordKind kind) {
    std::vector<SentRecord> matching;
    for (const SentRecord& record : sent) {
      if (record.kind == kind) {
        matching.push_back(record);
      }
    }
    return matching;
  }

  // Makes the inbound lanes from `member` satisfy `marker`.
  void Receive(uint64_t member, const ControlRecord& marker) {
    for (uint32_t lane = 0; lane < marker.counters.size(); ++lane) {
      peers_->Inbound(member, lane) = InboundLane{marker.streams[lane], marker.counters[lane]};
    }
  }

  // This member provides: `kOther` is its peer and is named in the intent.
  void StartProviding() {
    AddPeer(kOther);
    service_->OnJoinIntent(kJoiner, Intent(kSelf, {kSelf, kOther}));
  }

  // A local write to `key`, enqueued on the current set (lane of the key) and ended.
  void WriteNow(std::string_view key) {
    const std::shared_ptr<const RecipientSet> set = path_->Begin();
    EnqueueOn(*set, key);
    path_->End(*set);
  }
  void EnqueueOn(const RecipientSet& set, std::string_view key) {
    const storage::EntryView after{key, "v", storage::Version{100, kSelf, 1}, 0, false};
    store_.WithKey(key,
                   [&](storage::LockedKeys&) { path_->Enqueue(set, nullptr, after, nullptr); });
  }

  ManualClock clock_;
  FakeHost host_{clock_};
  Random random_{7};
  const ReplicatorOptions options_ = Options();
  membership::MemberInfo self_;
  const RegionEnv env_{options_, self_, host_, clock_, random_};
  storage::Store store_{storage::StoreOptions{.shard_count = 16}, clock_};
  bool active_ = true;
  int64_t view_revision_ = 0;
  int view_reads_ = 0;  // fresh reads of the group asked for
  RecordingObserver observer_;
  std::unique_ptr<WritePath> path_;
  PeerHistory peer_history_;
  std::unique_ptr<Peers> peers_;
  std::unique_ptr<JoinService> service_;
};

TEST_F(JoinServiceTest, IntentAddsTheJoinerAsARecipientWithPreImages) {
  AddPeer(kProvider);
  const uint64_t epoch_before = path_->Current()->epoch;
  service_->OnJoinIntent(kJoiner, Intent(kProvider, {kSelf, kProvider}));

  const Peers::Peer* joiner = peers_->Find(kJoiner);
  ASSERT_NE(joiner, nullptr);
  EXPECT_TRUE(joiner->wants_pre_image);
  EXPECT_EQ(joiner->info.name, "joiner");
  EXPECT_EQ(joiner->info.peer_address, "127.0.0.1:7009");
  const std::shared_ptr<const RecipientSet> set = path_->Current();
  EXPECT_GT(set->epoch, epoch_before);
  bool listed = false;
  for (const Recipient& recipient : set->members) {
    if (recipient.outboxes->member == kJoiner) {
      listed = true;
      EXPECT_TRUE(recipient.wants_pre_image);
    }
  }
  EXPECT_TRUE(listed);
  EXPECT_EQ(service_->purge_pauses(), 1u);
}

TEST_F(JoinServiceTest, MarksOnlyOnceTheWritesOfOlderEpochsDrained) {
  AddPeer(kProvider);
  const std::shared_ptr<const RecipientSet> old_set = path_->Begin();  // a write in flight
  service_->OnJoinIntent(kJoiner, Intent(kProvider, {kSelf, kProvider}));
  EXPECT_EQ(service_->pending_marks(), 1u);
  EXPECT_TRUE(OfKind(TakeSent(kProvider), RecordKind::kStateMarker).empty());
  EXPECT_TRUE(OfKind(TakeSent(kJoiner), RecordKind::kIntentAck).empty());

  // The old write enqueues to the old set (the provider only) and ends: the epoch drained.
  EnqueueOn(*old_set, "k");
  path_->End(*old_set);
  host_.RunDue();  // the posted OnDrained
  EXPECT_EQ(service_->pending_marks(), 0u);

  const std::vector<SentRecord> to_provider = TakeSent(kProvider);
  const std::vector<SentRecord> markers = OfKind(to_provider, RecordKind::kStateMarker);
  ASSERT_EQ(markers.size(), 1u);
  const SentRecord& marker = markers[0];
  EXPECT_EQ(marker.control.join_id, kJoinId);
  EXPECT_EQ(marker.control.member, kJoiner);
  // The counters read after the drain include the in-flight write, and nothing after it.
  std::vector<uint64_t> expected_counters(kLanes, 0);
  expected_counters[path_->LaneOf("k")] = 1;
  EXPECT_EQ(marker.control.counters, expected_counters);
  EXPECT_EQ(marker.control.streams, peers_->StreamIds(kProvider));
  EXPECT_EQ(marker.lane, 0u);
  EXPECT_EQ(marker.seq, expected_counters[0] + 1);

  const std::vector<SentRecord> acks = OfKind(TakeSent(kJoiner), RecordKind::kIntentAck);
  ASSERT_EQ(acks.size(), 1u);
  EXPECT_EQ(acks[0].control.join_id, kJoinId);
  EXPECT_TRUE(acks[0].control.error.empty());
}

TEST_F(JoinServiceTest, WritesOfTheJoinersEpochDoNotHoldTheMark) {
  AddPeer(kProvider);
  const std::shared_ptr<const RecipientSet> old_set = path_->Begin();
  service_->OnJoinIntent(kJoiner, Intent(kProvider, {kSelf, kProvider}));
  const std::shared_ptr<const RecipientSet> new_set = path_->Begin();  // sees the joiner

  path_->End(*old_set);
  host_.RunDue();
  EXPECT_EQ(service_->pending_marks(), 0u);
  EXPECT_EQ(OfKind(TakeSent(kProvider), RecordKind::kStateMarker).size(), 1u);
  EXPECT_EQ(OfKind(TakeSent(kJoiner), RecordKind::kIntentAck).size(), 1u);
  path_->End(*new_set);
}

TEST_F(JoinServiceTest, WritesAfterTheIntentCarryPreImagesToTheJoiner) {
  AddPeer(kProvider);
  service_->OnJoinIntent(kJoiner, Intent(kProvider, {kSelf, kProvider}));
  TakeSent(kJoiner);
  WriteNow("k");
  const std::vector<SentRecord> changes = OfKind(TakeSent(kJoiner), RecordKind::kChange);
  ASSERT_EQ(changes.size(), 1u);
  EXPECT_TRUE(changes[0].has_pre);
  const std::vector<SentRecord> to_provider = OfKind(TakeSent(kProvider), RecordKind::kChange);
  ASSERT_EQ(to_provider.size(), 1u);
  EXPECT_FALSE(to_provider[0].has_pre);
}

TEST_F(JoinServiceTest, MemberThatIsNotActiveRefusesTheIntent) {
  AddPeer(kProvider);
  active_ = false;
  service_->OnJoinIntent(kJoiner, Intent(kProvider, {kSelf, kProvider}));

  const std::vector<SentRecord> acks = OfKind(TakeSent(kJoiner), RecordKind::kIntentAck);
  ASSERT_EQ(acks.size(), 1u);
  EXPECT_EQ(acks[0].control.join_id, kJoinId);
  EXPECT_FALSE(acks[0].control.error.empty());
  EXPECT_TRUE(OfKind(TakeSent(kProvider), RecordKind::kStateMarker).empty());
  EXPECT_EQ(service_->pending_marks(), 0u);
  EXPECT_EQ(service_->purge_pauses(), 0u);
}

TEST_F(JoinServiceTest, MemberThatDoesNotKnowTheProviderRefusesTheIntent) {
  service_->OnJoinIntent(kJoiner, Intent(kProvider, {kSelf, kProvider}));
  const std::vector<SentRecord> acks = OfKind(TakeSent(kJoiner), RecordKind::kIntentAck);
  ASSERT_EQ(acks.size(), 1u);
  EXPECT_FALSE(acks[0].control.error.empty());
  EXPECT_EQ(service_->pending_marks(), 0u);
  EXPECT_EQ(service_->stabilizations(), 0u);
}

TEST_F(JoinServiceTest, ProviderLeavingBeforeTheMarkIsReportedToTheJoiner) {
  AddPeer(kProvider);
  const std::shared_ptr<const RecipientSet> old_set = path_->Begin();
  service_->OnJoinIntent(kJoiner, Intent(kProvider, {kSelf, kProvider}));
  peers_->Remove(kProvider, kEveryEntry);
  path_->End(*old_set);
  host_.RunDue();
  const std::vector<SentRecord> acks = OfKind(TakeSent(kJoiner), RecordKind::kIntentAck);
  ASSERT_EQ(acks.size(), 1u);
  EXPECT_FALSE(acks[0].control.error.empty());
}

TEST_F(JoinServiceTest, ProviderStabilizesOnceEveryMarkerIsSatisfied) {
  StartProviding();
  EXPECT_EQ(service_->stabilizations(), 1u);
  EXPECT_EQ(OfKind(TakeSent(kJoiner), RecordKind::kIntentAck).size(), 1u);

  const ControlRecord marker = MarkerRecord({2, 1}, {11, 12});
  service_->OnStateMarker(kOther, marker);
  EXPECT_TRUE(OfKind(TakeSent(kJoiner), RecordKind::kStabilized).empty());

  peers_->Inbound(kOther, 0) = InboundLane{11, 2};
  peers_->Inbound(kOther, 1) = InboundLane{12, 0};
  service_->CheckStabilizations();
  EXPECT_TRUE(OfKind(TakeSent(kJoiner), RecordKind::kStabilized).empty());
  EXPECT_TRUE(observer_.calls.empty());

  peers_->Inbound(kOther, 1).received = 1;
  service_->CheckStabilizations();
  const std::vector<SentRecord> stabilized = OfKind(TakeSent(kJoiner), RecordKind::kStabilized);
  ASSERT_EQ(stabilized.size(), 1u);
  EXPECT_EQ(stabilized[0].control.join_id, kJoinId);
  EXPECT_EQ(service_->stabilizations(), 0u);
  EXPECT_EQ(service_->stabilized_joins(), 1u);
  ASSERT_EQ(observer_.calls.size(), 1u);
  EXPECT_EQ(observer_.calls[0].joiner, kJoiner);
  EXPECT_EQ(observer_.calls[0].join_id, kJoinId);
  ASSERT_EQ(observer_.calls[0].markers.count(kOther), 1u);
  EXPECT_EQ(observer_.calls[0].markers.at(kOther).counters, (std::vector<uint64_t>{2, 1}));

  service_->CheckStabilizations();  // sent once
  EXPECT_TRUE(OfKind(TakeSent(kJoiner), RecordKind::kStabilized).empty());
}

TEST_F(JoinServiceTest, CountersOfAnOlderStreamDoNotSatisfyAMarker) {
  StartProviding();
  const ControlRecord marker = MarkerRecord({2, 1}, {11, 12});
  service_->OnStateMarker(kOther, marker);
  peers_->Inbound(kOther, 0) = InboundLane{11, 5};
  peers_->Inbound(kOther, 1) = InboundLane{10, 5};  // the marked stream has not begun here
  service_->CheckStabilizations();
  EXPECT_TRUE(OfKind(TakeSent(kJoiner), RecordKind::kStabilized).empty());
  EXPECT_EQ(service_->stabilizations(), 1u);
}

TEST_F(JoinServiceTest, ANewerStreamEndsTheMarkedOne) {
  StartProviding();
  const ControlRecord marker = MarkerRecord({2, 1}, {11, 12});
  service_->OnStateMarker(kOther, marker);
  peers_->Inbound(kOther, 0) = InboundLane{11, 5};
  // The sender made a new stream for this lane (it rejoined, or saw this member's entry end):
  // the marked stream is over, and its departure repair covers what it did not deliver.
  peers_->Inbound(kOther, 1) = InboundLane{13, 0};
  service_->CheckStabilizations();
  EXPECT_EQ(OfKind(TakeSent(kJoiner), RecordKind::kStabilized).size(), 1u);
}

TEST_F(JoinServiceTest, ProviderWaitsForItsOwnDrainToo) {
  AddPeer(kOther);
  const std::shared_ptr<const RecipientSet> old_set = path_->Begin();
  service_->OnJoinIntent(kJoiner, Intent(kSelf, {kSelf, kOther}));
  const ControlRecord marker = MarkerRecord({0, 0}, {11, 12});
  Receive(kOther, marker);
  service_->OnStateMarker(kOther, marker);
  EXPECT_TRUE(OfKind(TakeSent(kJoiner), RecordKind::kStabilized).empty());

  path_->End(*old_set);
  host_.RunDue();
  const std::vector<SentRecord> to_joiner = TakeSent(kJoiner);
  EXPECT_EQ(OfKind(to_joiner, RecordKind::kIntentAck).size(), 1u);
  EXPECT_EQ(OfKind(to_joiner, RecordKind::kStabilized).size(), 1u);
}

TEST_F(JoinServiceTest, ProviderWaitsUntilItsViewReachesTheJoiners) {
  // Seed 9659: the joiner's view no longer lists a member that this provider's lagging view
  // still has (dropped by etcd without knowing it, it goes on writing to us). Stabilizing
  // before our view drops it too would cut the image while we still apply its writes.
  view_revision_ = 7;
  ControlRecord intent = Intent(kSelf, {kSelf});
  intent.view_revision = 8;
  service_->OnJoinIntent(kJoiner, intent);
  host_.RunDue();
  EXPECT_TRUE(OfKind(TakeSent(kJoiner), RecordKind::kStabilized).empty());
  EXPECT_GT(view_reads_, 0);

  view_revision_ = 8;
  service_->CheckStabilizations();
  EXPECT_EQ(OfKind(TakeSent(kJoiner), RecordKind::kStabilized).size(), 1u);
}

TEST_F(JoinServiceTest, MemberThatLeftIsNotWaitedFor) {
  StartProviding();
  EXPECT_TRUE(OfKind(TakeSent(kJoiner), RecordKind::kStabilized).empty());
  peers_->Remove(kOther, kEveryEntry);
  service_->OnMemberLeft(kOther);
  EXPECT_EQ(OfKind(TakeSent(kJoiner), RecordKind::kStabilized).size(), 1u);
}

TEST_F(JoinServiceTest, MarkerThatOvertookTheIntentIsUsed) {
  AddPeer(kOther);
  const ControlRecord marker = MarkerRecord({3, 4}, {21, 22});
  service_->OnStateMarker(kOther, marker);
  EXPECT_EQ(service_->early_markers(), 1u);
  Receive(kOther, marker);

  service_->OnJoinIntent(kJoiner, Intent(kSelf, {kSelf, kOther}));
  EXPECT_EQ(service_->early_markers(), 0u);
  EXPECT_EQ(OfKind(TakeSent(kJoiner), RecordKind::kStabilized).size(), 1u);
  ASSERT_EQ(observer_.calls.size(), 1u);
  EXPECT_EQ(observer_.calls[0].markers.at(kOther).streams, (std::vector<uint64_t>{21, 22}));
}

TEST_F(JoinServiceTest, EarlyMarkerOfAnotherJoinIsNotUsed) {
  AddPeer(kOther);
  const ControlRecord marker = MarkerRecord({0, 0}, {21, 22}, /*join_id=*/kJoinId + 1);
  service_->OnStateMarker(kOther, marker);
  Receive(kOther, marker);
  service_->OnJoinIntent(kJoiner, Intent(kSelf, {kSelf, kOther}));
  EXPECT_TRUE(OfKind(TakeSent(kJoiner), RecordKind::kStabilized).empty());
  EXPECT_EQ(service_->early_markers(), 1u);
}

TEST_F(JoinServiceTest, EarlyMarkersExpireAfterTheirTtl) {
  AddPeer(kOther);
  const ControlRecord marker = MarkerRecord({0, 0}, {21, 22});
  service_->OnStateMarker(kOther, marker);
  Receive(kOther, marker);

  clock_.AdvanceMs(options_.early_marker_ttl_ms);
  service_->OnTick();
  EXPECT_EQ(service_->early_markers(), 1u);
  clock_.AdvanceUs(1);
  service_->OnTick();
  EXPECT_EQ(service_->early_markers(), 0u);

  // The intent that comes now has no marker to use: it waits for a fresh one.
  service_->OnJoinIntent(kJoiner, Intent(kSelf, {kSelf, kOther}));
  EXPECT_TRUE(OfKind(TakeSent(kJoiner), RecordKind::kStabilized).empty());
  EXPECT_EQ(service_->stabilizations(), 1u);
}

TEST_F(JoinServiceTest, ImageIsAdmittedOnceAndOnlyForTheJoiner) {
  StartProviding();
  EXPECT_FALSE(service_->AdmitImage(kJoiner, kJoinId).ok());  // not stabilized yet
  const ControlRecord marker = MarkerRecord({0, 0}, {11, 12});
  Receive(kOther, marker);
  service_->OnStateMarker(kOther, marker);
  ASSERT_EQ(service_->stabilized_joins(), 1u);

  EXPECT_EQ(service_->AdmitImage(kOther, kJoinId).code(), absl::StatusCode::kPermissionDenied);
  EXPECT_FALSE(service_->AdmitImage(kJoiner, kJoinId + 1).ok());
  EXPECT_TRUE(service_->AdmitImage(kJoiner, kJoinId).ok());
  EXPECT_FALSE(service_->AdmitImage(kJoiner, kJoinId).ok());  // once
  EXPECT_EQ(service_->stabilized_joins(), 0u);
}

TEST_F(JoinServiceTest, MemberThatIsNotActiveAdmitsNoImage) {
  StartProviding();
  peers_->Remove(kOther, kEveryEntry);
  service_->OnMemberLeft(kOther);
  ASSERT_EQ(service_->stabilized_joins(), 1u);
  active_ = false;
  EXPECT_FALSE(service_->AdmitImage(kJoiner, kJoinId).ok());
  active_ = true;
  EXPECT_TRUE(service_->AdmitImage(kJoiner, kJoinId).ok());
}

TEST_F(JoinServiceTest, StabilizedJoinsExpireAfterTheirTtl) {
  StartProviding();
  peers_->Remove(kOther, kEveryEntry);
  service_->OnMemberLeft(kOther);
  ASSERT_EQ(service_->stabilized_joins(), 1u);

  clock_.AdvanceMs(options_.stabilized_ttl_ms);
  service_->OnTick();
  EXPECT_EQ(service_->stabilized_joins(), 1u);
  clock_.AdvanceUs(1);
  service_->OnTick();
  EXPECT_EQ(service_->stabilized_joins(), 0u);
  EXPECT_FALSE(service_->AdmitImage(kJoiner, kJoinId).ok());
}

TEST_F(JoinServiceTest, NewIntentSupersedesTheJoinersEarlierAttempt) {
  StartProviding();
  service_->OnJoinIntent(kJoiner, Intent(kSelf, {kSelf, kOther}, /*join_id=*/kJoinId + 1));
  EXPECT_EQ(service_->stabilizations(), 1u);
  peers_->Remove(kOther, kEveryEntry);
  service_->OnMemberLeft(kOther);
  EXPECT_FALSE(service_->AdmitImage(kJoiner, kJoinId).ok());
  EXPECT_TRUE(service_->AdmitImage(kJoiner, kJoinId + 1).ok());
}

TEST_F(JoinServiceTest, JoinerLeavingForgetsItsJoin) {
  StartProviding();
  peers_->Remove(kJoiner, kEveryEntry);
  service_->OnMemberLeft(kJoiner);
  EXPECT_EQ(service_->stabilizations(), 0u);
  EXPECT_EQ(service_->purge_pauses(), 0u);
}

TEST_F(JoinServiceTest, JoinCompleteSendsAFlushOnEveryLane) {
  AddPeer(kProvider);
  service_->OnJoinIntent(kJoiner, Intent(kProvider, {kSelf, kProvider}));
  TakeSent(kJoiner);

  ControlRecord complete;
  complete.join_id = kJoinId;
  service_->OnJoinComplete(kJoiner, /*joiner_entry=*/5, complete);
  const std::vector<SentRecord> flushes = OfKind(TakeSent(kJoiner), RecordKind::kJoinFlush);
  ASSERT_EQ(flushes.size(), kLanes);
  for (uint32_t lane = 0; lane < kLanes; ++lane) {
    EXPECT_EQ(flushes[lane].lane, lane);
    EXPECT_EQ(flushes[lane].control.join_id, kJoinId);
  }
}

TEST_F(JoinServiceTest, JoinCompleteFromAnUnknownMemberAddsItWithPreImages) {
  ControlRecord complete;
  complete.join_id = kJoinId;
  complete.name = "late";
  service_->OnJoinComplete(kJoiner, /*joiner_entry=*/5, complete);
  const Peers::Peer* joiner = peers_->Find(kJoiner);
  ASSERT_NE(joiner, nullptr);
  EXPECT_TRUE(joiner->wants_pre_image);
  EXPECT_EQ(joiner->entered_at, 5);  // a later entry of it is told from this one
  EXPECT_EQ(path_->Current()->members.size(), 1u);
  EXPECT_EQ(OfKind(TakeSent(kJoiner), RecordKind::kJoinFlush).size(), kLanes);
}

TEST_F(JoinServiceTest, JoinReleasedTurnsPreImagesOff) {
  AddPeer(kProvider);
  service_->OnJoinIntent(kJoiner, Intent(kProvider, {kSelf, kProvider}));
  TakeSent(kJoiner);
  const uint64_t epoch = path_->Current()->epoch;

  ControlRecord released;
  released.join_id = kJoinId;
  released.revision = 12;
  service_->OnJoinReleased(kJoiner, released);
  const Peers::Peer* joiner = peers_->Find(kJoiner);
  ASSERT_NE(joiner, nullptr);
  EXPECT_FALSE(joiner->wants_pre_image);
  EXPECT_EQ(joiner->active_since, 12);
  EXPECT_GT(path_->Current()->epoch, epoch);
  EXPECT_EQ(service_->purge_pauses(), 0u);

  WriteNow("k");
  const std::vector<SentRecord> changes = OfKind(TakeSent(kJoiner), RecordKind::kChange);
  ASSERT_EQ(changes.size(), 1u);
  EXPECT_FALSE(changes[0].has_pre);
}

}  // namespace
}  // namespace weft::replication
