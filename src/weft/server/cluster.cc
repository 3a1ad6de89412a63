#include "weft/server/cluster.h"

#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <utility>

#include "weft/base/logging.h"
#include "weft/base/strings.h"
#include "weft/base/thread_name.h"
#include "weft/replication/messages.h"
#include "weft/transport/frame.h"

#include <sys/resource.h>

namespace weft::server {
namespace {

using replication::FrameType;

constexpr uint8_t kLaneChannel = 0;
constexpr uint8_t kImageChannel = 1;

std::string Frame(FrameType type, std::string_view payload) {
  std::string frame;
  transport::AppendFrame(&frame, static_cast<uint8_t>(type), payload);
  return frame;
}

// "host:port" -> (host, port); the port after the last colon.
bool SplitAddress(const std::string& address, std::string* host, uint16_t* port) {
  const size_t colon = address.rfind(':');
  if (colon == std::string::npos) {
    return false;
  }
  *host = address.substr(0, colon);
  const int value = std::atoi(address.c_str() + colon + 1);
  if (value <= 0 || value > 65535) {
    return false;
  }
  *port = static_cast<uint16_t>(value);
  return true;
}

// Pulls LaneItems frames from one outbound lane's outbox.
class LaneSource final : public transport::FrameSource {
 public:
  LaneSource(std::shared_ptr<replication::PeerLink> link, uint32_t lane, size_t payload_bytes)
      : link_(std::move(link)), lane_(lane), payload_bytes_(payload_bytes) {}

  bool Fill(std::string* out, size_t max_bytes) override {
    payload_.clear();
    if (!link_->lane(lane_).FillPayload(&payload_, std::min(max_bytes, payload_bytes_))) {
      return false;
    }
    transport::AppendFrame(out, static_cast<uint8_t>(FrameType::kLaneItems), payload_);
    return true;
  }

 private:
  const std::shared_ptr<replication::PeerLink> link_;
  const uint32_t lane_;
  const size_t payload_bytes_;
  std::string payload_;
};

// Runs a provider's ImageSender on the image thread, one chunk per handler so that other work
// on that thread interleaves, and hands each frame to the (peer-thread) connection. Credit
// bounds what is queued on the connection; a rate cap retries on a short timer.
class ImagePump final : public std::enable_shared_from_this<ImagePump> {
 public:
  ImagePump(std::shared_ptr<replication::ImageSender> sender,
            std::weak_ptr<transport::PeerConnection> connection, asio::io_context& io)
      : sender_(std::move(sender)), connection_(std::move(connection)), io_(io), retry_(io) {}

  void Wake() {
    if (!wake_posted_.exchange(true)) {
      asio::post(io_, [self = shared_from_this()] {
        self->wake_posted_ = false;
        self->Produce();
      });
    }
  }

  void AddCredit(uint64_t bytes) {
    sender_->AddCredit(bytes);
    Wake();
  }

 private:
  void Produce() {
    std::shared_ptr<transport::PeerConnection> connection = connection_.lock();
    if (connection == nullptr) {
      return;
    }
    FrameType type;
    switch (sender_->Next(&type, &payload_)) {
      case replication::ImageSender::Fill::kChunk:
        connection->Send(Frame(type, payload_));
        Wake();
        return;
      case replication::ImageSender::Fill::kDone:
        connection->Send(Frame(type, payload_));
        return;
      case replication::ImageSender::Fill::kBlocked:
        // Out of credit (the next credit wakes us too) or over the paced rate, which only
        // time lifts: look again shortly.
        retry_.expires_after(std::chrono::milliseconds(2));
        retry_.async_wait([self = shared_from_this()](const std::error_code& error) {
          if (!error) {
            self->Wake();
          }
        });
        return;
      case replication::ImageSender::Fill::kFinished:
        return;
    }
  }

