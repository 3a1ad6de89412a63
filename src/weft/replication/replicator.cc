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
      consumer_(consumer),
      recent_(options_.recent_changes_capacity, options_.recent_changes_bytes_max,
              options_.recent_changes_window_ms),
      write_path_(options_.region, options_.mode, options_.lanes, store, consumer, clock,
                  [this](uint64_t epoch) { host_.Post([this, epoch] { OnDrained(epoch); }); }),
      roles_(std::make_unique<Roles>(*this)) {
  write_path_.set_break_ack_before_joiner_applies(options_.breaks.ack_before_joiner_applies);
}

RegionReplicator::Roles::Roles(RegionReplicator& r)
    : peers(r.env_, r.write_path_, r.peer_history_),
      applier(r.options_.region, r.store_, r.versions_, r.consumer_, r.recent_, r.clock_,
              r.options_.postimage_shard_count),
      service(
          r.env_, peers, r.write_path_, r.store_, [&r] { return r.complete(); },
          [&r](int64_t revision) { return r.ViewAtLeast(revision); }, r.observer_),
      driver(r.env_, r, peers, applier, r.write_path_, r.store_, r.versions_, r.recent_) {
  applier.break_image_overwrites_postimage = r.options_.breaks.image_overwrites_postimage;
  applier.break_stale_reconcile = r.options_.breaks.stale_reconcile;
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
  roles_->applier.BeginJoin();
  store_.set_change_observer(&write_path_);
  EnterRegion(0);
  host_.After(options_.tick_ms * 1000, [this] { Tick(); });
  PublishStatus();
}

void RegionReplicator::Stop() {
  stopped_ = true;
  roles_->peers.StopAll();
}

