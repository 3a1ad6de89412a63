#include "weft/replication/peers.h"

#include <algorithm>
#include <utility>

#include "weft/base/logging.h"
#include "weft/base/strings.h"

namespace weft::replication {
namespace {

// Past incarnations mostly: ids that will never be seen again.
constexpr size_t kRememberedMax = 4096;

// Forgets the entries of `remembered` with the smallest revisions until at most kRememberedMax
// are left.
void Bound(std::map<uint64_t, int64_t>& remembered) {
  while (remembered.size() > kRememberedMax) {
    remembered.erase(
        std::min_element(remembered.begin(), remembered.end(),
                         [](const auto& a, const auto& b) { return a.second < b.second; }));
  }
}

}  // namespace

void PeerHistory::EndEntries(uint64_t member, int64_t through) {
  int64_t& ended_through = ended[member];
  ended_through = std::max(ended_through, through);
  Bound(ended);
}

bool PeerHistory::Ended(uint64_t member, int64_t entry) const {
  auto it = ended.find(member);
  return it != ended.end() && entry <= it->second;
}

Peers::Peers(const RegionEnv& env, WritePath& write_path, PeerHistory& history)
    : env_(env), write_path_(write_path), history_(history) {}

Peers::~Peers() {
  StopAll();
  // Receivers point at this object's inbound state: nothing is applied from them after this.
  for (const std::shared_ptr<LaneReceiver>& receiver : receivers_) {
    receiver->Close();
  }
}

Peers::Peer* Peers::Find(uint64_t member) {
  auto it = peers_.find(member);
  return it == peers_.end() ? nullptr : &it->second;
}

Status Peers::Refusal(uint64_t member) const {
  auto it = peers_.find(member);
  if (it == peers_.end() || it->second.senders.empty()) {
    return Status();
  }
  for (const std::shared_ptr<LaneSender>& sender : it->second.senders) {
    if (sender->refusal().ok()) {
      return Status();
    }
  }
  return it->second.senders.front()->refusal();
}

int64_t Peers::InboundHeardUs(uint64_t from) const {
  int64_t heard_us = 0;
  for (auto it = inbound_.lower_bound({from, 0}); it != inbound_.end() && it->first.first == from;
       ++it) {
    heard_us = std::max(heard_us, it->second.heard_us);
  }
  return heard_us;
}

Peers::Peer& Peers::Add(const membership::MemberInfo& info, int64_t listed_since,
                        bool wants_pre_image, int64_t entered_at) {
  auto [it, inserted] = peers_.try_emplace(info.member_id);
  Peer& peer = it->second;
  if (peer.entered_at == 0) {
    peer.entered_at = entered_at;
  }
  if (!inserted) {
    return peer;
  }
  const ReplicatorOptions& options = env_.options;
  peer.info = info;
  peer.added_us = env_.clock.NowMonotonicUs();
  peer.listed_since = listed_since;
  peer.wants_pre_image = wants_pre_image;
  if (auto released = released_at_.find(info.member_id); released != released_at_.end()) {
    peer.active_since = released->second;
  }
  peer.outboxes = std::make_shared<PeerOutboxes>();
  peer.outboxes->member = info.member_id;
  LaneTimings timings;
  timings.heartbeat_interval_us = options.heartbeat_interval_ms * 1000;
  timings.silence_timeout_us = options.silence_timeout_ms * 1000;
  timings.redial_min_us = options.redial_min_ms * 1000;
  timings.redial_max_us = options.redial_max_ms * 1000;
  timings.payload_bytes = options.lane_payload_bytes;
  for (uint32_t lane = 0; lane < options.lanes; ++lane) {
    const uint64_t stream_id =
        options.breaks.reuse_stream_ids ? lane + 1 : history_.next_stream_id++;
    peer.outboxes->lanes.push_back(std::make_unique<Outbox>(options.outbox_bytes_max, stream_id));
    ChannelOpen open;
    open.from = env_.self.member_id;
    open.to = info.member_id;
    open.lane = lane;
    open.lanes = options.lanes;
    open.stream_id = stream_id;
    open.sender_entry = self_entry_;
    // The sender shares the outbox the writers append to (owned by PeerOutboxes; the aliasing
    // pointer keeps the whole set alive while the sender lives).
    std::shared_ptr<Outbox> shared(peer.outboxes, peer.outboxes->lanes.back().get());
    peer.senders.push_back(std::make_shared<LaneSender>(env_.host, env_.clock, env_.random, timings,
                                                        info, options.region, open,
                                                        std::move(shared)));
    peer.senders.back()->set_break_release_tickets_on_close(
        options.breaks.release_tickets_on_close);
    peer.senders.back()->Start();
  }
  return peer;
}

void Peers::SetSelfEntry(int64_t entry) {
  self_entry_ = entry;
  for (auto& [id, peer] : peers_) {
    for (const std::shared_ptr<LaneSender>& sender : peer.senders) {
      sender->Enter(entry);
    }
  }
}

bool Peers::EntryEnded(uint64_t member) const {
  auto it = peers_.find(member);
  return it != peers_.end() && history_.Ended(member, it->second.entered_at);
}

Status Peers::AdmitLane(uint64_t from, const ChannelOpen& open) const {
  if (history_.Ended(from, open.sender_entry) && !env_.options.breaks.admit_ended_entries) {
    return absl::FailedPreconditionError(
        StrCat("the stream belongs to an entry of the sender that has left the group (revision ",
               open.sender_entry, "): it must enter again"));
  }
  return absl::OkStatus();
}

bool Peers::Remove(uint64_t member, int64_t entries_through) {
  EndInbound(member, entries_through);
  auto it = peers_.find(member);
  if (it == peers_.end()) {
    return false;
  }
  for (const std::shared_ptr<LaneSender>& sender : it->second.senders) {
    sender->Stop();
  }
  for (const std::unique_ptr<Outbox>& outbox : it->second.outboxes->lanes) {
    outbox->Retire();
  }
  peers_.erase(it);
  return true;
}

void Peers::EndInbound(uint64_t member, int64_t entries_through) {
  history_.EndEntries(member, entries_through);
  // The connections first (they point at the lane state).
  for (auto receiver = receivers_.begin(); receiver != receivers_.end();) {
    if ((*receiver)->from() == member && (*receiver)->sender_entry() <= entries_through) {
      (*receiver)->Close();
      receiver = receivers_.erase(receiver);
    } else {
      ++receiver;
    }
  }
  std::erase_if(inbound_, [&](const auto& entry) {
    return entry.first.first == member && entry.second.sender_entry <= entries_through;
  });
}

void Peers::NoteReleased(uint64_t member, int64_t revision) {
  int64_t& at = released_at_[member];
  at = std::max(at, revision);
  if (Peer* peer = Find(member)) {
    peer->active_since = std::max(peer->active_since, revision);
  }
  Bound(released_at_);
}

bool Peers::JoinsAsOf(uint64_t member, int64_t revision) const {
  auto it = released_at_.find(member);
  return it == released_at_.end() || revision > it->second;
}

bool Peers::SetWantsPreImage(uint64_t member, bool wants) {
  Peer* peer = Find(member);
  if (peer == nullptr || peer->wants_pre_image == wants) {
    return false;
  }
  peer->wants_pre_image = wants;
  return true;
}

uint64_t Peers::Publish() {
  std::vector<Recipient> recipients;
  recipients.reserve(peers_.size());
  for (const auto& [id, peer] : peers_) {
    recipients.push_back(Recipient{peer.outboxes, peer.wants_pre_image});
  }
  return write_path_.Replace(std::move(recipients), event_index_);
}

bool Peers::SendControl(uint64_t to, RecordKind kind, const ControlRecord& control, uint32_t lane) {
  Peer* peer = Find(to);
  if (peer == nullptr) {
    return false;
  }
  auto body = std::make_shared<std::string>();
  EncodeControlBody(body.get(), control);
  peer->outboxes->lanes[lane]->Append(kind, std::move(body), nullptr);
  return true;
}

std::vector<uint64_t> Peers::SentCounters(uint64_t to) {
  std::vector<uint64_t> counters;
  if (Peer* peer = Find(to)) {
    for (const std::unique_ptr<Outbox>& outbox : peer->outboxes->lanes) {
      counters.push_back(outbox->sent());
    }
  }
  return counters;
}

std::vector<uint64_t> Peers::StreamIds(uint64_t to) {
  std::vector<uint64_t> streams;
  if (Peer* peer = Find(to)) {
    for (const std::unique_ptr<Outbox>& outbox : peer->outboxes->lanes) {
      streams.push_back(outbox->stream_id());
    }
  }
  return streams;
}

InboundLane& Peers::Inbound(uint64_t from, uint32_t lane) {
  return inbound_[{from, lane}];
}

void Peers::AddReceiver(std::shared_ptr<LaneReceiver> receiver) {
  receivers_.push_back(std::move(receiver));
}

void Peers::OnTick() {
  for (auto& [id, peer] : peers_) {
    for (const std::shared_ptr<LaneSender>& sender : peer.senders) {
      sender->OnTick();
    }
  }
  for (const std::shared_ptr<LaneReceiver>& receiver : receivers_) {
    receiver->OnTick();
  }
  std::erase_if(receivers_, [](const auto& receiver) { return receiver->closed(); });
}

void Peers::StopAll() {
  for (auto& [id, peer] : peers_) {
    for (const std::shared_ptr<LaneSender>& sender : peer.senders) {
      sender->Stop();
    }
  }
}

std::optional<int64_t> Peers::TakeMaxAckLatencyUs() {
  std::optional<int64_t> latency_us;
  for (auto& [id, peer] : peers_) {
    for (const std::unique_ptr<Outbox>& outbox : peer.outboxes->lanes) {
      if (const std::optional<int64_t> lane_us = outbox->TakeMaxAckLatencyUs()) {
        latency_us = std::max(latency_us.value_or(0), *lane_us);
      }
    }
  }
  return latency_us;
}

}  // namespace weft::replication
