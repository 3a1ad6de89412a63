// RegionReplicator's join protocol (DESIGN.md §5), in both roles:
//  - joiner N: BeginJoinAttempt (Phase A/B), Stabilized -> image (D), ImageDone -> Incorporate
//    and JoinComplete (E), JoinFlush markers -> the post-image store is freed; provider failure
//    -> another attempt that keeps the post-image store.
//  - every ACTIVE member M on JoinIntent: add N as a recipient (drain), read the transmission
//    counters toward P, StateMarker to P, IntentAck to N. On JoinComplete: stop pre-images,
//    JoinFlush on every lane.
//  - provider P: the same for itself, then Phase C (wait for every marker's counters to be
//    applied here), Stabilized to N, and the image on request.
#include <algorithm>
#include <vector>

#include "weft/base/logging.h"
#include "weft/replication/replicator.h"

namespace weft::replication {

void RegionReplicator::EnterPhase(JoinPhase phase) {
  const int64_t now_us = clock_.NowMonotonicUs();
  if (phase_ != JoinPhase::kNone || phase != JoinPhase::kNone) {
    WEFT_LOG_INFO("region {}: join phase {} -> {} after {} ms", options_.region,
                  JoinPhaseName(phase_), JoinPhaseName(phase), (now_us - phase_started_us_) / 1000);
  }
  phase_ = phase;
  phase_started_us_ = now_us;
  held_at_ = JoinPhase::kNone;
}

void RegionReplicator::BeginJoinAttempt() {
  std::vector<uint64_t> active;
  std::vector<uint64_t> candidates;
  for (const membership::GroupMember& member : view_.members) {
    if (member.info.member_id == self_.member_id ||
        member.state != membership::MemberState::kActive) {
      continue;
    }
    active.push_back(member.info.member_id);
    if (!failed_providers_.contains(member.info.member_id)) {
      candidates.push_back(member.info.member_id);
    }
  }
  if (candidates.empty()) {
    // Never "ready" with a partial copy: the region failed to join on this member.
    join_.reset();
    Fail(fmt::format("no provider left to join from ({} ACTIVE member(s), {} failed)",
                     active.size(), failed_providers_.size()));
    return;
  }
  uint64_t provider = candidates[random_.Uniform(candidates.size())];
  for (uint64_t id : candidates) {
    if (!options_.preferred_provider.empty() && NameOf(id) == options_.preferred_provider) {
      provider = id;
    }
  }
  JoinAttempt attempt;
  attempt.join_id = random_.Next() | 1;
  attempt.provider = provider;
  attempt.provider_name = NameOf(provider);
  attempt.intent_pending.insert(active.begin(), active.end());
  join_ = std::move(attempt);
  ++join_attempts_;
  image_done_ = false;
  WEFT_LOG_INFO("region {}: join attempt {} (id {:016x}) from provider {}, {} member(s) to mark",
                options_.region, join_attempts_, join_->join_id, NameOf(provider), active.size());
  EnterPhase(JoinPhase::kIntent);
  ControlRecord intent;
  intent.join_id = join_->join_id;
  intent.member = provider;
  intent.members = active;
  intent.revision = entered_revision_;
  intent.name = self_.name;
  intent.peer_address = self_.peer_address;
  intent.client_address = self_.client_address;
  for (uint64_t member : active) {
    SendControl(member, RecordKind::kJoinIntent, intent);
  }
}

void RegionReplicator::FailJoinAttempt(std::string_view reason) {
  if (!join_) {
    return;
  }
  WEFT_LOG_WARN("region {}: join attempt {} from {} failed in phase {}: {}; retrying",
                options_.region, join_attempts_, NameOf(join_->provider), JoinPhaseName(phase_),
                reason);
  failed_providers_.insert(join_->provider);
  // The partial image goes; the post-image store (every live change so far) stays.
  store_.Clear();
  join_.reset();
  image_done_ = false;
  BeginJoinAttempt();
}

void RegionReplicator::ApplyControl(uint64_t from, uint32_t lane, const Record& record) {
  const ControlRecord& control = record.control;
  MutexLock lock(&mutex_);
  switch (record.kind) {
    case RecordKind::kJoinIntent: {
      // Phase B on M (and on P for itself).
      const uint64_t joiner = from;
      membership::MemberInfo info;
      info.member_id = joiner;
      info.name = control.name;
      info.peer_address = control.peer_address;
      info.client_address = control.client_address;
      LinkFor(info, control.revision);
      SetRecipient(joiner, true, true);  // step 1, and step 2: Replace drains in-flight writes
      if (!purge_pauses_.contains(joiner)) {
        store_.PauseTombstonePurge();
        purge_pauses_[joiner] = 1;
      }
      const uint64_t provider = control.member;
      if (provider == self_.member_id) {
        Stabilization& stabilization = stabilizations_[control.join_id];
        stabilization.joiner = joiner;
        for (uint64_t member : control.members) {
          if (member != self_.member_id && links_.contains(member)) {
            stabilization.waiting.insert(member);
          }
        }
        auto early = early_markers_.find(control.join_id);
        if (early != early_markers_.end()) {
          stabilization.markers.merge(early->second);
          early_markers_.erase(early);
        }
        stabilizing_.store(true, std::memory_order_release);
        WEFT_LOG_INFO("region {}: providing for {} (join {:016x}); waiting for {} marker(s)",
                      options_.region, info.name, control.join_id, stabilization.waiting.size());
        CheckStabilizations();
      } else {
        // Step 3: the counters toward P, read after the drain.
        ControlRecord marker;
        marker.join_id = control.join_id;
        marker.member = joiner;
        auto link = links_.find(provider);
        if (link == links_.end()) {
          WEFT_LOG_WARN(
              "region {}: provider {:016x} of join {:016x} is not in this member's "
              "group; no marker sent",
              options_.region, provider, control.join_id);
        } else {
          for (uint32_t l = 0; l < options_.lanes; ++l) {
            marker.counters.push_back(link->second->lane(l).sent());
          }
          SendControl(provider, RecordKind::kStateMarker, marker);
        }
      }
      ControlRecord ack;
      ack.join_id = control.join_id;
      SendControl(joiner, RecordKind::kIntentAck, ack);
      return;
    }
    case RecordKind::kIntentAck:
      if (join_ && join_->join_id == control.join_id) {
        join_->intent_pending.erase(from);
        if (join_->intent_pending.empty() && phase_ == JoinPhase::kIntent) {
          EnterPhase(JoinPhase::kStabilize);
        }
      }
      return;
    case RecordKind::kStateMarker: {
      auto it = stabilizations_.find(control.join_id);
      if (it == stabilizations_.end()) {
        // The marker overtook the JoinIntent (different channels): keep it for then.
        early_markers_[control.join_id][from] = control.counters;
        return;
      }
      it->second.markers[from] = control.counters;
      CheckStabilizations();
      return;
    }
    case RecordKind::kStabilized:
      if (join_ && join_->join_id == control.join_id && from == join_->provider) {
        join_->stabilized = true;
        if (phase_ == JoinPhase::kIntent) {
          EnterPhase(JoinPhase::kStabilize);
        }
        MaybeRequestImage();
      }
      return;
    case RecordKind::kJoinComplete: {
      // The joiner holds a complete copy: no more pre-images for it (drain), and a JoinFlush on
      // every lane, after every change that carried one.
      SetRecipient(from, true, false);
      ControlRecord flush;
      flush.join_id = control.join_id;
      for (uint32_t l = 0; l < options_.lanes; ++l) {
        SendControl(from, RecordKind::kJoinFlush, flush, l);
      }
      auto pauses = purge_pauses_.find(from);
      if (pauses != purge_pauses_.end()) {
        store_.ResumeTombstonePurge();
        purge_pauses_.erase(pauses);
      }
      return;
    }
    case RecordKind::kJoinFlush:
      if (join_) {
        join_->flush_pending.erase({from, lane});
        MaybeFinishFlush();
      }
      return;
    case RecordKind::kChange:
      return;
  }
}

void RegionReplicator::CheckStabilizations() {
  for (auto it = stabilizations_.begin(); it != stabilizations_.end();) {
    Stabilization& s = it->second;
    for (auto member = s.waiting.begin(); member != s.waiting.end();) {
      bool caught_up = false;
      if (!links_.contains(*member)) {
        caught_up = true;  // it left the group: stop waiting for it
      } else if (auto marker = s.markers.find(*member); marker != s.markers.end()) {
        caught_up = true;
        for (uint32_t l = 0; l < marker->second.size() && l < options_.lanes; ++l) {
          if (ReceivedCounter(*member, l) < marker->second[l]) {
            caught_up = false;
          }
        }
      }
      member = caught_up ? s.waiting.erase(member) : std::next(member);
    }
    if (!s.waiting.empty()) {
      ++it;
      continue;
    }
    WEFT_LOG_INFO("region {}: stabilized for {} (join {:016x})", options_.region, NameOf(s.joiner),
                  it->first);
    stabilized_joins_.insert(it->first);
    ControlRecord stabilized;
    stabilized.join_id = it->first;
    SendControl(s.joiner, RecordKind::kStabilized, stabilized);
    it = stabilizations_.erase(it);
  }
  stabilizing_.store(!stabilizations_.empty(), std::memory_order_release);
}

void RegionReplicator::MaybeRequestImage() {
  if (!join_ || !join_->stabilized || phase_ == JoinPhase::kImage) {
    return;
  }
  if (held_phases_.contains(JoinPhase::kImage)) {
    held_at_ = JoinPhase::kImage;
    return;
  }
  auto link = links_.find(join_->provider);
  if (link == links_.end()) {
    FailJoinAttempt("the provider is unknown");
    return;
  }
  EnterPhase(JoinPhase::kImage);
  join_->image_started_us = clock_.NowMonotonicUs();
  ImageRequest request;
  request.region = options_.region;
  request.joiner = self_.member_id;
  request.join_id = join_->join_id;
  request.credit_bytes = options_.image_window_bytes;
  outlet_.OpenImage(link->second->info(), join_->join_id, EncodeImageRequest(request));
}

StatusOr<std::shared_ptr<ImageSender>> RegionReplicator::OnImageRequest(
    const ImageRequest& request) {
  MutexLock lock(&mutex_);
  if (request.region != options_.region) {
    return absl::InvalidArgumentError(fmt::format("image of region '{}' requested from region '{}'",
                                                  request.region, options_.region));
  }
  if (!stabilized_joins_.contains(request.join_id)) {
    return absl::FailedPreconditionError(
        fmt::format("join {:016x} is not stabilized here", request.join_id));
  }
  if (state() != RegionState::kActive) {
    return absl::FailedPreconditionError("this member is not ACTIVE");
  }
  WEFT_LOG_INFO("region {}: streaming the image to {} (join {:016x}, {} keys)", options_.region,
                NameOf(request.joiner), request.join_id, store_.KeyCount());
  ImageSender::Options options;
  options.chunk_bytes = options_.image_chunk_bytes;
  options.rate_limit_bytes_per_s = options_.image_rate_limit_bytes_per_s;
  options.paced = options_.pace_images;
  options.pace_target_us = options_.image_pace_target_us;
  auto sender = std::make_shared<ImageSender>(store_, clock_, request.credit_bytes, options);
  image_senders_.push_back(sender);
  timing_acks_.store(options.paced, std::memory_order_relaxed);
  return sender;
}

StatusOr<uint64_t> RegionReplicator::OnImageChunk(uint64_t join_id, std::string_view payload) {
  {
    MutexLock lock(&mutex_);
    if (!join_ || join_->join_id != join_id || phase_ != JoinPhase::kImage) {
      return absl::FailedPreconditionError(
          fmt::format("image chunk for join {:016x}, which is not running", join_id));
    }
  }
  WEFT_ASSIGN_OR_RETURN(const ImageChunk chunk, DecodeImageChunk(payload));
  ImageEntryReader reader(chunk.entries);
  storage::EntryView entry;
  uint64_t entries = 0;
  uint64_t max_stamp = 0;
  while (true) {
    WEFT_ASSIGN_OR_RETURN(const bool more, reader.Next(&entry));
    if (!more) {
      break;
    }
    // Into the base store, newer wins, no event (the post-image store decides events).
    store_.WithKey(entry.key, [&](storage::LockedKeys& keys) { keys.ApplyIfNewer(entry); });
    max_stamp = std::max(max_stamp, entry.version.stamp);
    ++entries;
  }
  versions_.Observe(max_stamp);
  MutexLock lock(&mutex_);
  if (join_ && join_->join_id == join_id) {
    join_->entries += entries;
    join_->bytes += payload.size();
    join_->entries_estimate = chunk.entries_estimate;
  }
  return payload.size();
}

void RegionReplicator::OnImageDone(uint64_t join_id, const ImageDone& done) {
  {
    MutexLock lock(&mutex_);
    if (!join_ || join_->join_id != join_id || phase_ != JoinPhase::kImage) {
      return;
    }
    if (done.entries != join_->entries) {
      FailJoinAttempt(
          fmt::format("the image announced {} entries, {} arrived", done.entries, join_->entries));
      return;
    }
    image_done_ = true;
    join_->image_finished_us = clock_.NowMonotonicUs();
    WEFT_LOG_INFO("region {}: image complete: {} entries, {} bytes", options_.region, done.entries,
                  done.bytes);
  }
  MaybeIncorporate();
}

void RegionReplicator::OnImageClosed(uint64_t join_id, const weft::Status& status) {
  MutexLock lock(&mutex_);
  if (join_ && join_->join_id == join_id && phase_ == JoinPhase::kImage && !image_done_) {
    FailJoinAttempt(fmt::format("the image connection closed: {}", std::string(status.message())));
  }
}

void RegionReplicator::MaybeIncorporate() {
  {
    MutexLock lock(&mutex_);
    if (!join_ || !image_done_ || phase_ != JoinPhase::kImage) {
      return;
    }
    if (held_phases_.contains(JoinPhase::kIncorporate)) {
      held_at_ = JoinPhase::kIncorporate;
      return;
    }
    EnterPhase(JoinPhase::kIncorporate);
  }
  Incorporate();
}

void RegionReplicator::BarrierInboundLanes() {
  std::vector<InboundLane*> lanes;
  {
    MutexLock lock(&inbound_mutex_);
    for (auto& [key, lane] : inbound_) {
      lanes.push_back(lane.get());
    }
  }
  for (InboundLane* lane : lanes) {
    MutexLock lock(&lane->mutex);
  }
}

void RegionReplicator::Incorporate() {
  // From here live changes go to both stores; once every apply that still saw the old mode has
  // finished (the barrier), merging the post-image store misses nothing.
  apply_mode_.store(ApplyMode::kBoth, std::memory_order_release);
  BarrierInboundLanes();
  struct Owned {
    std::string key;
    std::string value;
    storage::Version version;
    int64_t expire_at_unix_ms;
    bool tombstone;
  };
  std::vector<Owned> batch;
  uint64_t cursor = 0;
  uint64_t merged = 0;
  uint64_t corrected = 0;
  do {
    batch.clear();
    cursor = postimage_->Scan(
        cursor, 256, /*include_tombstones=*/true, [&](const storage::EntryView& entry) {
          batch.push_back(Owned{std::string(entry.key), std::string(entry.value), entry.version,
                                entry.expire_at_unix_ms, entry.tombstone});
        });
    for (const Owned& owned : batch) {
      const storage::EntryView view{owned.key, owned.value, owned.version, owned.expire_at_unix_ms,
                                    owned.tombstone};
      store_.WithKey(owned.key, [&](storage::LockedKeys& keys) {
        const std::optional<storage::EntryView> held = keys.FindAny(owned.key);
        if (!held || view.version.NewerThan(held->version)) {
          keys.ApplyIfNewer(view);
          return;
        }
        if (held->version == view.version) {
          return;
        }
        // The image holds a newer version than this key's last event: a pre-cut change that
        // beat a later live one by version (clocks differ). An ACTIVE member that saw the live
        // change first then saw the newer one arrive; so does the consumer here, and the
        // post-image store follows, keeping "each event's old value is the previous new".
        if (consumer_ != nullptr) {
          Emit(owned.key,
               owned.tombstone ? std::nullopt : std::optional<std::string_view>(owned.value),
               *held);
        }
        postimage_->WithKey(owned.key,
                            [&](storage::LockedKeys& index) { index.ApplyIfNewer(*held); });
        ++corrected;
      });
    }
    merged += batch.size();
  } while (cursor != 0);

  // Become ACTIVE in the registry; the view of that same transaction lists every member still
  // INITIALIZING, and each becomes a recipient with pre-images before we accept a write.
  StatusOr<membership::GroupView> view =
      registry_.SetState(options_.region, membership::MemberState::kActive);
  MutexLock lock(&mutex_);
  if (!view.ok()) {
    Fail(
        fmt::format("could not mark this member ACTIVE: {}", std::string(view.status().message())));
    return;
  }
  AdoptView(*view);
  if (!failure_reason_.empty()) {
    return;  // the view showed this member gone: FAILED stays
  }
  store_.ResumeTombstonePurge();
  state_.store(RegionState::kActive, std::memory_order_release);
  WEFT_LOG_INFO(
      "region {}: ACTIVE after {} ms ({} post-image entries merged, {} older than the image, "
      "{} keys)",
      options_.region, (clock_.NowMonotonicUs() - join_started_us_) / 1000, merged, corrected,
      store_.KeyCount());
  SendJoinComplete();
}

void RegionReplicator::SendJoinComplete() {
  if (!join_ || phase_ != JoinPhase::kIncorporate) {
    return;
  }
  if (held_phases_.contains(JoinPhase::kFlush)) {
    held_at_ = JoinPhase::kFlush;
    return;
  }
  EnterPhase(JoinPhase::kFlush);
  ControlRecord complete;
  complete.join_id = join_->join_id;
  for (const membership::GroupMember& member : view_.members) {
    if (member.info.member_id == self_.member_id ||
        member.state != membership::MemberState::kActive ||
        !links_.contains(member.info.member_id)) {
      continue;
    }
    for (uint32_t l = 0; l < options_.lanes; ++l) {
      join_->flush_pending.insert({member.info.member_id, l});
    }
    SendControl(member.info.member_id, RecordKind::kJoinComplete, complete);
  }
  MaybeFinishFlush();
}

void RegionReplicator::MaybeFinishFlush() {
  if (join_ && phase_ == JoinPhase::kFlush && join_->flush_pending.empty()) {
    release_postimage_ = true;
  }
}

void RegionReplicator::ReleasePostImage() {
  // Events are decided against the base store from now on. Wait for applies and local writes
  // that may still use the post-image store, then free it.
  apply_mode_.store(ApplyMode::kBase, std::memory_order_release);
  BarrierInboundLanes();
  recipients_.Replace(recipients_.Current()->members);
  std::unique_ptr<storage::Store> postimage;
  {
    MutexLock lock(&mutex_);
    postimage = std::move(postimage_);
    join_finished_us_ = clock_.NowMonotonicUs();
    EnterPhase(JoinPhase::kNone);
    WEFT_LOG_INFO("region {}: join complete in {} ms; {} live change(s) arrived during it",
                  options_.region, (join_finished_us_ - join_started_us_) / 1000,
                  postimage_changes_.load(std::memory_order_relaxed));
    last_join_ = std::move(join_);
    join_.reset();
  }
}

void RegionReplicator::OnTick() {
  bool release = false;
  std::vector<uint64_t> repairs;
  std::vector<std::pair<uint64_t, std::string>> laggards;
  {
    MutexLock lock(&mutex_);
    release = release_postimage_;
    release_postimage_ = false;
    // A joiner repairs only once its base store is complete.
    if (state() == RegionState::kActive) {
      repairs.swap(repair_pending_);
    }
    laggards = FindLaggards();
    PaceImages();
  }
  if (release) {
    ReleasePostImage();
  }
  for (uint64_t origin : repairs) {
    RepairDeparted(origin);
  }
  for (const auto& [member, problem] : laggards) {
    ExpelLaggard(member, problem);
  }
}

void RegionReplicator::PaceImages() {
  std::optional<int64_t> latency_us;
  for (const auto& [member, link] : links_) {
    for (uint32_t lane = 0; lane < link->lane_count(); ++lane) {
      if (const std::optional<int64_t> lane_us = link->lane(lane).TakeMaxAckLatencyUs()) {
        latency_us = std::max(latency_us.value_or(0), *lane_us);
      }
    }
  }
  std::erase_if(image_senders_, [&](const std::weak_ptr<ImageSender>& weak) {
    const std::shared_ptr<ImageSender> sender = weak.lock();
    if (sender != nullptr) {
      sender->Pace(latency_us);
    }
    return sender == nullptr;
  });
  if (image_senders_.empty()) {
    timing_acks_.store(false, std::memory_order_relaxed);
  }
}

std::vector<std::pair<uint64_t, std::string>> RegionReplicator::FindLaggards() {
  std::vector<std::pair<uint64_t, std::string>> laggards;
  const int64_t now_us = clock_.NowMonotonicUs();
  std::map<std::pair<uint64_t, uint32_t>, AckProgress> progress;
  for (const auto& [member, link] : links_) {
    std::string problem;
    for (uint32_t lane = 0; lane < link->lane_count(); ++lane) {
      Outbox& outbox = link->lane(lane);
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
        break;
      }
    }
    if (!problem.empty()) {
      laggards.emplace_back(member, std::move(problem));
    }
  }
  ack_progress_ = std::move(progress);
  return laggards;
}