void RegionReplicator::OnEntered(const RegistryReply& reply) {
  if (stopped_ || !failure_.empty()) {
    return;
  }
  if (absl::IsAlreadyExists(reply.status)) {
    // An earlier attempt took effect but its answer was lost: what we are is in the group.
    RegistryRequest request;
    request.op = RegistryRequest::Op::kReadGroup;
    request.region = options_.region;
    host_.Registry(std::move(request), [this, generation = generation_](RegistryReply read) {
      if (generation != generation_) {
        return;
      }
      const membership::GroupMember* self =
          read.status.ok() ? read.view.Find(self_.member_id) : nullptr;
      if (!read.status.ok() || self == nullptr) {
        EnterRegion(read.status.ok() ? options_.retry_min_ms * 1000 : options_.retry_max_ms * 1000);
        return;
      }
      RegistryReply entered;
      entered.entered.bootstrapped = self->state == membership::MemberState::kActive;
      // Whether it still holds the region is not in the group: assume it does. The copy is
      // kept until the holding is given up, which is harmless if there was none.
      entered.entered.holds = !entered.entered.bootstrapped;
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
    if (absl::IsFailedPrecondition(reply.status)) {
      // This member's registration ended before it could enter (its new lease expired too: etcd
      // thawed after a freeze, seed 2739). The news of the lost lease found it rejoining and was
      // dropped; register again. Reregister tells a member that cannot (it deregistered).
      WEFT_LOG_WARN("region {}: entering the region failed ({}); registering again",
                    options_.region, std::string(reply.status.message()));
      Reregister();
      return;
    }
    Fail(fmt::format("could not enter the region: {}", std::string(reply.status.message())));
    return;
  }
  const membership::GroupView& group = reply.entered.group;
  rejoining_ = false;
  rejoin_reason_.clear();
  AdoptView(group);
  // This member's entry: peers tell a later entry of it from this one (its lanes name it, the
  // join names it).
  const membership::GroupMember* entry = group.Find(self_.member_id);
  const int64_t entered_at =
      entry != nullptr && entry->entered_at != 0 ? entry->entered_at : group.revision;
  roles_->peers.SetSelfEntry(entered_at);
  if (reply.entered.bootstrapped) {
    roles_->applier.CancelJoin();
    WEFT_LOG_INFO("region {}: {} (revision {})", options_.region,
                  reply.entered.reformed
                      ? "re-formed the group from this member's own copy: nobody was ACTIVE"
                      : "bootstrapped as its first ACTIVE member",
                  group.revision);
    TurnActive();
    return;
  }
  store_.PauseTombstonePurge();
  own_purge_paused_ = true;
  SetState(RegionState::kInitializing);
  WEFT_LOG_INFO("region {}: joining a group of {} member(s) (revision {})", options_.region,
                group.members.size(), group.revision);
  entry_to_join_ = entered_at;
  join_own_copy_ = reply.entered.holds;
  if (join_own_copy_ && options_.breaks.give_up_holding_on_entry) {
    join_own_copy_ = false;  // as before seed 989: the holding went with the entry
    RegistryRequest give_up;
    give_up.op = RegistryRequest::Op::kGiveUpHolding;
    give_up.region = options_.region;
    host_.Registry(std::move(give_up), [](const RegistryReply&) {});
  }
  ClearCopyThenJoin();
}

void RegionReplicator::ClearCopyThenJoin() {
  // Whatever this member held (it is rejoining) is replaced by the image; the join starts once
  // it is gone. A client write that passed the serving check before the rejoin may still be
  // applying: clearing before it ends would leave its change behind, newer than the image's
  // and held by nobody else (seed 2072).
  if (!entry_to_join_ || !write_path_.Drained(rejoin_epoch_)) {
    return;
  }
  const int64_t entered_at = *std::exchange(entry_to_join_, std::nullopt);
  if (join_own_copy_) {
    // It still holds the region: the copy stays until an image is about to replace it, in case
    // nobody is left to join from (JoinDriver).
    roles_->driver.Begin(entered_at, /*own_copy=*/true);
    return;
  }
  storage::Store& store = store_;
  host_.Offload([&store] { store.Clear(); },
                [this, entered_at, generation = generation_] {
                  if (generation == generation_) {
                    roles_->driver.Begin(entered_at, /*own_copy=*/false);
                  }
                });
}

void RegionReplicator::EnterRegion(int64_t delay_us) {
  host_.After(delay_us, [this, generation = generation_] {
    if (generation != generation_) {
      return;
    }
    RegistryRequest request;
    request.op = RegistryRequest::Op::kEnterRegion;
    request.region = options_.region;
    host_.Registry(std::move(request), [this, generation](RegistryReply reply) {
      if (generation == generation_) {
        OnEntered(reply);
      }
    });
  });
}

void RegionReplicator::OnGroupView(const membership::GroupView& view) {
  AdoptView(view);
  PublishStatus();
}

bool RegionReplicator::ViewAtLeast(int64_t revision) {
  if (view_.revision >= revision) {
    return true;
  }
  if (!view_read_pending_) {
    view_read_pending_ = true;
    RegistryRequest request;
    request.op = RegistryRequest::Op::kReadGroup;
    request.region = options_.region;
    host_.Registry(std::move(request), [this, generation = generation_](RegistryReply read) {
      view_read_pending_ = false;
      if (generation != generation_ || stopped_ || !failure_.empty() || !read.status.ok()) {
        return;  // a failed read is asked again by the next check (every tick)
      }
      OnGroupView(read.view);
    });
  }
  return false;
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
    ForgetEarlierEntry(member.info.member_id, member.entered_at);
    // A joiner (not a late view of one that released its join already).
    const bool initializing = member.state == membership::MemberState::kInitializing &&
                              roles_->peers.JoinsAsOf(member.info.member_id, view.revision);
    const Peers::Peer* peer = roles_->peers.Find(member.info.member_id);
    if (peer == nullptr) {
      roles_->peers.Add(member.info, view.revision, initializing, member.entered_at);
      changed = true;
    } else if (initializing) {
      // A joiner gets pre-images from us before we accept another write (the rule that lets a
      // member become ACTIVE while others join). Only its JoinReleased turns them off.
      changed |= roles_->peers.SetWantsPreImage(member.info.member_id, true);
    }
  }
  if (changed) {
    roles_->peers.Publish();
  }
  std::vector<uint64_t> gone;
  for (const auto& [member, peer] : roles_->peers.all()) {
    // A member we learned of from its JoinIntent may be missing from views older than its
    // entry; only a view that should list it and does not means it left.
    if (!listed.contains(member) && view.revision >= peer.listed_since) {
      gone.push_back(member);
    }
  }
  for (uint64_t member : gone) {
    // Its entry is over as of this view: nothing more of it is applied here, even before the
    // registry agrees to release the writes waiting on it (DropDeparted). A member dropped
    // unaware goes on writing, and an ACTIVE peer that applied and acknowledged those writes
    // let it acknowledge sync writes a joiner that never knew it would not see (seed 4937).
    roles_->peers.EndInbound(member, view.revision);
    DropDeparted(member, view.revision);
  }
  if (self_listed) {
    self_listed_ = true;
  } else if (self_listed_) {
    Rejoin(
        fmt::format("this member is missing from the region's group (registry revision {}): "
                    "its lease expired, or a member expelled it",
                    view.revision));
    return;
  }
  roles_->driver.OnGroupView(view);
  roles_->service.CheckStabilizations();
}

void RegionReplicator::ForgetEarlierEntry(uint64_t member, int64_t entered_at) {
  const Peers::Peer* peer = roles_->peers.Find(member);
  if (peer == nullptr || peer->entered_at == 0 || peer->entered_at >= entered_at) {
    return;
  }
  // It left (its lease expired, or it was expelled) and entered again, before any view here
  // showed it gone. It rejoins with an empty copy and new streams: the lanes, backlog and join
  // state of its earlier entry go now. Its holding went when it entered as a joiner. Only the
  // earlier entry's inbound lanes go: the stream this news came on may be the new entry's.
  WEFT_LOG_INFO("region {}: member {} entered the group again (revision {}, was {})",
                options_.region, NameOf(member), entered_at, peer->entered_at);
  if (complete()) {
    // Nobody dropped the earlier entry's holding, and the new entry keeps it (registry.h): it
    // may re-form the group from its copy, which lacks the writes still waiting for the earlier
    // entry. They are abandoned (their outcome unknown), never acknowledged.
    for (const std::unique_ptr<Outbox>& outbox : peer->outboxes->lanes) {
      outbox->AbandonTickets();
    }
  }
  RemoveMember(member, entered_at, entered_at - 1);
}

void RegionReplicator::DropDeparted(uint64_t member, int64_t revision) {
  if (!complete()) {
    // A joiner confirms nobody's writes: nothing to protect. A view of `revision` does not list
    // it: every entry it had is over.
    RemoveMember(member, revision, revision);
    return;
  }
  const Peers::Peer* peer = roles_->peers.Find(member);
  if (peer == nullptr) {
    return;  // gone already
  }
  DropDepartedEntry(member, revision, peer->entered_at);
}

void RegionReplicator::DropDepartedEntry(uint64_t member, int64_t revision, int64_t entered_at) {
  const Peers::Peer* peer = roles_->peers.Find(member);
  if (peer == nullptr || peer->entered_at != entered_at || !dropping_.insert(member).second) {
    return;  // gone already, or it entered again meanwhile (seed 479), or asked already
  }
  // Until the registry stops counting it as a holder, the group must not go on without it: a
  // stale copy must never re-form the group (registry.h). Writes waiting on it wait a round trip
  // longer.
  RegistryRequest request;
  request.op = RegistryRequest::Op::kDropHolder;
  request.region = options_.region;
  request.member = member;
  host_.Registry(std::move(request), [this, member, revision, entered_at,
                                      generation = generation_](RegistryReply reply) {
    if (generation != generation_) {
      return;
    }
    dropping_.erase(member);
    if (reply.status.ok()) {
      // A peer of a later entry (it came back meanwhile) stays.
      const Peers::Peer* peer = roles_->peers.Find(member);
      if (!view_.Contains(member) && peer != nullptr && peer->entered_at == entered_at) {
        RemoveMember(member, revision, revision);
      }
      return;
    }
    if (absl::IsFailedPrecondition(reply.status)) {
      // This member is no longer ACTIVE: its own lease ended too (etcd thawed after a freeze
      // expires every lease it missed, one by one), and the view saying so is on its way. The
      // writes waiting on `member` must not be released: the group that goes on may re-form
      // from `member`'s copy, which lacks them (integration test_etcd_frozen..., sim freezes).
      // Rejoining abandons them; until then, ask again.
      WEFT_LOG_INFO("region {}: cannot drop the holding of departed member {}: {}", options_.region,
                    NameOf(member), reply.status.ToString());
    } else {
      WEFT_LOG_WARN("region {}: dropping the holding of departed member {} failed ({}); retrying",
                    options_.region, NameOf(member), reply.status.ToString());
    }
    host_.After(options_.retry_min_ms * 1000, [this, member, revision, entered_at, generation] {
      if (generation == generation_ && !view_.Contains(member)) {
        DropDepartedEntry(member, revision, entered_at);
      }
    });
  });
}

void RegionReplicator::RemoveMember(uint64_t member, int64_t revision, int64_t entries_through) {
  WEFT_LOG_INFO("region {}: member {} left the group", options_.region, NameOf(member));
  const Peers::Peer* peer = roles_->peers.Find(member);
  const int64_t departed_entry = peer != nullptr ? peer->entered_at : entries_through;
  roles_->peers.Remove(member, entries_through);
  roles_->peers.Publish();
  ack_progress_.erase(ack_progress_.lower_bound({member, 0}),
                      ack_progress_.lower_bound({member + 1, 0}));
  std::erase_if(serves_, [&](const auto& serve) { return serve->joiner() == member; });
  roles_->service.OnMemberLeft(member);
  roles_->driver.OnMemberLeft(member, revision, departed_entry);
  if (complete()) {
    RepairDeparted(member);
  } else {
    repairs_deferred_.emplace_back(member, departed_entry);
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
  roles_->driver.Abort();
  SetState(RegionState::kFailed);
  WEFT_LOG_ERROR("region {}: FAILED, no longer serving: {}; restart this member to rejoin",
                 options_.region, reason);
  PublishStatus();
}

void RegionReplicator::OnMembershipLost(std::string_view reason, uint64_t registration) {
  if (registration < registration_) {
    WEFT_LOG_INFO("region {}: ignoring late news that registration {} lost its lease (now {})",
                  options_.region, registration, registration_);
    return;
  }
  Rejoin(reason);
}

void RegionReplicator::Rejoin(std::string_view reason) {
  if (stopped_ || !failure_.empty() || rejoining_) {
    return;
  }
  WEFT_LOG_WARN("region {}: {}; rejoining the group in place", options_.region, reason);
  rejoining_ = true;
  ++rejoins_;
  ++generation_;
  entry_to_join_.reset();  // a join that was waiting to begin belongs to the entry that ended
  // Writes still waiting for acknowledgements cannot be confirmed by a group this member is no
  // longer in: their clients learn that their outcome is unknown.
  for (const auto& [id, peer] : roles_->peers.all()) {
    for (const std::unique_ptr<Outbox>& outbox : peer.outboxes->lanes) {
      outbox->AbandonTickets();
    }
  }
  for (const std::shared_ptr<ImageServe>& serve : serves_) {
    serve->Abandon();
  }
  serves_.clear();
  write_path_.set_timing_acks(false);
  // Not serving first, then the new epoch: a client write snapshots the set before it checks
  // that the region serves, so one that sees the new epoch is refused, and one that passed the
  // check began before the epoch and is waited for before the copy is cleared (OnEntered).
  SetState(RegionState::kInitializing);
  // Writes that began before may still be using the index the old roles kept.
  rejoin_epoch_ = write_path_.ReplaceUnconfirmable();
  write_path_.RetireIndex(roles_->applier.ReleaseIndex(), rejoin_epoch_);
  if (own_purge_paused_) {
    store_.ResumeTombstonePurge();
    own_purge_paused_ = false;
  }
  // Fresh roles: new lanes (new streams), no join state. The copy stays until an image replaces
  // it, or re-forms the group if nobody is ACTIVE.
  roles_ = std::make_unique<Roles>(*this);
  view_ = membership::GroupView{};
  self_listed_ = false;
  ack_progress_.clear();
  expelling_.clear();
  dropping_.clear();
  repairs_deferred_.clear();
  in_touch_until_us_.store(INT64_MAX, std::memory_order_release);
  roles_->applier.BeginJoin();
  rejoin_reason_ = std::string(reason);
  if (observer_ != nullptr) {
    observer_->OnRejoin();
  }
  Reregister();
  PublishStatus();
}

void RegionReplicator::Reregister() {
  RegistryRequest request;
  request.op = RegistryRequest::Op::kReregister;
  host_.Registry(std::move(request), [this, generation = generation_](RegistryReply reply) {
    if (generation != generation_ || stopped_) {
      return;
    }
    if (reply.status.ok()) {
      registration_ = std::max(registration_, reply.registration);
      EnterRegion(0);
      return;
    }
    if (absl::IsFailedPrecondition(reply.status)) {
      Fail(fmt::format("cannot register again: {}", std::string(reply.status.message())));
      return;
    }
    WEFT_LOG_WARN("region {}: registering again failed ({}); retrying", options_.region,
                  reply.status.ToString());
    host_.After(options_.retry_max_ms * 1000, [this, generation] {
      if (generation == generation_) {
        Reregister();
      }
    });
  });
}

void RegionReplicator::OnBecameActive(const membership::GroupView& view) {
  AdoptView(view);
  if (!failure_.empty()) {
    return;  // the view showed this member gone: FAILED stays
  }
  // Pre-images go exactly to the members this view lists as joining: one that turned ACTIVE
  // before us will never send us its JoinComplete (it did not know us ACTIVE), so pre-images
  // set while we were joining must not outlive this moment. Nor to one listed joining whose
  // JoinReleased came already (it turned ACTIVE after this view's transaction and released
  // before we heard our answer; fresh seed 242519262): that news will not come again.
  for (const membership::GroupMember& member : view.members) {
    if (member.info.member_id != self_.member_id && !options_.breaks.keep_pre_images_at_active) {
      roles_->peers.SetWantsPreImage(
          member.info.member_id, member.state == membership::MemberState::kInitializing &&
                                     roles_->peers.JoinsAsOf(member.info.member_id, view.revision));
    }
  }
  // Until the join is released, local writes keep the post-image store (the event index)
  // current: in place before the first write is accepted.
  roles_->peers.set_event_index(roles_->applier.event_index());
  roles_->peers.Publish();
  if (own_purge_paused_) {
    store_.ResumeTombstonePurge();
    own_purge_paused_ = false;
  }
  WEFT_LOG_INFO("region {}: ACTIVE ({} keys; {} post-image entries, {} corrected by the image)",
                options_.region, store_.KeyCount(), roles_->applier.index_entries(),
                roles_->applier.corrections());
  TurnActive();
}

void RegionReplicator::TurnActive() {
  RefreshReadGuard();  // not the value of before (a stall could follow before the next tick)
  SetState(RegionState::kActive);
  // Departures seen while this member was not ACTIVE in its own eyes — joining, or entered
  // ACTIVE with the answer lost and retried: joiners that listed it wait for its RepairDone
  // (seed 1586 of the registry-cut model waited in flush for good).
  // Out of the list first: RepairClaim reads it.
  const std::vector<std::pair<uint64_t, int64_t>> deferred = std::exchange(repairs_deferred_, {});
  for (const auto& departed : deferred) {
    RepairDeparted(departed.first);
  }
}

void RegionReplicator::OnJoinAborted(std::string reason) {
  Rejoin(reason);
}

void RegionReplicator::OnJoinRefused(std::string reason) {
  Fail(reason);
  LeaveGroup();
}

void RegionReplicator::LeaveGroup() {
  RegistryRequest request;
  request.op = RegistryRequest::Op::kLeaveRegion;
  request.region = options_.region;
  host_.Registry(std::move(request), [this](RegistryReply reply) {
    if (stopped_ || reply.status.ok() || absl::IsNotFound(reply.status)) {
      return;
    }
    WEFT_LOG_WARN("region {}: leaving the group failed ({}); retrying", options_.region,
                  reply.status.ToString());
    host_.After(options_.retry_max_ms * 1000, [this] {
      if (!stopped_) {
        LeaveGroup();
      }
    });
  });
}

void RegionReplicator::OnJoinPhase(JoinPhase from, JoinPhase to) {
  if (observer_ != nullptr) {
    observer_->OnJoinPhase(from, to);
  }
  PublishStatus();
}

void RegionReplicator::OnDrained(uint64_t epoch) {
  write_path_.FreeRetiredIndexes();
  ClearCopyThenJoin();
  roles_->service.OnDrained(epoch);
}

void RegionReplicator::ApplyRecord(uint64_t from, uint32_t lane, const Record& record) {
  const ControlRecord& control = record.control;
  switch (record.kind) {
    case RecordKind::kChange:
      if (observer_ != nullptr) {
        observer_->OnChangeArriving(from, record.change);
      }
      roles_->applier.Apply(record.change);
      if (observer_ != nullptr) {
        observer_->OnChangeApplied(from, record.change);
      }
      break;
    case RecordKind::kJoinIntent:
      ForgetEarlierEntry(from, control.revision);  // the intent names the joiner's entry
      roles_->service.OnJoinIntent(from, control);
      break;
    case RecordKind::kIntentAck:
      roles_->driver.OnIntentAck(from, control);
      break;
    case RecordKind::kStateMarker:
      roles_->service.OnStateMarker(from, control);
      break;
    case RecordKind::kStabilized:
      roles_->driver.OnStabilized(from, control);
      break;
    case RecordKind::kJoinComplete:
      // The stream it came on names the joiner's entry (ChannelOpen::sender_entry).
      roles_->service.OnJoinComplete(from, roles_->peers.Inbound(from, lane).sender_entry, control);
      break;
    case RecordKind::kJoinFlush:
      roles_->driver.OnJoinFlush(from, lane, control);
      break;
    case RecordKind::kJoinReleased:
      roles_->service.OnJoinReleased(from, control);
      break;
    case RecordKind::kRepairDone:
      roles_->driver.OnRepairDone(from, lane, control.member, control.revision);
      break;
    case RecordKind::kRepairQuery:
      OnRepairQuery(from, control);
      break;
  }
  if (roles_->service.stabilizations() > 0) {
    roles_->service.CheckStabilizations();  // a reception counter is about to move past this record
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
  } else if (*refusal = roles_->peers.AdmitLane(peer, open); refusal->ok()) {
    InboundLane& lane = roles_->peers.Inbound(open.from, open.lane);
    *refusal = LaneReceiver::Admit(open, lane);
    if (refusal->ok()) {
      auto receiver = std::make_shared<LaneReceiver>(channel, open, lane, *this, clock_,
                                                     options_.silence_timeout_ms * 1000);
      receiver->Resume();
      roles_->peers.AddReceiver(receiver);
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
  *refusal = roles_->service.AdmitImage(request.joiner, request.join_id);
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

int64_t RegionReplicator::PauseThresholdUs() const {
  return options_.silence_timeout_ms * 1000 / 2;
}

void RegionReplicator::RefreshReadGuard() {
  if (options_.mode != ReplicationMode::kSync) {
    return;
  }
  // Every ACTIVE member of the group may expel this one once it cannot reach it for
  // unreachable_timeout_ms; stop serving reads well before, once a peer has not been heard for
  // silence_timeout_ms both ways: answering this member's lanes (so it takes this member's
  // writes) and sending on its own lanes to this member (so it still counts this member in its
  // group: a member that dropped this one stops its lanes, although it would still answer
  // this member's). Every peer counts, not only those the view lists as ACTIVE: the view may be
  // old (this member cut off from the registry), and a member it lists as joining, or does
  // not list at all (one that joined from this member, known from its JoinIntent), may be
  // ACTIVE by now and taking writes without this member.
  int64_t until = INT64_MAX;
  for (const auto& [id, peer] : roles_->peers.all()) {
    int64_t answered_us = 0;
    for (const std::shared_ptr<LaneSender>& sender : peer.senders) {
      answered_us = std::max(answered_us, sender->heard_us());
    }
    const int64_t sent_us = std::max(roles_->peers.InboundHeardUs(id), peer.added_us);
    int64_t heard_us = std::min(answered_us, sent_us);
    if (heard_us <= heard_after_us_) {
      heard_us = 0;  // possibly from before a pause of this member
    }
    until = std::min(until, heard_us + options_.silence_timeout_ms * 1000);
  }
  const int64_t now_us = clock_.NowMonotonicUs();
  if (now_us <= heard_after_us_) {
    until = 0;
  }
  // The guard holds only while ticks keep refreshing it: after a pause, a client thread may run
  // before this one notices the pause (Tick), and must not go by what was true before it.
  until = std::min(until, now_us + PauseThresholdUs());
  in_touch_until_us_.store(until, std::memory_order_release);
}

void RegionReplicator::Tick() {
  if (stopped_) {
    return;
  }
  const int64_t now_us = clock_.NowMonotonicUs();
  if (last_tick_us_ != 0 && now_us - last_tick_us_ > PauseThresholdUs()) {
    // This member stopped (SIGSTOP, a long pause): what its sockets hold now was sent before,
    // by peers that may have dropped it since. Only frames that keep arriving count.
    WEFT_LOG_WARN(
        "region {}: this member did not run for {} ms; serving reads again only once "
        "its peers are heard afresh",
        options_.region, (now_us - last_tick_us_) / 1000);
    heard_after_us_ = now_us + 2 * options_.heartbeat_interval_ms * 1000;
  }
  last_tick_us_ = now_us;
  RefreshReadGuard();
  roles_->peers.OnTick();
  roles_->service.OnTick();
  roles_->driver.OnTick();
  PaceImages();
  ExpelLaggards();
  PublishStatus();
  host_.After(options_.tick_ms * 1000, [this] { Tick(); });
}

void RegionReplicator::PaceImages() {
  std::erase_if(serves_, [](const auto& serve) { return serve->finished(); });
  const std::optional<int64_t> latency_us = roles_->peers.TakeMaxAckLatencyUs();
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
  for (const auto& [member, peer] : roles_->peers.all()) {
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
  for (const auto& laggard : laggards) {
    const uint64_t member = laggard.first;
    const std::string& problem = laggard.second;
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
    request.entered_at = roles_->peers.Find(member)->entered_at;
    host_.Registry(std::move(request), [this, member, name, problem,
                                        generation = generation_](RegistryReply reply) {
      if (generation != generation_) {
        return;
      }
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
  done.revision = RepairClaim(origin);
  for (const auto& [id, peer] : roles_->peers.all()) {
    for (uint32_t lane = 0; lane < options_.lanes; ++lane) {
      roles_->peers.SendControl(id, RecordKind::kRepairDone, done, lane);
    }
  }
  WEFT_LOG_INFO(
      "region {}: re-sent {} of {} recently changed key(s) last written by departed "
      "member {:016x}",
      options_.region, repaired, changes.size(), origin);
}

int64_t RegionReplicator::RepairClaim(uint64_t origin) const {
  int64_t claim = view_.revision;
  if (const membership::GroupMember* listed = view_.Find(origin)) {
    claim = std::min(claim, listed->entered_at - 1);  // a later entry, about to be a peer
  }
  if (const Peers::Peer* peer = roles_->peers.Find(origin)) {
    claim = std::min(claim, peer->entered_at - 1);
  }
  for (const auto& [deferred, entry] : repairs_deferred_) {
    if (deferred == origin) {
      claim = std::min(claim, entry - 1);
    }
  }
  return claim;
}

void RegionReplicator::OnRepairQuery(uint64_t joiner, const ControlRecord& query) {
  // Whatever this member repaired of the origin went before on every lane; the claim says how
  // far that covers. If it falls short, the repair still to come answers (or the joiner asks
  // again once this member's view has caught up).
  ControlRecord done;
  done.member = query.member;
  done.revision = RepairClaim(query.member);
  if (done.revision < query.revision) {
    return;
  }
  for (uint32_t lane = 0; lane < options_.lanes; ++lane) {
    roles_->peers.SendControl(joiner, RecordKind::kRepairDone, done, lane);
  }
}

void RegionReplicator::HoldPhase(JoinPhase phase, bool hold) {
  host_.Post([this, phase, hold] {
    roles_->driver.HoldPhase(phase, hold);
    PublishStatus();
  });
}

std::string RegionReplicator::NameOf(uint64_t member) const {
  if (member == self_.member_id) {
    return self_.name;
  }
  for (const auto& [id, peer] : roles_->peers.all()) {
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
  auto it = roles_->peers.inbound().find({from, lane});
  return it == roles_->peers.inbound().end() ? 0 : it->second.received;
}

uint64_t RegionReplicator::SentCounter(uint64_t to, uint32_t lane) const {
  auto it = roles_->peers.all().find(to);
  return it == roles_->peers.all().end() ? 0 : it->second.outboxes->lanes[lane]->sent();
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
  status.postimage_changes = roles_->applier.postimage_changes();
  status.postimage_keys = roles_->applier.index_entries();
  status.repaired_keys = repaired_keys_;
  status.members = view_.members;
  const JoinProgress progress = roles_->driver.progress();
  status.phase = progress.phase;
  status.held_at = progress.held_at;
  status.waiting = rejoining_ ? "rejoining: " + rejoin_reason_ : progress.waiting;
  status.provider = progress.provider;
  status.join_attempts = progress.attempts;
  status.rejoins = rejoins_;
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
  for (const auto& [id, peer] : roles_->peers.all()) {
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
  for (const auto& [key, lane] : roles_->peers.inbound()) {
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