  const std::shared_ptr<replication::ImageSender> sender_;
  const std::weak_ptr<transport::PeerConnection> connection_;
  asio::io_context& io_;
  asio::steady_timer retry_;
  std::atomic<bool> wake_posted_{false};
  std::string payload_;
};

// The image threads run at a lower priority (nice 10) on both ends: on a busy machine the join
// slows down instead of the writers (DESIGN §5 Phase D), yet it still gets about a tenth of a
// core when everything else is saturated, so it always finishes. (SCHED_IDLE, tried first,
// starved the join entirely under a saturating load.) Their lock holds are a few entries long.
void LowerThreadPriority() {
  constexpr int kImageThreadNice = 10;
  if (setpriority(PRIO_PROCESS, static_cast<id_t>(gettid()), kImageThreadNice) != 0) {
    WEFT_LOG_WARN("could not lower the image thread's priority; the image competes with writers");
  }
}

}  // namespace

// The transport for one region's replicator. Every method posts to the cluster's threads;
// all lane bookkeeping lives on the peer thread.
class RegionOutlet final : public replication::Outlet {
 public:
  RegionOutlet(Cluster& cluster, std::string region)
      : cluster_(cluster), region_(std::move(region)) {}

  void set_replicator(replication::RegionReplicator* replicator) { replicator_ = replicator; }

  void WakeLane(const membership::MemberInfo& peer, uint32_t lane) override {
    asio::post(cluster_.peer_io_, [this, peer, lane] { EnsureLane(peer, lane); });
  }

  void OpenImage(const membership::MemberInfo& provider, uint64_t join_id,
                 std::string request) override {
    asio::post(cluster_.image_io_, [this, provider, join_id, request = std::move(request)] {
      DialImage(provider, join_id, request);
    });
  }

  void DropPeer(uint64_t member_id) override {
    asio::post(cluster_.peer_io_, [this, member_id] {
      for (auto it = lanes_.begin(); it != lanes_.end();) {
        if (it->first.first == member_id) {
          if (it->second->connection) {
            it->second->connection->Close();
          }
          it = lanes_.erase(it);
        } else {
          ++it;
        }
      }
    });
  }

  void CloseAll() {
    for (auto& [key, lane] : lanes_) {
      if (lane->connection) {
        lane->connection->Close();
      }
    }
    lanes_.clear();
  }

 private:
  struct OutboundLane {
    membership::MemberInfo peer;
    uint32_t lane = 0;
    std::shared_ptr<transport::PeerConnection> connection;
    std::unique_ptr<LaneSource> source;
    bool dialing = false;
    int failures = 0;
    std::unique_ptr<asio::steady_timer> retry;
  };

  // Peer thread.
  void EnsureLane(const membership::MemberInfo& peer, uint32_t lane) {
    std::shared_ptr<OutboundLane>& slot = lanes_[{peer.member_id, lane}];
    if (slot == nullptr) {
      slot = std::make_shared<OutboundLane>();
      slot->peer = peer;
      slot->lane = lane;
    }
    if (slot->connection != nullptr) {
      slot->connection->Wake();
      return;
    }
    if (!slot->dialing && (slot->retry == nullptr)) {
      Dial(slot);
    }
  }

  void Dial(const std::shared_ptr<OutboundLane>& slot) {
    std::string host;
    uint16_t port = 0;
    if (!SplitAddress(slot->peer.peer_address, &host, &port)) {
      WEFT_LOG_ERROR("region {}: member {} has no usable peer address '{}'", region_,
                     slot->peer.name, slot->peer.peer_address);
      return;
    }
    slot->dialing = true;
    std::weak_ptr<OutboundLane> weak = slot;
    transport::PeerConnection::Dial(
        cluster_.peer_io_, host, port, cluster_.identity_, cluster_.state_.config().secret,
        transport::ChannelInfo{kLaneChannel, static_cast<uint16_t>(slot->lane)},
        [this, weak](StatusOr<std::shared_ptr<transport::PeerConnection>> dialed) {
          std::shared_ptr<OutboundLane> slot = weak.lock();
          if (slot == nullptr) {
            if (dialed.ok()) {
              (*dialed)->Close();
            }
            return;
          }
          slot->dialing = false;
          if (!dialed.ok()) {
            WEFT_LOG_WARN("region {}: cannot open lane {} to {}: {}", region_, slot->lane,
                          slot->peer.name, std::string(dialed.status().message()));
            replicator_->OnLaneClosed(slot->peer.member_id, slot->lane);
            ScheduleRedial(slot);
            return;
          }
          Opened(slot, *std::move(dialed));
        });
  }

