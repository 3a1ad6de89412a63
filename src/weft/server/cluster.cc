#include "weft/server/cluster.h"

#include <utility>

#include "weft/base/logging.h"
#include "weft/base/strings.h"
#include "weft/replication/messages.h"

namespace weft::server {

// DEBUG HOLD-LANE plumbing, not protocol: forwards an accepted lane's frames to the router's
// session, and on the first one notes which (region, member, lane) the connection carries so the
// hook can pause its reading.
class Cluster::LaneTap final : public replication::ChannelSession {
 public:
  LaneTap(Cluster& cluster, std::shared_ptr<transport::PeerConnection> connection,
          std::shared_ptr<replication::ChannelSession> target)
      : cluster_(cluster), connection_(std::move(connection)), target_(std::move(target)) {}
  ~LaneTap() override {
    if (token_) {
      cluster_.UntrackInboundLane(*token_);
    }
  }

  void OnFrame(uint8_t type, std::string_view payload) override {
    if (!token_ && type == static_cast<uint8_t>(replication::FrameType::kChannelOpen)) {
      if (StatusOr<replication::ChannelOpen> open = replication::DecodeChannelOpen(payload);
          open.ok()) {
        token_ = cluster_.TrackInboundLane({std::string(open->region), open->from, open->lane},
                                           connection_);
      }
    }
    target_->OnFrame(type, payload);
  }
  bool Pull(replication::OutFrame* frame, size_t max_bytes) override {
    return target_->Pull(frame, max_bytes);
  }
  void OnClosed(const Status& reason) override { target_->OnClosed(reason); }

