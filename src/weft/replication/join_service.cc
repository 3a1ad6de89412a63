#include "weft/replication/join_service.h"

#include <algorithm>
#include <utility>

#include "weft/base/check.h"
#include "weft/base/logging.h"

namespace weft::replication {

JoinService::JoinService(const RegionEnv& env, Peers& peers, WritePath& write_path,
                         storage::Store& store, std::function<bool()> active,
                         std::function<bool(int64_t)> view_at_least, JoinServiceObserver* observer)
    : env_(env),
      peers_(peers),
      write_path_(write_path),
      store_(store),
      active_(std::move(active)),
      view_at_least_(std::move(view_at_least)),
      observer_(observer) {}

JoinService::~JoinService() {
  for (size_t i = 0; i < purge_paused_for_.size(); ++i) {
    store_.ResumeTombstonePurge();
  }
}

void JoinService::OnJoinIntent(uint64_t joiner, const ControlRecord& intent) {
  membership::MemberInfo info;
  info.member_id = joiner;
  info.name = intent.name;
  info.peer_address = intent.peer_address;
  info.client_address = intent.client_address;
  // The joiner is a recipient from now on (with pre-images), whatever else happens: it is in the
  // group, and a refusal travels on its lane too.
  peers_.Add(info, intent.revision, /*wants_pre_image=*/true, /*entered_at=*/intent.revision);
  peers_.SetWantsPreImage(joiner, true);
  // A new attempt supersedes the joiner's earlier ones.
  std::erase_if(pending_marks_, [&](const PendingMark& mark) { return mark.joiner == joiner; });
  std::erase_if(stabilizations_, [&](const auto& entry) { return entry.second.joiner == joiner; });
  std::erase_if(stabilized_, [&](const auto& entry) { return entry.second.joiner == joiner; });
  const uint64_t provider = intent.member;
  if (!active_()) {
    Refuse(joiner, intent.join_id, "this member is not ACTIVE");
    return;
  }
  if (provider != env_.self.member_id && peers_.Find(provider) == nullptr) {
    Refuse(joiner, intent.join_id, "the provider is not in this member's group");
    return;
  }
  // Step 1 (a new epoch with the joiner as a recipient with pre-images), then step 2 waits for
  // the writes of older epochs.
  const uint64_t epoch = peers_.Publish();
  PausePurge(joiner);
  if (provider == env_.self.member_id) {
    Stabilization& stabilization = stabilizations_[intent.join_id];
    stabilization.joiner = joiner;
    stabilization.view_revision = intent.view_revision;
    for (uint64_t member : intent.members) {
      if (member != env_.self.member_id && peers_.Find(member) != nullptr) {
        stabilization.waiting.insert(member);
      }
    }
    for (auto it = early_markers_.lower_bound({intent.join_id, 0});
         it != early_markers_.end() && it->first.first == intent.join_id;) {
      stabilization.markers[it->first.second] = std::move(it->second.marker);
      it = early_markers_.erase(it);
    }
    WEFT_LOG_INFO("region {}: providing for {} (join {:016x}); waiting for {} marker(s)",
                  env_.options.region, info.name, intent.join_id, stabilization.waiting.size());
  }
  const PendingMark mark{epoch, intent.join_id, joiner, provider};
  if (env_.options.breaks.skip_drain || write_path_.Drained(epoch)) {
    Mark(mark);
  } else {
    pending_marks_.push_back(mark);
  }
}

void JoinService::OnDrained(uint64_t epoch) {
  std::vector<PendingMark> ready;
  std::erase_if(pending_marks_, [&](const PendingMark& mark) {
    if (write_path_.Drained(mark.epoch)) {
      ready.push_back(mark);
      return true;
    }
    return false;
  });
  for (const PendingMark& mark : ready) {
    Mark(mark);
  }
}

void JoinService::Mark(const PendingMark& mark) {
  if (peers_.Find(mark.joiner) == nullptr) {
    return;  // it left meanwhile
  }
  if (mark.provider == env_.self.member_id) {
    auto it = stabilizations_.find(mark.join_id);
    if (it != stabilizations_.end()) {
      it->second.self_marked = true;
    }
    CheckStabilizations();
  } else {
    // Step 3: the counters toward P, read after the drain.
    ControlRecord marker;
    marker.join_id = mark.join_id;
    marker.member = mark.joiner;
    marker.counters = peers_.SentCounters(mark.provider);
    marker.streams = peers_.StreamIds(mark.provider);
    if (!peers_.SendControl(mark.provider, RecordKind::kStateMarker, marker)) {
      Refuse(mark.joiner, mark.join_id, "the provider left this member's group");
      return;
    }
  }
  ControlRecord ack;
  ack.join_id = mark.join_id;
  peers_.SendControl(mark.joiner, RecordKind::kIntentAck, ack);
}

void JoinService::Refuse(uint64_t joiner, uint64_t join_id, std::string reason) {
  if (env_.options.breaks.silent_marking_failure) {
    return;
  }
  WEFT_LOG_WARN("region {}: cannot mark join {:016x}: {}", env_.options.region, join_id, reason);
  ControlRecord ack;
  ack.join_id = join_id;
  ack.error = std::move(reason);
  peers_.SendControl(joiner, RecordKind::kIntentAck, ack);
}

void JoinService::OnStateMarker(uint64_t from, const ControlRecord& control) {
  Marker marker{control.counters, control.streams};
  auto it = stabilizations_.find(control.join_id);
  if (it == stabilizations_.end()) {
    // The marker overtook the JoinIntent (different channels): keep it for a while.
    early_markers_[{control.join_id, from}] =
        EarlyMarker{control.member, std::move(marker), env_.clock.NowMonotonicUs()};
    return;
  }
  it->second.markers[from] = std::move(marker);
  CheckStabilizations();
}

bool JoinService::Satisfied(uint64_t member, const Marker& marker) {
  for (uint32_t lane = 0; lane < marker.counters.size() && lane < env_.options.lanes; ++lane) {
    const InboundLane& inbound = peers_.Inbound(member, lane);
    const uint64_t stream = lane < marker.streams.size() ? marker.streams[lane] : 0;
    if (inbound.stream_id > stream) {
      // A later stream of that member took the lane: the marked one ended with the entry (or
      // the peer) it was made for, whose leftovers its departure repair covers (seed 2854).
      continue;
    }
    // An older stream than the marker's: the marked records are not the ones counted here.
    if (inbound.stream_id != stream || inbound.received < marker.counters[lane]) {
      return false;
    }
  }
  return true;
}

void JoinService::CheckStabilizations() {
  for (auto it = stabilizations_.begin(); it != stabilizations_.end();) {
    Stabilization& s = it->second;
    // The joiner named the members to mark from its view. One that view no longer lists may
    // have been dropped without knowing (cut off from etcd) and still be writing to us: until
    // our own view has caught up, we still apply those writes and acknowledge them, and it
    // acknowledges sync writes the joiner will not get from this image (seed 9659). Once our
    // view has it gone, its streams are ended here (Peers::EndInbound) before the cut.
    if (!s.self_marked || !view_at_least_(s.view_revision)) {
      ++it;
      continue;
    }
    for (auto member = s.waiting.begin(); member != s.waiting.end();) {
      const auto marker = s.markers.find(*member);
      const bool done = peers_.Find(*member) == nullptr ||  // it left the group
                        (marker != s.markers.end() && Satisfied(*member, marker->second));
      member = done ? s.waiting.erase(member) : std::next(member);
    }
    if (!s.waiting.empty()) {
      ++it;
      continue;
    }
    const uint64_t join_id = it->first;
    WEFT_LOG_INFO("region {}: stabilized for {:016x} (join {:016x})", env_.options.region, s.joiner,
                  join_id);
    if (observer_ != nullptr) {
      observer_->OnStabilized(s.joiner, join_id, s.markers);
    }
    stabilized_[join_id] = Stabilized{s.joiner, env_.clock.NowMonotonicUs()};
    ControlRecord stabilized;
    stabilized.join_id = join_id;
    peers_.SendControl(s.joiner, RecordKind::kStabilized, stabilized);
    it = stabilizations_.erase(it);
  }
}

Status JoinService::AdmitImage(uint64_t joiner, uint64_t join_id) {
  if (!active_()) {
    return absl::FailedPreconditionError("this member is not ACTIVE");
  }
  auto it = stabilized_.find(join_id);
  if (it == stabilized_.end()) {
    return absl::FailedPreconditionError(
        fmt::format("join {:016x} is not stabilized here", join_id));
  }
  if (it->second.joiner != joiner && !env_.options.breaks.admit_any_requester) {
    return absl::PermissionDeniedError(
        fmt::format("join {:016x} belongs to another member", join_id));
  }
  stabilized_.erase(it);
  return absl::OkStatus();
}

void JoinService::OnJoinComplete(uint64_t joiner, int64_t joiner_entry,
                                 const ControlRecord& complete) {
  if (peers_.Find(joiner) == nullptr) {
    // It turned ACTIVE right after this member did, and no view has listed it here yet: it
    // gets pre-images until its JoinReleased, like every joiner.
    membership::MemberInfo info;
    info.member_id = joiner;
    info.name = complete.name;
    info.peer_address = complete.peer_address;
    info.client_address = complete.client_address;
    peers_.Add(info, complete.revision, /*wants_pre_image=*/true, joiner_entry);
    peers_.Publish();
  }
  ControlRecord flush;
  flush.join_id = complete.join_id;
  for (uint32_t lane = 0; lane < env_.options.lanes; ++lane) {
    peers_.SendControl(joiner, RecordKind::kJoinFlush, flush, lane);
  }
}

void JoinService::OnJoinReleased(uint64_t joiner, const ControlRecord& released) {
  peers_.NoteReleased(joiner, released.revision);
  if (peers_.SetWantsPreImage(joiner, false)) {
    peers_.Publish();
  }
  ResumePurge(joiner);
}

void JoinService::OnMemberLeft(uint64_t member) {
  std::erase_if(pending_marks_, [&](const PendingMark& mark) { return mark.joiner == member; });
  std::erase_if(stabilizations_, [&](const auto& entry) { return entry.second.joiner == member; });
  std::erase_if(early_markers_, [&](const auto& entry) { return entry.second.joiner == member; });
  std::erase_if(stabilized_, [&](const auto& entry) { return entry.second.joiner == member; });
  ResumePurge(member);
  CheckStabilizations();
}

void JoinService::OnTick() {
  const int64_t now_us = env_.clock.NowMonotonicUs();
  std::erase_if(early_markers_, [&](const auto& entry) {
    return now_us - entry.second.at_us > env_.options.early_marker_ttl_ms * 1000 &&
           !env_.options.breaks.admit_any_requester;
  });
  std::erase_if(stabilized_, [&](const auto& entry) {
    return now_us - entry.second.at_us > env_.options.stabilized_ttl_ms * 1000;
  });
  if (!stabilizations_.empty()) {
    CheckStabilizations();  // a fresh read of the group may have failed: ask again
  }
}

void JoinService::PausePurge(uint64_t joiner) {
  if (purge_paused_for_.insert(joiner).second) {
    store_.PauseTombstonePurge();
  }
}

void JoinService::ResumePurge(uint64_t joiner) {
  if (purge_paused_for_.erase(joiner) > 0) {
    store_.ResumeTombstonePurge();
  }
}

}  // namespace weft::replication
