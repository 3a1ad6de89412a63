#include "weft/replication/replicator.h"

#include <algorithm>
#include <utility>

#include "weft/base/logging.h"

namespace weft::replication {

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

RegionReplicator::RegionReplicator(ReplicatorOptions options, storage::Store& store,
                                   storage::VersionSource& versions, membership::MemberInfo self,
                                   const Clock& clock, Random& random, Host& host,
                                   ChangeConsumer* consumer, ReplicatorObserver* observer)
    : options_(std::move(options)),
      self_(std::move(self)),
      store_(store),
      versions_(versions),
      clock_(clock),
      host_(host),
      observer_(observer),
      env_{options_, self_, host, clock, random},
      recent_(options_.recent_changes_capacity, options_.recent_changes_bytes_max,
              options_.recent_changes_window_ms),
      write_path_(options_.region, options_.mode, options_.lanes, store, consumer, clock,
                  [this](uint64_t epoch) { host_.Post([this, epoch] { OnDrained(epoch); }); }),
      peers_(env_, write_path_),
      applier_(options_.region, store, versions, consumer, recent_, clock,
               options_.postimage_shard_count),
      service_(
          env_, peers_, write_path_, store, [this] { return complete(); }, observer),
      driver_(env_, *this, peers_, applier_, write_path_, store, versions, recent_) {
  applier_.break_image_overwrites_postimage = options_.breaks.image_overwrites_postimage;
  applier_.break_stale_reconcile = options_.breaks.stale_reconcile;
  write_path_.set_break_ack_before_joiner_applies(options_.breaks.ack_before_joiner_applies);
}

RegionReplicator::~RegionReplicator() {
  store_.set_change_observer(nullptr);
  if (own_purge_paused_) {
    store_.ResumeTombstonePurge();
  }
}

void RegionReplicator::Start() {
  // Live changes may arrive as soon as the registry lists us, before the answer to EnterRegion:
  // they must find the post-image store. If we turn out to bootstrap, nobody else can have
  // written.
  applier_.BeginJoin();
  store_.set_change_observer(&write_path_);
  EnterRegion(0);
  host_.After(options_.tick_ms * 1000, [this] { Tick(); });
  PublishStatus();
}

void RegionReplicator::Stop() {
  stopped_ = true;
  peers_.StopAll();
}

void RegionReplicator::OnEntered(const RegistryReply& reply) {
  if (stopped_) {
    return;
  }
  if (absl::IsAlreadyExists(reply.status)) {
    // An earlier attempt took effect but its answer was lost: what we are is in the group.
    RegistryRequest request;
    request.op = RegistryRequest::Op::kReadGroup;
    request.region = options_.region;
    host_.Registry(std::move(request), [this](RegistryReply read) {
      const membership::GroupMember* self =
          read.status.ok() ? read.view.Find(self_.member_id) : nullptr;
      if (!read.status.ok() || self == nullptr) {
        EnterRegion(read.status.ok() ? options_.retry_min_ms * 1000 : options_.retry_max_ms * 1000);
        return;
      }
      RegistryReply entered;
      entered.entered.bootstrapped = self->state == membership::MemberState::kActive;
      entered.entered.group = read.view;
      OnEntered(entered);
    });
    return;
  }
  if (!reply.status.ok()) {
    if (absl::IsUnavailable(reply.status) || absl::IsDeadlineExceeded(reply.status) ||
        absl::IsAborted(reply.status) || absl::IsUnknown(reply.status)) {
      WEFT_LOG_WARN("region {}: entering the region failed ({}); retrying", options_.region,
                    std::string(reply.status.message()));
      EnterRegion(options_.retry_max_ms * 1000);
      return;
    }
    Fail(fmt::format("could not enter the region: {}", std::string(reply.status.message())));
    return;
  }
  const membership::GroupView& group = reply.entered.group;
  AdoptView(group);
  if (reply.entered.bootstrapped) {
    applier_.CancelJoin();
    SetState(RegionState::kActive);
    WEFT_LOG_INFO("region {}: bootstrapped as its first ACTIVE member (revision {})",
                  options_.region, group.revision);
    return;
  }
  store_.PauseTombstonePurge();
  own_purge_paused_ = true;
  SetState(RegionState::kInitializing);
  WEFT_LOG_INFO("region {}: joining a group of {} member(s) (revision {})", options_.region,
                group.members.size(), group.revision);
  driver_.Begin(group.revision);
}

void RegionReplicator::EnterRegion(int64_t delay_us) {
  host_.After(delay_us, [this] {
    RegistryRequest request;
    request.op = RegistryRequest::Op::kEnterRegion;
    request.region = options_.region;
    host_.Registry(std::move(request), [this](RegistryReply reply) { OnEntered(reply); });
  });
}

void RegionReplicator::OnGroupView(const membership::GroupView& view) {
  AdoptView(view);
  PublishStatus();
}

void RegionReplicator::AdoptView(const membership::GroupView& view) {
  if (view.revision < view_.revision) {
    return;  // a late delivery of an older view
  }
  view_ = view;
  bool self_listed = false;
  bool changed = false;
  std::set<uint64_t> listed;
  for (const membership::GroupMember& member : view.members) {
    if (member.info.member_id == self_.member_id) {
      self_listed = true;
      continue;
    }
    if (member.state == membership::MemberState::kLeaving) {
      continue;
    }
    listed.insert(member.info.member_id);
    const bool initializing = member.state == membership::MemberState::kInitializing;
    const Peers::Peer* peer = peers_.Find(member.info.member_id);
    if (peer == nullptr) {
      peers_.Add(member.info, view.revision, initializing);
      changed = true;
    } else if (initializing && view.revision > peer->active_since) {
      // A joiner gets pre-images from us before we accept another write (the rule that lets a
      // member become ACTIVE while others join). Only its JoinReleased turns them off.
      changed |= peers_.SetWantsPreImage(member.info.member_id, true);
    }
  }
  if (changed) {
    peers_.Publish();
  }
  std::vector<uint64_t> gone;
  for (const auto& [member, peer] : peers_.all()) {
    // A member we learned of from its JoinIntent may be missing from views older than its
    // entry; only a view that should list it and does not means it left.
    if (!listed.contains(member) && view.revision >= peer.listed_since) {
      gone.push_back(member);
    }
  }
  for (uint64_t member : gone) {
    RemoveMember(member, view.revision);
  }
  if (self_listed) {
    self_listed_ = true;
  } else if (self_listed_) {
    Fail(
        fmt::format("this member is missing from the region's group (registry revision {}): "
                    "its lease expired, or a member expelled it for falling too far behind",
                    view.revision));
  }
  driver_.OnGroupView(view);
  service_.CheckStabilizations();
}

void RegionReplicator::RemoveMember(uint64_t member, int64_t revision) {
  WEFT_LOG_INFO("region {}: member {} left the group", options_.region, NameOf(member));
  peers_.Remove(member);
  peers_.Publish();
  ack_progress_.erase(ack_progress_.lower_bound({member, 0}),
                      ack_progress_.lower_bound({member + 1, 0}));
  std::erase_if(serves_, [&](const auto& serve) { return serve->joiner() == member; });
  service_.OnMemberLeft(member);
  driver_.OnMemberLeft(member, revision);
  if (complete()) {
    RepairDeparted(member);
  } else {
    repairs_deferred_.push_back(member);
  }
}

void RegionReplicator::SetState(RegionState state) {
  if (state_.load(std::memory_order_relaxed) == state) {
    return;
  }
  state_.store(state, std::memory_order_release);
  if (observer_ != nullptr) {
    observer_->OnRegionState(state);
  }
  PublishStatus();
}

void RegionReplicator::Fail(std::string_view reason) {
  if (!failure_.empty()) {
    return;
  }
  failure_ = std::string(reason);
  driver_.Abort();
  SetState(RegionState::kFailed);
  WEFT_LOG_ERROR("region {}: FAILED, no longer serving: {}; restart this member to rejoin",
                 options_.region, reason);
  PublishStatus();
}

void RegionReplicator::OnMembershipLost(std::string_view reason) {
  Fail(reason);
}

void RegionReplicator::OnBecameActive(const membership::GroupView& view) {
  AdoptView(view);
  if (!failure_.empty()) {
    return;  // the view showed this member gone: FAILED stays
  }
  // Pre-images go exactly to the members this view lists as joining: one that turned ACTIVE
  // before us will never send us its JoinComplete (it did not know us ACTIVE), so pre-images
  // set while we were joining must not outlive this moment.
  for (const membership::GroupMember& member : view.members) {
    if (member.info.member_id != self_.member_id && !options_.breaks.keep_pre_images_at_active) {
      peers_.SetWantsPreImage(member.info.member_id,
                              member.state == membership::MemberState::kInitializing);
    }
  }
  // Until the join is released, local writes keep the post-image store (the event index)
  // current: in place before the first write is accepted.
  peers_.set_event_index(applier_.index(), applier_.index_released());
  peers_.Publish();
  if (own_purge_paused_) {
    store_.ResumeTombstonePurge();
    own_purge_paused_ = false;
  }
  SetState(RegionState::kActive);
  WEFT_LOG_INFO("region {}: ACTIVE ({} keys; {} post-image entries, {} corrected by the image)",
                options_.region, store_.KeyCount(), applier_.index_entries(),
                applier_.corrections());
  for (uint64_t origin : std::exchange(repairs_deferred_, {})) {
    RepairDeparted(origin);
  }
}

void RegionReplicator::OnJoinAborted(std::string reason) {
  Fail(reason);
}

void RegionReplicator::OnJoinPhase(JoinPhase from, JoinPhase to) {
  if (observer_ != nullptr) {
    observer_->OnJoinPhase(from, to);
  }
  PublishStatus();
}

void RegionReplicator::OnDrained(uint64_t epoch) {
  service_.OnDrained(epoch);
  driver_.OnDrained(epoch);
}

void RegionReplicator::ApplyRecord(uint64_t from, uint32_t lane, const Record& record) {
  const ControlRecord& control = record.control;
  switch (record.kind) {
    case RecordKind::kChange:
      if (observer_ != nullptr) {
        observer_->OnChangeArriving(from, record.change);
      }
      applier_.Apply(record.change);
      if (observer_ != nullptr) {
        observer_->OnChangeApplied(from, record.change);
      }
      break;
    case RecordKind::kJoinIntent:
      service_.OnJoinIntent(from, control);
      break;
    case RecordKind::kIntentAck:
      driver_.OnIntentAck(from, control);
      break;
    case RecordKind::kStateMarker:
      service_.OnStateMarker(from, control);
      break;
    case RecordKind::kStabilized:
      driver_.OnStabilized(from, control);
      break;
    case RecordKind::kJoinComplete:
      service_.OnJoinComplete(from, control);
      break;
    case RecordKind::kJoinFlush:
      driver_.OnJoinFlush(from, lane, control);
      break;
    case RecordKind::kJoinReleased:
      service_.OnJoinReleased(from, control);
      break;
    case RecordKind::kRepairDone:
      driver_.OnRepairDone(from, lane, control.member);
      break;
  }
  if (service_.stabilizations() > 0) {
    service_.CheckStabilizations();  // a reception counter is about to move past this record
  }
}

std::shared_ptr<ChannelSession> RegionReplicator::AcceptLane(uint64_t peer, const ChannelOpen& open,
                                                             Channel& channel, Status* refusal) {
  if (open.from != peer) {
    *refusal = absl::PermissionDeniedError("ChannelOpen names another member than the peer");
  } else if (open.to != self_.member_id) {
    *refusal = absl::InvalidArgumentError(fmt::format(
        "channel addressed to member {:016x}, this is {:016x}", open.to, self_.member_id));
  } else if (open.lanes != options_.lanes) {
    *refusal = absl::InvalidArgumentError(
        fmt::format("peer uses {} lanes, this member {}", open.lanes, options_.lanes));
  } else {
    InboundLane& lane = peers_.Inbound(open.from, open.lane);
    *refusal = LaneReceiver::Admit(open, lane);
    if (refusal->ok()) {
      auto receiver = std::make_shared<LaneReceiver>(channel, open, lane, *this, clock_,
                                                     options_.silence_timeout_ms * 1000);
      receiver->Resume();
      peers_.AddReceiver(receiver);
      return receiver;
    }
  }
  return nullptr;
}

std::shared_ptr<ChannelSession> RegionReplicator::AcceptImage(uint64_t peer,
                                                              const ImageRequest& request,
                                                              Channel& channel, Status* refusal) {
  if (request.joiner != peer && !options_.breaks.admit_any_requester) {
    *refusal = absl::PermissionDeniedError("an image may be requested only by its joiner");
    return nullptr;
  }
  *refusal = service_.AdmitImage(request.joiner, request.join_id);
  if (!refusal->ok()) {
    return nullptr;
  }
  WEFT_LOG_INFO("region {}: streaming the image to {} (join {:016x}, {} keys)", options_.region,
                NameOf(request.joiner), request.join_id, store_.KeyCount());
  ImageServe::Options serve_options;
  serve_options.chunk_bytes = options_.image_chunk_bytes;
  serve_options.pacer.chunk_bytes = options_.image_chunk_bytes;
  serve_options.pacer.rate_limit_bytes_per_s = options_.image_rate_limit_bytes_per_s;
  serve_options.pacer.paced = options_.pace_images;
  serve_options.pacer.pace_target_us = options_.image_pace_target_us;
  auto serve = std::make_shared<ImageServe>(host_, clock_, store_, channel, request.joiner,
                                            request.join_id, request.credit_bytes, serve_options);
  serves_.push_back(serve);
  write_path_.set_timing_acks(options_.pace_images);
  serve->Start();
  return serve;
}

bool RegionReplicator::serving() const {
  return complete() && clock_.NowMonotonicUs() < in_touch_until_us_.load(std::memory_order_acquire);
}

std::string RegionReplicator::not_serving_reason() const {
  if (!complete() || serving()) {
    return {};
  }
  return fmt::format(
      "this member has not heard from every ACTIVE member of the group for {} ms "
      "(a partition?): it serves again once it does, or rejoins if it was "
      "dropped",
      options_.silence_timeout_ms);
}

void RegionReplicator::RefreshReadGuard() {
  if (options_.mode != ReplicationMode::kSync) {
    return;
  }
  // Every ACTIVE member of the group may expel this one once it cannot reach it for
  // unreachable_timeout_ms; stop serving reads well before, once one has not answered for
  // silence_timeout_ms. (A joiner expels nobody.)
  int64_t until = INT64_MAX;
  for (const membership::GroupMember& member : view_.members) {
    if (member.info.member_id == self_.member_id ||
        member.state != membership::MemberState::kActive) {
      continue;
    }
    const Peers::Peer* peer = peers_.Find(member.info.member_id);
    if (peer == nullptr) {
      continue;
    }
    int64_t heard_us = 0;
    for (const std::shared_ptr<LaneSender>& sender : peer->senders) {
      heard_us = std::max(heard_us, sender->heard_us());
    }
    until = std::min(until, heard_us + options_.silence_timeout_ms * 1000);
  }
  in_touch_until_us_.store(until, std::memory_order_release);
}

void RegionReplicator::Tick() {
  if (stopped_) {
    return;
  }
  RefreshReadGuard();
  peers_.OnTick();
  service_.OnTick();
  driver_.OnTick();
  PaceImages();
  ExpelLaggards();
  PublishStatus();
  host_.After(options_.tick_ms * 1000, [this] { Tick(); });
}

void RegionReplicator::PaceImages() {
  std::erase_if(serves_, [](const auto& serve) { return serve->finished(); });
  const std::optional<int64_t> latency_us = peers_.TakeMaxAckLatencyUs();
  for (const std::shared_ptr<ImageServe>& serve : serves_) {
    serve->Pace(latency_us);
  }
  write_path_.set_timing_acks(options_.pace_images && !serves_.empty());
}

void RegionReplicator::ExpelLaggards() {
  // Only a member holding the whole region judges others: a joiner that reaches nobody (a wrong
  // secret, a partition) must not expel the members it cannot reach.
  if (!complete()) {
    ack_progress_.clear();
    return;
  }
  const int64_t now_us = clock_.NowMonotonicUs();
  std::map<std::pair<uint64_t, uint32_t>, AckProgress> progress;
  std::vector<std::pair<uint64_t, std::string>> laggards;
  for (const auto& [member, peer] : peers_.all()) {
    std::string problem;
    int64_t reached_us = 0;  // the last time any lane to it streamed (now if one does)
    bool waiting_any = false;
    for (const std::shared_ptr<LaneSender>& sender : peer.senders) {
      reached_us =
          std::max(reached_us, sender->down_since_us() == 0 ? now_us : sender->down_since_us());
      waiting_any |= sender->outbox().sent() > sender->outbox().acked();
    }
    if (waiting_any && now_us - reached_us > options_.unreachable_timeout_ms * 1000) {
      problem =
          fmt::format("unreachable for {} ms with changes waiting", (now_us - reached_us) / 1000);
    }
    for (uint32_t lane = 0; lane < peer.outboxes->lanes.size() && problem.empty(); ++lane) {
      const Outbox& outbox = *peer.outboxes->lanes[lane];
      if (outbox.overflowed()) {
        problem = fmt::format("{} bytes waiting on lane {} (limit {})", outbox.bytes(), lane,
                              options_.outbox_bytes_max);
        break;
      }
      const uint64_t acked = outbox.acked();
      const uint64_t waiting = outbox.sent() - acked;
      if (waiting == 0) {
        continue;
      }
      const auto key = std::make_pair(member, lane);
      const auto seen = ack_progress_.find(key);
      const AckProgress current = seen != ack_progress_.end() && seen->second.acked == acked
                                      ? seen->second
                                      : AckProgress{acked, now_us};
      progress.emplace(key, current);
      if (now_us - current.since_us > options_.ack_timeout_ms * 1000) {
        problem = fmt::format("no acknowledgement on lane {} for {} ms ({} changes waiting)", lane,
                              (now_us - current.since_us) / 1000, waiting);
      }
    }
    if (!problem.empty()) {
      laggards.emplace_back(member, std::move(problem));
    }
  }
  ack_progress_ = std::move(progress);
  for (const auto& [member, problem] : laggards) {
    if (!expelling_.insert(member).second) {
      continue;  // already asked; the view will drop it
    }
    // Its backlog would grow without end (or sync writes would wait on it without end).
    // Dropping it only here would let it go on serving a copy that misses our changes, so it
    // leaves the group for everyone; the view then removes it here too.
    const std::string name = NameOf(member);
    RegistryRequest request;
    request.op = RegistryRequest::Op::kExpel;
    request.region = options_.region;
    request.member = member;
    host_.Registry(std::move(request), [this, member, name, problem](RegistryReply reply) {
      expelling_.erase(member);
      if (reply.status.ok()) {
        WEFT_LOG_ERROR("region {}: expelled member {} from the group: {}", options_.region, name,
                       problem);
      } else {
        WEFT_LOG_ERROR("region {}: member {} is too far behind ({}), but expelling it failed: {}",
                       options_.region, name, problem, reply.status.ToString());
      }
    });
  }
}

void RegionReplicator::RepairDeparted(uint64_t origin) {
  const std::vector<RecentChanges::Change> changes = recent_.From(origin, clock_.NowUnixMs());
  uint64_t repaired = 0;
  for (const RecentChanges::Change& change : changes) {
    const std::shared_ptr<const RecipientSet> set = write_path_.Begin();
    store_.WithKey(change.key, [&](storage::LockedKeys& keys) {
      const std::optional<storage::EntryView> held = keys.FindAny(change.key);
      if (held && held->version.origin == origin && !set->members.empty()) {
        // The pre-image is what this member held before that very change, when it knows it.
        const bool pre_known = change.pre_known && held->version == change.version;
        if (options_.breaks.repair_without_pre_image) {
          write_path_.Resend(*set, *held, /*pre_known=*/true, std::nullopt);  // "was absent"
        } else {
          write_path_.Resend(*set, *held, pre_known, change.pre_value);
        }
        ++repaired;
      }
    });
    write_path_.End(*set);
  }
  repaired_keys_ += repaired;
  // Behind the repairs on every lane: joiners wait for it before they release their join.
  ControlRecord done;
  done.member = origin;
  for (const auto& [id, peer] : peers_.all()) {
    for (uint32_t lane = 0; lane < options_.lanes; ++lane) {
      peers_.SendControl(id, RecordKind::kRepairDone, done, lane);
    }
  }
  WEFT_LOG_INFO(
      "region {}: re-sent {} of {} recently changed key(s) last written by departed "
      "member {:016x}",
      options_.region, repaired, changes.size(), origin);
}

void RegionReplicator::HoldPhase(JoinPhase phase, bool hold) {
  host_.Post([this, phase, hold] {
    driver_.HoldPhase(phase, hold);
    PublishStatus();
  });
}

std::string RegionReplicator::NameOf(uint64_t member) const {
  if (member == self_.member_id) {
    return self_.name;
  }
  for (const auto& [id, peer] : peers_.all()) {
    if (id == member) {
      return peer.info.name;
    }
  }
  for (const membership::GroupMember& m : view_.members) {
    if (m.info.member_id == member) {
      return m.info.name;
    }
  }
  return membership::FormatMemberId(member);
}

uint64_t RegionReplicator::ReceivedCounter(uint64_t from, uint32_t lane) const {
  auto it = peers_.inbound().find({from, lane});
  return it == peers_.inbound().end() ? 0 : it->second.received;
}

uint64_t RegionReplicator::SentCounter(uint64_t to, uint32_t lane) const {
  auto it = peers_.all().find(to);
  return it == peers_.all().end() ? 0 : it->second.outboxes->lanes[lane]->sent();
}

std::string RegionReplicator::failure_reason() const {
  MutexLock lock(&status_mutex_);
  return published_.failure;
}

ReplicationStatus RegionReplicator::GetStatus() const {
  MutexLock lock(&status_mutex_);
  return published_;
}

void RegionReplicator::PublishStatus() {
  ReplicationStatus status;
  status.region = options_.region;
  status.state = state();
  status.mode = options_.mode;
  status.failure = failure_;
  status.postimage_changes = applier_.postimage_changes();
  status.postimage_keys = applier_.index_entries();
  status.repaired_keys = repaired_keys_;
  status.members = view_.members;
  const JoinProgress progress = driver_.progress();
  status.phase = progress.phase;
  status.held_at = progress.held_at;
  status.waiting = progress.waiting;
  status.provider = progress.provider;
  status.join_attempts = progress.attempts;
  status.image_entries = progress.image_entries;
  status.image_bytes = progress.image_bytes;
  status.image_entries_estimate = progress.image_entries_estimate;
  const int64_t now_us = clock_.NowMonotonicUs();
  if (progress.join_started_us != 0) {
    status.join_ms = ((progress.join_finished_us != 0 ? progress.join_finished_us : now_us) -
                      progress.join_started_us) /
                     1000;
  }
  const int64_t end_us = progress.image_finished_us != 0 ? progress.image_finished_us : now_us;
  const int64_t elapsed_us = end_us - progress.image_started_us;
  if (progress.image_started_us != 0 && elapsed_us > 0) {
    status.rate_bytes_per_s = static_cast<uint64_t>(static_cast<double>(progress.image_bytes) *
                                                    1e6 / static_cast<double>(elapsed_us));
    if (progress.image_finished_us == 0 && progress.image_entries > 0 &&
        progress.image_entries_estimate > progress.image_entries) {
      const double per_entry_us =
          static_cast<double>(elapsed_us) / static_cast<double>(progress.image_entries);
      status.eta_ms = static_cast<int64_t>(
          per_entry_us *
          static_cast<double>(progress.image_entries_estimate - progress.image_entries) / 1000);
    }
  }
  for (const auto& [id, peer] : peers_.all()) {
    for (uint32_t lane = 0; lane < peer.outboxes->lanes.size(); ++lane) {
      const Outbox& outbox = *peer.outboxes->lanes[lane];
      ChannelStatus channel;
      channel.peer = id;
      channel.peer_name = peer.info.name;
      channel.outbound = true;
      channel.lane = lane;
      channel.connected = peer.senders[lane]->connected();
      channel.stream = outbox.stream_id();
      channel.sent = outbox.sent();
      channel.acked = outbox.acked();
      status.channels.push_back(std::move(channel));
    }
  }
  for (const auto& [key, lane] : peers_.inbound()) {
    ChannelStatus channel;
    channel.peer = key.first;
    channel.peer_name = NameOf(key.first);
    channel.outbound = false;
    channel.lane = key.second;
    channel.connected = true;
    channel.stream = lane.stream_id;
    channel.received = lane.received;
    status.channels.push_back(std::move(channel));
  }
  MutexLock lock(&status_mutex_);
  published_ = std::move(status);
}

}  // namespace weft::replication
