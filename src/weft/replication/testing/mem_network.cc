#include "weft/replication/testing/mem_network.h"

#include <algorithm>

#include "weft/base/check.h"

namespace weft::replication::testing {

void RecordingConsumer::OnChange(const ChangeEvent& event) {
  RecordedEvent recorded;
  recorded.key = std::string(event.key);
  if (event.old_value) {
    recorded.old_value = std::string(*event.old_value);
  }
  if (event.new_value) {
    recorded.new_value = std::string(*event.new_value);
  }
  recorded.version = event.version;
  events.push_back(std::move(recorded));
}

MemMember::MemMember(MemNetwork& network, std::string name, uint64_t id, ReplicatorOptions options,
                     uint64_t seed)
    : network_(network),
      name_(std::move(name)),
      id_(id),
      store_(storage::StoreOptions{.shard_count = 16}, network.clock()),
      versions_(network.clock(), id),
      random_(seed) {
  membership::MemberInfo self;
  self.member_id = id;
  self.name = name_;
  self.peer_address = "mem:" + name_;
  self.client_address = "mem:" + name_;
  registry_ = std::make_unique<membership::InProcessRegistry>(network.hub_);
  WEFT_CHECK(registry_->Register(self).ok());
  replicator_ =
      std::make_unique<RegionReplicator>(std::move(options), store_, versions_, *registry_, self,
                                         network.clock(), random_, *this, &consumer_);
}

MemMember::~MemMember() {
  watch_.reset();
  replicator_.reset();
}

void MemMember::WakeLane(const membership::MemberInfo& peer, uint32_t lane) {
  if (network_.opened_.insert({id_, peer.member_id, lane}).second) {
    network_.to_open_.insert({id_, peer.member_id, lane});
  }
}

void MemMember::OpenImage(const membership::MemberInfo& provider, uint64_t join_id,
                          std::string request) {
  auto image = std::make_unique<MemNetwork::Image>();
  image->joiner = id_;
  image->provider = provider.member_id;
  image->join_id = join_id;
  image->request = std::move(request);
  network_.images_.push_back(std::move(image));
}

void MemMember::DropPeer(uint64_t member_id) {}

void MemMember::Set(std::string_view key, std::string_view value) {
  store_.WithKey(key,
                 [&](storage::LockedKeys& keys) { keys.Set(key, value, versions_.Next(), 0); });
}

void MemMember::Delete(std::string_view key) {
  store_.WithKey(key, [&](storage::LockedKeys& keys) { keys.Delete(key, versions_.Next()); });
}

std::optional<std::string> MemMember::Get(std::string_view key) {
  return store_.WithKey(key, [&](storage::LockedKeys& keys) -> std::optional<std::string> {
    const std::optional<storage::EntryView> entry = keys.Find(key);
    if (!entry) {
      return std::nullopt;
    }
    return std::string(entry->value);
  });
}

MemNetwork::MemNetwork(uint64_t seed)
    : random_(seed), hub_([this](std::function<void()> callback) {
        registry_callbacks_.push_back(std::move(callback));
      }) {}

MemNetwork::~MemNetwork() {
  images_.clear();
  members_.clear();
}

MemMember& MemNetwork::AddMember(std::string name, ReplicatorOptions options) {
  const uint64_t id = next_id_++;
  members_.push_back(
      std::make_unique<MemMember>(*this, std::move(name), id, std::move(options), random_.Next()));
  MemMember& member = *members_.back();
  const std::string region = member.replicator().region();
  member.watch_ = member.registry_->Watch(region, [&member](const membership::GroupView& view) {
    member.replicator().OnGroupView(view);
  });
  WEFT_CHECK(member.replicator().Start().ok());
  return member;
}

void MemNetwork::ExpireLease(MemMember& member) {
  hub_.Expire(member.id());
}

void MemNetwork::Crash(MemMember& member) {
  const uint64_t id = member.id();
  hub_.Expire(id);
  for (auto it = opened_.begin(); it != opened_.end();) {
    const auto& [from, to, lane] = *it;
    if (from == id || to == id) {
      MemMember* survivor = Find(from == id ? to : from);
      if (survivor != nullptr && from != id) {
        survivor->replicator().OnLaneClosed(to, lane);
      }
      it = opened_.erase(it);
    } else {
      ++it;
    }
  }
  for (auto& image : images_) {
    if (!image->finished && (image->provider == id || image->joiner == id)) {
      image->finished = true;
      MemMember* joiner = Find(image->joiner);
      if (joiner != nullptr) {
        joiner->replicator().OnImageClosed(image->join_id,
                                           absl::UnavailableError("provider crashed"));
      }
    }
  }
  auto it = std::find_if(members_.begin(), members_.end(),
                         [&](const auto& m) { return m.get() == &member; });
  members_.erase(it);
}

MemMember* MemNetwork::Find(uint64_t id) {
  for (auto& member : members_) {
    if (member->id() == id) {
      return member.get();
    }
  }
  return nullptr;
}

std::vector<MemMember*> MemNetwork::members() {
  std::vector<MemMember*> result;
  for (auto& member : members_) {
    result.push_back(member.get());
  }
  return result;
}

void MemNetwork::HoldLane(const MemMember& from, const MemMember& to, uint32_t lane, bool hold) {
  if (hold) {
    held_.insert({from.id(), to.id(), lane});
  } else {
    held_.erase({from.id(), to.id(), lane});
  }
}

bool MemNetwork::DeliverLane(const LaneKey& key) {
  const auto& [from_id, to_id, lane] = key;
  MemMember* from = Find(from_id);
  MemMember* to = Find(to_id);
  if (from == nullptr || to == nullptr || held_.contains(key)) {
    return false;
  }
  Outbox* outbox = from->replicator().OutboxFor(to_id, lane);
  if (outbox == nullptr) {
    return false;
  }
  std::string payload;
  if (!outbox->FillPayload(&payload, 64 * 1024)) {
    return false;
  }
  StatusOr<uint64_t> received = to->replicator().OnLaneItems(from_id, lane, payload);
  WEFT_CHECK(received.ok());
  from->replicator().OnAck(to_id, lane, *received);
  return true;
}

bool MemNetwork::DeliverImage(Image& image) {
  MemMember* joiner = Find(image.joiner);
  MemMember* provider = Find(image.provider);
  if (image.finished || joiner == nullptr || provider == nullptr) {
    return false;
  }
  if (image.sender == nullptr) {
    StatusOr<ImageRequest> request = DecodeImageRequest(image.request);
    WEFT_CHECK(request.ok());
    StatusOr<std::shared_ptr<ImageSender>> sender = provider->replicator().OnImageRequest(*request);
    if (!sender.ok()) {
      image.finished = true;
      joiner->replicator().OnImageClosed(image.join_id, sender.status());
      return true;
    }
    image.sender = std::move(*sender);
    return true;
  }
  FrameType type;
  std::string payload;
  switch (image.sender->Next(&type, &payload)) {
    case ImageSender::Fill::kChunk: {
      StatusOr<uint64_t> credit = joiner->replicator().OnImageChunk(image.join_id, payload);
      if (!credit.ok()) {
        image.finished = true;
        return true;
      }
      image.sender->AddCredit(*credit);
      return true;
    }
    case ImageSender::Fill::kDone: {
      StatusOr<ImageDone> done = DecodeImageDone(payload);
      WEFT_CHECK(done.ok());
      image.finished = true;
      joiner->replicator().OnImageDone(image.join_id, *done);
      return true;
    }
    case ImageSender::Fill::kBlocked:
    case ImageSender::Fill::kFinished:
      return false;
  }
  return false;
}

bool MemNetwork::Step() {
  // Open new lanes first, as a transport dials on a wake-up: the receiver reports its counter
  // and the sender resumes from it.
  while (!to_open_.empty()) {
    const LaneKey key = *to_open_.begin();
    to_open_.erase(to_open_.begin());
    const auto& [from_id, to_id, lane] = key;
    MemMember* from = Find(from_id);
    MemMember* to = Find(to_id);
    if (from == nullptr || to == nullptr) {
      continue;
    }
    StatusOr<uint64_t> through =
        to->replicator().OnChannelOpen(from->replicator().ChannelOpenFor(to_id, lane));
    WEFT_CHECK(through.ok());
    from->replicator().OnLaneResumed(to_id, lane, *through);
  }
  // Periodic work happens now and then even while traffic never stops.
  if (random_.OneIn(64)) {
    for (auto& member : members_) {
      member->replicator().OnTick();
    }
  }
  std::vector<std::function<bool()>> actions;
  if (!registry_callbacks_.empty()) {
    actions.push_back([this] {
      std::function<void()> callback = std::move(registry_callbacks_.front());
      registry_callbacks_.pop_front();
      callback();
      return true;
    });
  }
  for (const LaneKey& key : opened_) {
    actions.push_back([this, key] { return DeliverLane(key); });
  }
  for (auto& image : images_) {
    Image* raw = image.get();
    actions.push_back([this, raw] { return DeliverImage(*raw); });
  }
  // Try actions in a random order; the first that does something is this step.
  while (!actions.empty()) {
    const size_t pick = random_.Uniform(actions.size());
    if (actions[pick]()) {
      return true;
    }
    actions[pick] = std::move(actions.back());
    actions.pop_back();
  }
  return false;
}

void MemNetwork::Run(int max_steps) {
  for (int steps = 0; steps < max_steps; ++steps) {
    if (Step()) {
      continue;
    }
    // Quiet: let every member run its periodic work, which may produce more.
    for (auto& member : members_) {
      member->replicator().OnTick();
    }
    if (!Step()) {
      return;
    }
  }
  WEFT_CHECK(false && "MemNetwork::Run did not become quiet");
}

}  // namespace weft::replication::testing