  void Opened(const std::shared_ptr<OutboundLane>& slot,
              std::shared_ptr<transport::PeerConnection> connection) {
    slot->connection = connection;
    const uint64_t peer = slot->peer.member_id;
    const uint32_t lane = slot->lane;
    std::weak_ptr<OutboundLane> weak = slot;
    std::weak_ptr<transport::PeerConnection> weak_connection = connection;
    connection->Start(
        [this, weak, weak_connection, peer, lane](uint8_t type, std::string_view payload) {
          std::shared_ptr<OutboundLane> slot = weak.lock();
          std::shared_ptr<transport::PeerConnection> connection = weak_connection.lock();
          if (slot == nullptr || connection == nullptr) {
            return;
          }
          StatusOr<uint64_t> counter = replication::DecodeCounter(payload);
          if (!counter.ok()) {
            WEFT_LOG_WARN("region {}: bad frame on lane {} to {}: {}", region_, lane,
                          slot->peer.name, std::string(counter.status().message()));
            connection->Close();
            return;
          }
          if (type == static_cast<uint8_t>(FrameType::kChannelResume)) {
            replicator_->OnLaneResumed(peer, lane, *counter);
            std::shared_ptr<replication::PeerLink> link = replicator_->PeerLinkFor(peer);
            if (link == nullptr) {
              connection->Close();
              return;
            }
            slot->failures = 0;
            slot->source = std::make_unique<LaneSource>(link, lane, kLanePayloadBytes);
            connection->SetSource(slot->source.get());
            connection->Wake();
          } else if (type == static_cast<uint8_t>(FrameType::kAck)) {
            replicator_->OnAck(peer, lane, *counter);
          } else {
            WEFT_LOG_WARN("region {}: unexpected frame type {} on lane {} to {}", region_, type,
                          lane, slot->peer.name);
            connection->Close();
          }
        },
        [this, weak, peer, lane](const Status& status) {
          asio::post(cluster_.peer_io_, [this, weak, peer, lane, status] {
            replicator_->OnLaneClosed(peer, lane);
            std::shared_ptr<OutboundLane> slot = weak.lock();
            if (slot == nullptr) {
              return;
            }
            WEFT_LOG_INFO("region {}: lane {} to {} closed: {}", region_, lane, slot->peer.name,
                          std::string(status.message()));
            slot->connection.reset();
            ScheduleRedial(slot);
          });
        });
    connection->Send(Frame(FrameType::kChannelOpen, replication::EncodeChannelOpen(
                                                        replicator_->ChannelOpenFor(peer, lane))));
  }

  // A broken or refused lane is retried with backoff while the peer is still in the group.
  void ScheduleRedial(const std::shared_ptr<OutboundLane>& slot) {
    if (replicator_->PeerLinkFor(slot->peer.member_id) == nullptr) {
      return;  // the member left; DropPeer forgets the lane
    }
    const int shift = std::min(slot->failures++, 5);
    slot->retry = std::make_unique<asio::steady_timer>(cluster_.peer_io_);
    slot->retry->expires_after(std::chrono::milliseconds(50 << shift));
    std::weak_ptr<OutboundLane> weak = slot;
    slot->retry->async_wait([this, weak](const std::error_code& error) {
      std::shared_ptr<OutboundLane> slot = weak.lock();
      if (error || slot == nullptr) {
        return;
      }
      slot->retry.reset();
      if (slot->connection == nullptr && !slot->dialing) {
        Dial(slot);
      }
    });
  }

