// RegionReplicator: construction, group membership, recipients, outbound lanes and status.
// The receive path is in replicator_apply.cc, the join (both roles) in replicator_join.cc.
#include "weft/replication/replicator.h"

#include <utility>

#include "weft/base/logging.h"

namespace weft::replication {

std::string_view ReplicationModeName(ReplicationMode mode) {
  return mode == ReplicationMode::kSync ? "sync" : "async";
}

std::string_view RegionStateName(RegionState state) {
  switch (state) {
    case RegionState::kStarting:
      return "STARTING";
    case RegionState::kInitializing:
      return "INITIALIZING";
    case RegionState::kActive:
      return "ACTIVE";
    case RegionState::kFailed:
      return "FAILED";
  }
  return "?";
}

std::string_view JoinPhaseName(JoinPhase phase) {
  switch (phase) {
    case JoinPhase::kNone:
      return "none";
    case JoinPhase::kIntent:
      return "intent";
    case JoinPhase::kStabilize:
      return "stabilize";
    case JoinPhase::kImage:
      return "image";
    case JoinPhase::kIncorporate:
      return "incorporate";
    case JoinPhase::kFlush:
      return "flush";
    case JoinPhase::kFailed:
      return "failed";
  }
  return "?";
}

std::optional<JoinPhase> ParseJoinPhase(std::string_view name) {
  for (JoinPhase phase :
       {JoinPhase::kNone, JoinPhase::kIntent, JoinPhase::kStabilize, JoinPhase::kImage,
        JoinPhase::kIncorporate, JoinPhase::kFlush, JoinPhase::kFailed}) {
    if (JoinPhaseName(phase) == name) {
      return phase;
    }
  }
  return std::nullopt;
}

PeerLink::PeerLink(membership::MemberInfo info, uint32_t lanes, size_t outbox_bytes_max)
    : info_(std::move(info)), connected_(std::make_unique<std::atomic<bool>[]>(lanes)) {
  for (uint32_t i = 0; i < lanes; ++i) {
    lanes_.push_back(std::make_unique<Outbox>(outbox_bytes_max));
    connected_[i].store(false, std::memory_order_relaxed);
  }
}

RegionReplicator::RegionReplicator(ReplicatorOptions options, storage::Store& store,
                                   storage::VersionSource& versions, membership::Registry& registry,
                                   membership::MemberInfo self, const Clock& clock, Random& random,
                                   Outlet& outlet, ChangeConsumer* consumer)
    : options_(std::move(options)),
      store_(store),
      versions_(versions),
      registry_(registry),
      self_(std::move(self)),
      clock_(clock),
      random_(random),
      outlet_(outlet),
      consumer_(consumer),
      recent_(options_.recent_changes_capacity, options_.recent_changes_window_ms) {}

RegionReplicator::~RegionReplicator() {
  store_.set_change_observer(nullptr);
}

uint32_t RegionReplicator::LaneOf(std::string_view key) const {
  return store_.ShardIndexOf(key) % options_.lanes;
}

Status RegionReplicator::Start() {
  // Live changes may arrive as soon as the registry lists us, before EnterRegion returns: they
  // must find the post-image store. If we turn out to bootstrap, nobody else can have written.
  postimage_ = std::make_unique<storage::Store>(
      storage::StoreOptions{.shard_count = options_.postimage_shard_count}, clock_);
  postimage_->PauseTombstonePurge();
  apply_mode_.store(ApplyMode::kPostImage, std::memory_order_release);
  store_.set_change_observer(this);

  StatusOr<membership::EnterResult> entered = registry_.EnterRegion(options_.region);
  MutexLock lock(&mutex_);
  if (!entered.ok()) {
    Fail(fmt::format("could not enter the region: {}", std::string(entered.status().message())));
    return entered.status();
  }
  entered_revision_ = entered->group.revision;
  AdoptView(entered->group);
  if (entered->bootstrapped) {
    apply_mode_.store(ApplyMode::kBase, std::memory_order_release);
    postimage_.reset();
    state_.store(RegionState::kActive, std::memory_order_release);
    WEFT_LOG_INFO("region {}: bootstrapped as its first ACTIVE member (revision {})",
                  options_.region, entered->group.revision);
    return absl::OkStatus();
  }
  state_.store(RegionState::kInitializing, std::memory_order_release);
  store_.PauseTombstonePurge();
  join_started_us_ = clock_.NowMonotonicUs();
  WEFT_LOG_INFO("region {}: joining a group of {} member(s) (revision {})", options_.region,
                entered->group.members.size(), entered->group.revision);
  BeginJoinAttempt();
  return absl::OkStatus();
}

void RegionReplicator::OnGroupView(const membership::GroupView& view) {
  MutexLock lock(&mutex_);
  AdoptView(view);
}

std::shared_ptr<PeerLink> RegionReplicator::LinkFor(const membership::MemberInfo& info,
                                                    int64_t listed_since) {
  auto it = links_.find(info.member_id);
  if (it != links_.end()) {
    return it->second;
  }
  listed_since_[info.member_id] = listed_since;
  auto link = std::make_shared<PeerLink>(info, options_.lanes, options_.outbox_bytes_max);
  links_.emplace(info.member_id, link);
  return link;
}

void RegionReplicator::AdoptView(const membership::GroupView& view) {
  if (view.revision < view_.revision) {
    return;  // a late delivery of an older view
  }
  view_ = view;
  bool self_listed = false;
  std::set<uint64_t> listed;
  for (const membership::GroupMember& member : view.members) {
    if (member.info.member_id == self_.member_id) {
      self_listed = true;
      self_listed_ = true;
      continue;
    }
    if (member.state == membership::MemberState::kLeaving) {
      continue;
    }
    listed.insert(member.info.member_id);
    LinkFor(member.info, view.revision);
    // Every INITIALIZING member gets pre-images from us before we accept another write (the
    // rule that lets a member become ACTIVE while others join). A view never turns pre-images
    // off: only the joiner's JoinComplete does, followed by the JoinFlush markers.
    if (!recipient_pre_.contains(member.info.member_id)) {
      SetRecipient(member.info.member_id, true,
                   member.state == membership::MemberState::kInitializing);
    }
  }
  std::vector<uint64_t> gone;
  for (const auto& [member, link] : links_) {
    // A member we learned of from its JoinIntent may be missing from views older than its
    // entry; only a view that should list it and does not means it left.
    if (!listed.contains(member) && view.revision >= listed_since_[member]) {
      gone.push_back(member);
    }
  }
  for (uint64_t member : gone) {
    RemoveMember(member);
  }
  if (!self_listed && self_listed_) {
    Fail(
        fmt::format("this member is missing from the region's group (registry revision {}): "
                    "its lease expired, or a member expelled it for falling too far behind",
                    view.revision));
  }
  CheckStabilizations();
}

void RegionReplicator::SetRecipient(uint64_t member, bool present, bool wants_pre_image) {
  auto it = recipient_pre_.find(member);
  if (present) {
    if (it != recipient_pre_.end() && it->second == wants_pre_image) {
      return;
    }
    recipient_pre_[member] = wants_pre_image;
  } else {
    if (it == recipient_pre_.end()) {
      return;
    }
    recipient_pre_.erase(it);
  }
  std::vector<Recipient> members;
  for (const auto& [id, pre] : recipient_pre_) {
    auto link = links_.find(id);
    if (link != links_.end()) {
      members.push_back(Recipient{link->second, pre});
    }
  }
  recipients_.Replace(std::move(members));
}

void RegionReplicator::RemoveMember(uint64_t member) {
  WEFT_LOG_INFO("region {}: member {} left the group", options_.region, NameOf(member));
  SetRecipient(member, false, false);
  auto link = links_.find(member);
  if (link != links_.end()) {
    for (uint32_t lane = 0; lane < link->second->lane_count(); ++lane) {
      link->second->lane(lane).ReleaseTickets();
    }
    links_.erase(link);
  }
  listed_since_.erase(member);
  outlet_.DropPeer(member);
  repair_pending_.push_back(member);
  auto pauses = purge_pauses_.find(member);
  if (pauses != purge_pauses_.end()) {
    store_.ResumeTombstonePurge();
    purge_pauses_.erase(pauses);
  }
  for (auto it = stabilizations_.begin(); it != stabilizations_.end();) {
    if (it->second.joiner == member) {
      it = stabilizations_.erase(it);
    } else {
      it->second.waiting.erase(member);
      ++it;
    }
  }
  stabilizing_.store(!stabilizations_.empty(), std::memory_order_release);
  if (join_) {
    join_->intent_pending.erase(member);
    for (uint32_t lane = 0; lane < options_.lanes; ++lane) {
      join_->flush_pending.erase({member, lane});
    }
    if (member == join_->provider &&
        (phase_ == JoinPhase::kIntent || phase_ == JoinPhase::kStabilize ||
         phase_ == JoinPhase::kImage)) {
      FailJoinAttempt("the provider left the group");
      return;
    }
    MaybeFinishFlush();
  }
}

void RegionReplicator::SendControl(uint64_t to, RecordKind kind, const ControlRecord& control,
                                   uint32_t lane) {
  auto link = links_.find(to);
  if (link == links_.end()) {
    WEFT_LOG_WARN("region {}: cannot send a control record to unknown member {:016x}",
                  options_.region, to);
    return;
  }
  auto body = std::make_shared<std::string>();
  EncodeControlBody(body.get(), control);
  if (link->second->lane(lane).Append(kind, std::move(body), nullptr)) {
    outlet_.WakeLane(link->second->info(), lane);
  }
}

void RegionReplicator::Fail(std::string_view reason) {
  if (!failure_reason_.empty()) {
    return;
  }
  failure_reason_ = std::string(reason);
  if (phase_ != JoinPhase::kNone) {
    EnterPhase(JoinPhase::kFailed);
  }
  state_.store(RegionState::kFailed, std::memory_order_release);
  WEFT_LOG_ERROR("region {}: FAILED, no longer serving: {}; restart this member to rejoin",
                 options_.region, reason);
}

void RegionReplicator::OnMembershipLost(std::string_view reason) {
  MutexLock lock(&mutex_);
  Fail(reason);
}

std::string RegionReplicator::failure_reason() const {
  MutexLock lock(&mutex_);
  return failure_reason_;
}

std::string RegionReplicator::NameOf(uint64_t member) const {
  if (member == self_.member_id) {
    return self_.name;
  }
  auto link = links_.find(member);
  if (link != links_.end()) {
    return link->second->info().name;
  }
  for (const membership::GroupMember& m : view_.members) {
    if (m.info.member_id == member) {
      return m.info.name;
    }
  }
  return fmt::format("{:016x}", member);
}

void RegionReplicator::OnLocalChange(const storage::EntryView* before,
                                     const storage::EntryView& after) {
  const std::shared_ptr<const RecipientSet> snapshot = recipients_.Begin();
  if (consumer_ != nullptr) {
    Emit(after.key,
         before != nullptr ? std::optional<std::string_view>(before->value) : std::nullopt, after);
  }
  // After the join, until the last JoinFlush, the post-image store is still the event index
  // for late live changes, so it must see local writes too (base shard lock, then its own).
  if (apply_mode_.load(std::memory_order_acquire) == ApplyMode::kBoth) {
    postimage_->WithKey(after.key, [&](storage::LockedKeys& keys) { keys.ApplyIfNewer(after); });
  }
  if (!snapshot->members.empty()) {
    Ship(*snapshot, after, before,
         options_.mode == ReplicationMode::kSync ? ScopedWriteTicket::Current() : nullptr);
  }
  recipients_.End(*snapshot);
}

void RegionReplicator::Ship(const RecipientSet& recipients, const storage::EntryView& entry,
                            const storage::EntryView* before,
                            const std::shared_ptr<WriteTicket>* ticket) {
  const uint32_t lane = LaneOf(entry.key);
  // Acknowledgements are timed only while an image paces itself by them: no clock read on
  // the write path otherwise.
  const int64_t now_us = timing_acks_.load(std::memory_order_relaxed) ? clock_.NowMonotonicUs() : 0;
  // One encoding per flavour, shared by every recipient's outbox.
  std::shared_ptr<std::string> plain;
  std::shared_ptr<std::string> with_pre;
  for (const Recipient& recipient : recipients.members) {
    std::shared_ptr<std::string>& body = recipient.wants_pre_image ? with_pre : plain;
    if (body == nullptr) {
      body = std::make_shared<std::string>();
      EncodeChangeBody(body.get(), entry, before, recipient.wants_pre_image);
    }
    if (recipient.peer->lane(lane).Append(RecordKind::kChange, body, ticket, now_us)) {
      outlet_.WakeLane(recipient.peer->info(), lane);
    }
  }
}

void RegionReplicator::RepairDeparted(uint64_t origin) {
  const std::vector<std::string> keys = recent_.KeysFrom(origin, clock_.NowUnixMs());
  uint64_t repaired = 0;
  for (const std::string& key : keys) {
    const std::shared_ptr<const RecipientSet> snapshot = recipients_.Begin();
    store_.WithKey(key, [&](storage::LockedKeys& locked) {
      const std::optional<storage::EntryView> held = locked.FindAny(key);
      if (held && held->version.origin == origin && !snapshot->members.empty()) {
        // No pre-image: we do not know what the departed member's change replaced.
        Ship(*snapshot, *held, nullptr, nullptr);
        ++repaired;
      }
    });
    recipients_.End(*snapshot);
  }
  repaired_keys_.fetch_add(repaired, std::memory_order_relaxed);
  WEFT_LOG_INFO(
      "region {}: re-sent {} of {} recently changed key(s) last written by departed "
      "member {:016x}",
      options_.region, repaired, keys.size(), origin);
}

Outbox* RegionReplicator::OutboxFor(uint64_t peer, uint32_t lane) {
  MutexLock lock(&mutex_);
  auto link = links_.find(peer);
  if (link == links_.end() || lane >= options_.lanes) {
    return nullptr;
  }
  return &link->second->lane(lane);
}

std::shared_ptr<PeerLink> RegionReplicator::PeerLinkFor(uint64_t peer) {
  MutexLock lock(&mutex_);
  auto link = links_.find(peer);
  return link == links_.end() ? nullptr : link->second;
}

ChannelOpen RegionReplicator::ChannelOpenFor(uint64_t peer, uint32_t lane) const {
  ChannelOpen open;
  open.region = options_.region;
  open.from = self_.member_id;
  open.to = peer;
  open.lane = lane;
  open.lanes = options_.lanes;
  return open;
}

void RegionReplicator::OnLaneResumed(uint64_t peer, uint32_t lane, uint64_t received_through) {
  MutexLock lock(&mutex_);
  auto link = links_.find(peer);
  if (link == links_.end() || lane >= options_.lanes) {
    return;
  }
  link->second->connected(lane).store(true, std::memory_order_relaxed);
  link->second->lane(lane).Rewind(received_through);
}

void RegionReplicator::OnAck(uint64_t peer, uint32_t lane, uint64_t received_through) {
  std::shared_ptr<PeerLink> link;
  {
    MutexLock lock(&mutex_);
    auto it = links_.find(peer);
    if (it == links_.end() || lane >= options_.lanes) {
      return;
    }
    link = it->second;
  }
  link->lane(lane).Acknowledge(
      received_through, timing_acks_.load(std::memory_order_relaxed) ? clock_.NowMonotonicUs() : 0);
}

void RegionReplicator::OnLaneClosed(uint64_t peer, uint32_t lane) {
  MutexLock lock(&mutex_);
  auto link = links_.find(peer);
  if (link == links_.end() || lane >= options_.lanes) {
    return;
  }
  link->second->connected(lane).store(false, std::memory_order_relaxed);
  // Suspicion, not a verdict (DESIGN §6): writes stop waiting for this peer; its records stay
  // for a resume, and the registry decides whether it is gone.
  link->second->lane(lane).ReleaseTickets();
}

RegionReplicator::InboundLane& RegionReplicator::Inbound(uint64_t from, uint32_t lane) {
  MutexLock lock(&inbound_mutex_);
  std::unique_ptr<InboundLane>& slot = inbound_[{from, lane}];
  if (slot == nullptr) {
    slot = std::make_unique<InboundLane>();
  }
  return *slot;
}

uint64_t RegionReplicator::ReceivedCounter(uint64_t from, uint32_t lane) const {
  MutexLock lock(&inbound_mutex_);
  auto it = inbound_.find({from, lane});
  return it == inbound_.end() ? 0 : it->second->received.load(std::memory_order_acquire);
}

uint64_t RegionReplicator::SentCounter(uint64_t to, uint32_t lane) {
  Outbox* outbox = OutboxFor(to, lane);
  return outbox == nullptr ? 0 : outbox->sent();
}

ReplicationStatus RegionReplicator::GetStatus() const {
  ReplicationStatus status;
  status.region = options_.region;
  status.state = state();
  status.mode = options_.mode;
  status.postimage_changes = postimage_changes_.load(std::memory_order_relaxed);
  status.repaired_keys = repaired_keys_.load(std::memory_order_relaxed);
  std::vector<std::pair<uint64_t, std::string>> peers;
  {
    MutexLock lock(&mutex_);
    status.phase = phase_;
    status.held_at = held_at_;
    status.members = view_.members;
    status.join_attempts = join_attempts_;
    const int64_t now_us = clock_.NowMonotonicUs();
    if (join_started_us_ != 0) {
      status.join_ms =
          ((join_finished_us_ != 0 ? join_finished_us_ : now_us) - join_started_us_) / 1000;
    }
    const std::optional<JoinAttempt>& join = join_ ? join_ : last_join_;
    if (join) {
      status.provider = join->provider_name;
      status.image_entries = join->entries;
      status.image_bytes = join->bytes;
      status.image_entries_estimate = join->entries_estimate;
      const int64_t end_us = join->image_finished_us != 0 ? join->image_finished_us : now_us;
      const int64_t elapsed_us = end_us - join->image_started_us;
      if (join->image_started_us != 0 && elapsed_us > 0) {
        status.rate_bytes_per_s = static_cast<uint64_t>(static_cast<double>(join->bytes) * 1e6 /
                                                        static_cast<double>(elapsed_us));
        if (join->image_finished_us == 0 && join->entries > 0 &&
            join->entries_estimate > join->entries) {
          const double per_entry_us =
              static_cast<double>(elapsed_us) / static_cast<double>(join->entries);
          status.eta_ms = static_cast<int64_t>(
              per_entry_us * static_cast<double>(join->entries_estimate - join->entries) / 1000);
        }
      }
    }
    if (postimage_ != nullptr && apply_mode_.load(std::memory_order_acquire) != ApplyMode::kBase) {
      status.postimage_keys = postimage_->KeyCount() + postimage_->TombstoneCount();
    }
    for (const auto& [id, link] : links_) {
      for (uint32_t lane = 0; lane < link->lane_count(); ++lane) {
        ChannelStatus channel;
        channel.peer = id;
        channel.peer_name = link->info().name;
        channel.outbound = true;
        channel.lane = lane;
        channel.connected = link->connected(lane).load(std::memory_order_relaxed);
        channel.sent = link->lane(lane).sent();
        channel.acked = link->lane(lane).acked();
        status.channels.push_back(std::move(channel));
      }
      peers.emplace_back(id, link->info().name);
    }
  }
  MutexLock lock(&inbound_mutex_);
  for (const auto& [key, lane] : inbound_) {
    ChannelStatus channel;
    channel.peer = key.first;
    channel.outbound = false;
    channel.lane = key.second;
    channel.connected = true;
    channel.received = lane->received.load(std::memory_order_acquire);
    for (const auto& [id, name] : peers) {
      if (id == key.first) {
        channel.peer_name = name;
      }
    }
    if (channel.peer_name.empty()) {
      channel.peer_name = fmt::format("{:016x}", key.first);
    }
    status.channels.push_back(std::move(channel));
  }
  return status;
}

}  // namespace weft::replication