 private:
  Cluster& cluster_;
  const std::shared_ptr<transport::PeerConnection> connection_;
  const std::shared_ptr<replication::ChannelSession> target_;
  std::optional<uint64_t> token_;
};

Cluster::Cluster(ServerState& state, membership::Registry& registry)
    : state_(state), registry_(registry) {}

Cluster::~Cluster() {
  Stop();
}

Status Cluster::Start() {
  const ServerConfig& config = state_.config();
  const std::string host = config.peer_bind.empty() ? config.bind : config.peer_bind;
  identity_.cluster = config.cluster;
  identity_.member_id = state_.member_id();
  identity_.member_name = config.name;
  host_ = std::make_unique<ClusterHost>(registry_, identity_, config.secret);
  listener_ = std::make_unique<transport::PeerListener>(
      host_->protocol_io(), identity_, config.secret,
      [this](std::shared_ptr<transport::PeerConnection> connection,
             const transport::PeerIdentity& peer,
             transport::ChannelInfo channel) { OnAccept(std::move(connection), peer, channel); });
  WEFT_RETURN_IF_ERROR(listener_->Listen(host, static_cast<uint16_t>(config.peer_port)));
  peer_port_ = listener_->port();

  self_.member_id = state_.member_id();
  self_.name = config.name;
  self_.peer_address = StrCat(host, ":", peer_port_);
  self_.client_address = StrCat(config.bind, ":", state_.port());
  // A lost lease means the others have dropped this member: its regions stop serving.
  registry_.SetLeaseLostCallback([this](uint64_t registration) {
    host_->Post([this, registration] {
      for (auto& replicator : replicators_) {
        replicator->OnMembershipLost("the registry lease of this member expired", registration);
      }
    });
  });
  WEFT_RETURN_IF_ERROR(registry_.Register(self_));
  WEFT_LOG_INFO("member {} ({:016x}) in cluster '{}', peers on {}", self_.name, self_.member_id,
                config.cluster, self_.peer_address);

  // Everything below runs before the protocol thread starts, so it is the protocol thread's
  // work done on this one.
  for (size_t i = 0; i < state_.database_count(); ++i) {
    Database& database = state_.database(i);
    replication::ReplicatorOptions options;
    options.region = database.region().name;
    options.mode = database.region().sync ? replication::ReplicationMode::kSync
                                          : replication::ReplicationMode::kAsync;
    options.lanes = config.lanes;
    options.preferred_provider = config.provider;
    options.image_rate_limit_bytes_per_s = static_cast<uint64_t>(config.image_rate_limit);
    options.outbox_bytes_max = static_cast<size_t>(config.peer_backlog_limit);
    options.ack_timeout_ms = config.peer_timeout_seconds * 1000;
    options.pace_images = true;
    randoms_.push_back(std::make_unique<Random>(state_.NextRandom()));
    replicators_.push_back(std::make_unique<replication::RegionReplicator>(
        options, database.store(), database.versions(), self_, state_.clock(), *randoms_.back(),
        *host_, database.event_log()));
    replication::RegionReplicator* replicator = replicators_.back().get();
    router_.Add(replicator);
    database.set_replicator(replicator);
    state_.set_replicated();
    if (!config.debug_hold_phase.empty()) {
      // Before Start: the join begins inside it.
      replicator->HoldPhase(*replication::ParseJoinPhase(config.debug_hold_phase), true);
    }
    replicator->Start();
    watches_.push_back(
        registry_.Watch(options.region, [this, replicator](const membership::GroupView& view) {
          host_->Post([replicator, view] { replicator->OnGroupView(view); });
        }));
  }
  host_->StartThreads();
  if (config.enable_debug_command) {
    state_.set_cluster_debug_hooks(this);
  }
  return absl::OkStatus();
}

void Cluster::Stop() {
  if (stopped_ || host_ == nullptr) {
    return;
  }
  stopped_ = true;
  state_.set_cluster_debug_hooks(nullptr);
  registry_.SetLeaseLostCallback(nullptr);
  watches_.clear();
  if (!replicators_.empty()) {
    if (Status status = registry_.Deregister(); !status.ok()) {
      WEFT_LOG_WARN("leaving the registry failed: {}", status.ToString());
    }
  }
  host_->Post([this] {
    listener_->Close();
    for (auto& replicator : replicators_) {
      replicator->Stop();
    }
  });
  host_->Stop();
  for (size_t i = 0; i < state_.database_count(); ++i) {
    state_.database(i).set_replicator(nullptr);
  }
}

void Cluster::OnAccept(std::shared_ptr<transport::PeerConnection> connection,
                       const transport::PeerIdentity& peer, transport::ChannelInfo channel) {
  if (channel.kind != static_cast<uint8_t>(replication::ChannelKind::kLane) &&
      channel.kind != static_cast<uint8_t>(replication::ChannelKind::kImage)) {
    WEFT_LOG_WARN("peer {} opened an unknown channel kind {}", peer.member_name, channel.kind);
    connection->Close();
    return;
  }
  const auto kind = static_cast<replication::ChannelKind>(channel.kind);
  std::shared_ptr<transport::PeerConnection> tapped = connection;
  ClusterHost::Serve(std::move(connection), [&](replication::Channel& open) {
    std::shared_ptr<replication::ChannelSession> session =
        router_.Accept(peer.member_id, kind, open);
    if (kind == replication::ChannelKind::kLane) {
      session = std::make_shared<LaneTap>(*this, tapped, std::move(session));
    }
    return session;
  });
}

uint64_t Cluster::TrackInboundLane(const InboundLaneId& id,
                                   const std::shared_ptr<transport::PeerConnection>& connection) {
  MutexLock lock(&inbound_lanes_mutex_);
  const uint64_t token = next_inbound_token_++;
  inbound_lanes_.emplace(token, std::make_pair(id, connection));
  if (held_inbound_lanes_.contains(id)) {
    connection->PauseReading();
  }
  return token;
}

void Cluster::UntrackInboundLane(uint64_t token) {
  MutexLock lock(&inbound_lanes_mutex_);
  inbound_lanes_.erase(token);
}

Status Cluster::HoldInboundLane(const Database& database, std::string_view member,
                                std::string_view key, bool hold) {
  replication::RegionReplicator* replicator = database.replicator();
  if (replicator == nullptr) {
    return absl::FailedPreconditionError("this region does not replicate");
  }
  std::optional<uint64_t> from;
  for (const membership::GroupMember& listed : replicator->GetStatus().members) {
    if (listed.info.name == member) {
      from = listed.info.member_id;
    }
  }
  if (!from) {
    return absl::NotFoundError(StrCat("no member named '", member, "' in the region's group"));
  }
  const InboundLaneId id{database.region().name, *from, replicator->LaneOf(key)};
  WEFT_LOG_INFO("DEBUG HOLD-LANE: lane {} from {} {}", std::get<2>(id), member,
                hold ? "held" : "released");
  MutexLock lock(&inbound_lanes_mutex_);
  if (hold) {
    held_inbound_lanes_.insert(id);
  } else {
    held_inbound_lanes_.erase(id);
  }
  for (auto& [token, lane] : inbound_lanes_) {
    std::shared_ptr<transport::PeerConnection> connection = lane.second.lock();
    if (lane.first != id || connection == nullptr) {
      continue;
    }
    if (hold) {
      connection->PauseReading();
    } else {
      connection->ResumeReading();
    }
  }
  return absl::OkStatus();
}

}  // namespace weft::server