  // Image thread: the joiner's side of the image.
  void DialImage(const membership::MemberInfo& provider, uint64_t join_id,
                 const std::string& request) {
    std::string host;
    uint16_t port = 0;
    if (!SplitAddress(provider.peer_address, &host, &port)) {
      replicator_->OnImageClosed(join_id, absl::InvalidArgumentError("bad provider address"));
      return;
    }
    transport::PeerConnection::Dial(
        cluster_.image_io_, host, port, cluster_.identity_, cluster_.state_.config().secret,
        transport::ChannelInfo{kImageChannel, 0},
        [this, join_id, request](StatusOr<std::shared_ptr<transport::PeerConnection>> dialed) {
          if (!dialed.ok()) {
            replicator_->OnImageClosed(join_id, dialed.status());
            return;
          }
          std::shared_ptr<transport::PeerConnection> connection = *std::move(dialed);
          std::weak_ptr<transport::PeerConnection> weak = connection;
          auto finished = std::make_shared<bool>(false);
          connection->Start(
              [this, join_id, weak, finished](uint8_t type, std::string_view payload) {
                std::shared_ptr<transport::PeerConnection> connection = weak.lock();
                if (connection == nullptr) {
                  return;
                }
                if (type == static_cast<uint8_t>(FrameType::kImageChunk)) {
                  StatusOr<uint64_t> credit = replicator_->OnImageChunk(join_id, payload);
                  if (!credit.ok()) {
                    WEFT_LOG_WARN("region {}: image chunk refused: {}", region_,
                                  std::string(credit.status().message()));
                    connection->Close();
                    return;
                  }
                  connection->Send(
                      Frame(FrameType::kImageCredit, replication::EncodeCounter(*credit)));
                } else if (type == static_cast<uint8_t>(FrameType::kImageDone)) {
                  StatusOr<replication::ImageDone> done = replication::DecodeImageDone(payload);
                  if (done.ok()) {
                    *finished = true;
                    replicator_->OnImageDone(join_id, *done);
                  }
                  connection->Close();
                } else {
                  connection->Close();
                }
              },
              [this, join_id, finished](const Status& status) {
                if (!*finished) {
                  replicator_->OnImageClosed(
                      join_id,
                      status.ok() ? absl::UnavailableError("image connection closed") : status);
                }
              });
          connection->Send(Frame(FrameType::kImageRequest, request));
        });
  }

  static constexpr size_t kLanePayloadBytes = 256 * 1024;