void RegionReplicator::ExpelLaggard(uint64_t member, std::string_view problem) {
  // Its backlog would grow without end (or sync writes would wait on it without end). Dropping
  // it only here would let it go on serving a copy that misses our changes, so it leaves the
  // group for everyone (and, seeing that, stops serving); the group view then removes it here,
  // which frees the backlog and releases the writes waiting on it.
  const std::string name = [&] {
    MutexLock lock(&mutex_);
    return NameOf(member);
  }();
  const Status expelled = registry_.ExpelFromRegion(options_.region, member);
  if (expelled.ok()) {
    WEFT_LOG_ERROR("region {}: expelled member {} from the group: {}", options_.region, name,
                   problem);
  } else {
    WEFT_LOG_ERROR("region {}: member {} is too far behind ({}), but expelling it failed: {}",
                   options_.region, name, problem, expelled.ToString());
  }
}

void RegionReplicator::HoldPhase(JoinPhase phase, bool hold) {
  {
    MutexLock lock(&mutex_);
    if (hold) {
      held_phases_.insert(phase);
      return;
    }
    held_phases_.erase(phase);
    if (phase == JoinPhase::kImage) {
      MaybeRequestImage();
    } else if (phase == JoinPhase::kFlush) {
      SendJoinComplete();
    }
  }
  if (phase == JoinPhase::kIncorporate) {
    MaybeIncorporate();
  }
}

}  // namespace weft::replication