  Cluster& cluster_;
  const std::string region_;
  replication::RegionReplicator* replicator_ = nullptr;
  std::map<std::pair<uint64_t, uint32_t>, std::shared_ptr<OutboundLane>> lanes_;  // peer thread
};

Cluster::Cluster(ServerState& state, membership::Registry& registry)
    : state_(state), registry_(registry) {}

Cluster::~Cluster() {
  Stop();
}

replication::RegionReplicator* Cluster::replicator(const std::string& region) {
  for (auto& replicator : replicators_) {
    if (replicator->region() == region) {
      return replicator.get();
    }
  }
  return nullptr;
}

Status Cluster::Start() {
  const ServerConfig& config = state_.config();
  const std::string host = config.peer_bind.empty() ? config.bind : config.peer_bind;
  identity_.cluster = config.cluster;
  identity_.member_id = state_.member_id();
  identity_.member_name = config.name;
  listener_ = std::make_unique<transport::PeerListener>(
      peer_io_, identity_, config.secret,
      [this](std::shared_ptr<transport::PeerConnection> connection,
             const transport::PeerIdentity& peer,
             transport::ChannelInfo channel) { OnAccept(std::move(connection), peer, channel); });
  WEFT_RETURN_IF_ERROR(listener_->Listen(host, static_cast<uint16_t>(config.peer_port)));
  peer_port_ = listener_->port();
  threads_.emplace_back([this] {
    SetThreadName("weft-peer");
    auto guard = asio::make_work_guard(peer_io_);
    peer_io_.run();
  });
  threads_.emplace_back([this] {
    SetThreadName("weft-image");
    LowerThreadPriority();
    auto guard = asio::make_work_guard(image_io_);
    image_io_.run();
  });

  self_.member_id = state_.member_id();
  self_.name = config.name;
  self_.peer_address = StrCat(host, ":", peer_port_);
  self_.client_address = StrCat(config.bind, ":", state_.port());
  // A lost lease means the others have dropped this member: its regions stop serving.
  registry_.SetLeaseLostCallback([this] {
    for (size_t i = 0; i < state_.database_count(); ++i) {
      if (replication::RegionReplicator* replicator = state_.database(i).replicator()) {
        replicator->OnMembershipLost("the registry lease of this member expired");
      }
    }
  });
  WEFT_RETURN_IF_ERROR(registry_.Register(self_));
  WEFT_LOG_INFO("member {} ({:016x}) in cluster '{}', peers on {}", self_.name, self_.member_id,
                config.cluster, self_.peer_address);

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
    outlets_.push_back(std::make_unique<RegionOutlet>(*this, options.region));
    replicators_.push_back(std::make_unique<replication::RegionReplicator>(
        options, database.store(), database.versions(), registry_, self_, state_.clock(),
        *randoms_.back(), *outlets_.back(), database.event_log()));
    replication::RegionReplicator* replicator = replicators_.back().get();
    outlets_.back()->set_replicator(replicator);
    database.set_replicator(replicator);
    state_.set_replicated();
    watches_.push_back(registry_.Watch(
        options.region,
        [replicator](const membership::GroupView& view) { replicator->OnGroupView(view); }));
    if (!config.debug_hold_phase.empty()) {
      // Before Start: the join begins inside it.
      replicator->HoldPhase(*replication::ParseJoinPhase(config.debug_hold_phase), true);
    }
    WEFT_RETURN_IF_ERROR(replicator->Start());
  }
  if (config.enable_debug_command) {
    state_.set_cluster_debug_hooks(this);
  }
  return absl::OkStatus();
}

void Cluster::Stop() {
  if (stopped_) {
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
  asio::post(peer_io_, [this] {
    if (listener_) {
      listener_->Close();
    }
    for (auto& outlet : outlets_) {
      outlet->CloseAll();
    }
    MutexLock lock(&inbound_lanes_mutex_);
    for (auto& [token, lane] : inbound_lanes_) {
      lane.second->Close();
    }
  });
  peer_io_.stop();
  image_io_.stop();
  for (std::thread& thread : threads_) {
    thread.join();
  }
  threads_.clear();
  for (size_t i = 0; i < state_.database_count(); ++i) {
    state_.database(i).set_replicator(nullptr);
  }
}

void Cluster::OnAccept(std::shared_ptr<transport::PeerConnection> connection,
                       const transport::PeerIdentity& peer, transport::ChannelInfo channel) {
  if (channel.kind == kLaneChannel) {
    ServeInboundLane(std::move(connection), peer);
  } else if (channel.kind == kImageChannel) {
    ServeImageRequest(std::move(connection), peer);
  } else {
    WEFT_LOG_WARN("peer {} opened an unknown channel kind {}", peer.member_name, channel.kind);
    connection->Close();
  }
}

void Cluster::ServeInboundLane(std::shared_ptr<transport::PeerConnection> connection,
                               const transport::PeerIdentity& peer) {
  struct LaneState {
    replication::RegionReplicator* replicator = nullptr;
    uint64_t from = 0;
    uint32_t lane = 0;
    std::optional<uint64_t> tracking;  // TrackInboundLane's token
  };
  auto lane_state = std::make_shared<LaneState>();
  std::weak_ptr<transport::PeerConnection> weak = connection;
  connection->Start(
      [this, lane_state, weak, peer](uint8_t type, std::string_view payload) {
        std::shared_ptr<transport::PeerConnection> connection = weak.lock();
        if (connection == nullptr) {
          return;
        }
        if (lane_state->replicator == nullptr) {
          StatusOr<replication::ChannelOpen> open = replication::DecodeChannelOpen(payload);
          Status refusal;
          if (type != static_cast<uint8_t>(FrameType::kChannelOpen) || !open.ok()) {
            refusal = absl::InvalidArgumentError("the first frame of a lane must be ChannelOpen");
          } else if (open->from != peer.member_id) {
            refusal = absl::PermissionDeniedError(
                "ChannelOpen names another member than the "
                "authenticated one");
          } else if ((lane_state->replicator = replicator(std::string(open->region))) == nullptr) {
            refusal = absl::NotFoundError(StrCat("no region '", open->region, "' here"));
          }
          StatusOr<uint64_t> received = refusal.ok() ? lane_state->replicator->OnChannelOpen(*open)
                                                     : StatusOr<uint64_t>(refusal);
          if (!received.ok()) {
            WEFT_LOG_WARN("refusing a lane from {}: {}", peer.member_name,
                          std::string(received.status().message()));
            lane_state->replicator = nullptr;
            connection->Close();
            return;
          }
          lane_state->from = open->from;
          lane_state->lane = open->lane;
          lane_state->tracking =
              TrackInboundLane({std::string(open->region), open->from, open->lane}, connection);
          connection->Send(Frame(FrameType::kChannelResume, replication::EncodeCounter(*received)));
          return;
        }
        if (type != static_cast<uint8_t>(FrameType::kLaneItems)) {
          WEFT_LOG_WARN("unexpected frame type {} on a lane from {}", type, peer.member_name);
          connection->Close();
          return;
        }
        StatusOr<uint64_t> received =
            lane_state->replicator->OnLaneItems(lane_state->from, lane_state->lane, payload);
        if (!received.ok()) {
          WEFT_LOG_WARN("closing lane {} from {}: {}", lane_state->lane, peer.member_name,
                        std::string(received.status().message()));
          connection->Close();
          return;
        }
        connection->Send(Frame(FrameType::kAck, replication::EncodeCounter(*received)));
      },
      [this, lane_state](const Status&) {
        if (lane_state->tracking) {
          UntrackInboundLane(*lane_state->tracking);
        }
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
    if (lane.first != id) {
      continue;
    }
    if (hold) {
      lane.second->PauseReading();
    } else {
      lane.second->ResumeReading();
    }
  }
  return absl::OkStatus();
}

void Cluster::ServeImageRequest(std::shared_ptr<transport::PeerConnection> connection,
                                const transport::PeerIdentity& peer) {
  struct ImageState {
    std::shared_ptr<ImagePump> pump;
  };
  auto image_state = std::make_shared<ImageState>();
  std::weak_ptr<transport::PeerConnection> weak = connection;
  connection->Start(
      [this, image_state, weak, peer](uint8_t type, std::string_view payload) {
        std::shared_ptr<transport::PeerConnection> connection = weak.lock();
        if (connection == nullptr) {
          return;
        }
        if (image_state->pump == nullptr) {
          StatusOr<replication::ImageRequest> request = replication::DecodeImageRequest(payload);
          StatusOr<std::shared_ptr<replication::ImageSender>> sender = absl::InvalidArgumentError(
              "the first frame of an image channel must be ImageRequest");
          if (type == static_cast<uint8_t>(FrameType::kImageRequest) && request.ok()) {
            replication::RegionReplicator* target = replicator(std::string(request->region));
            sender = target == nullptr ? absl::NotFoundError("no such region")
                                       : target->OnImageRequest(*request);
          }
          if (!sender.ok()) {
            WEFT_LOG_WARN("refusing an image to {}: {}", peer.member_name,
                          std::string(sender.status().message()));
            connection->Send(
                Frame(FrameType::kImageRefused, std::string(sender.status().message())));
            connection->Close();
            return;
          }
          image_state->pump = std::make_shared<ImagePump>(*std::move(sender), weak, image_io_);
          image_state->pump->Wake();
          return;
        }
        if (type == static_cast<uint8_t>(FrameType::kImageCredit)) {
          StatusOr<uint64_t> credit = replication::DecodeCounter(payload);
          if (credit.ok()) {
            image_state->pump->AddCredit(*credit);
            return;
          }
        }
        connection->Close();
      },
      [](const Status&) {});
}

}  // namespace weft::server
