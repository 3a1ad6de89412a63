// Cluster: what makes a weftd process a member — its registry entry, the peer listener, and
// for every region a RegionReplicator wired to real TCP channels (DESIGN.md §3: the transport
// and membership layers around the sans-I/O protocol).
//
// Threads: peer lanes run on one "peer" io_context thread; image connections that this member
// dials (as a joiner) run on their own "image" thread, so applying a bulk image never delays
// live changes. Client threads only touch the replicators through the store's change observer
// and WriteTickets.
//
// Channel handling:
//  - outbound lanes (this member sends): dialed on the replicator's first wake-up for that
//    (region, peer, lane); ChannelOpen -> ChannelResume(received) -> the outbox resumes; the
//    connection pulls LaneItems frames from the outbox; Acks come back on it. A broken lane is
//    redialed with backoff while the peer is in the group.
//  - inbound lanes: ChannelOpen (its sender must be the authenticated member) -> counter;
//    LaneItems applied in order, one Ack per frame.
//  - image: the joiner dials the provider, sends ImageRequest, applies chunks and grants credit.
//
// Thread safety: Start/Stop from the controlling thread; the Outlets are called from any thread.
#pragma once

#include <map>
#include <memory>
#include <set>
#include <string>
#include <thread>
#include <tuple>
#include <vector>

#include "weft/base/mutex.h"
#include "weft/base/random.h"
#include "weft/base/status.h"
#include "weft/membership/registry.h"
#include "weft/replication/replicator.h"
#include "weft/server/server_state.h"
#include "weft/transport/peer_link.h"

#include <asio.hpp>

namespace weft::server {

class RegionOutlet;

class Cluster : public ClusterDebugHooks {
 public:
  // `registry` must outlive the cluster. `state` provides the regions' stores and config.
  Cluster(ServerState& state, membership::Registry& registry);
  ~Cluster() override;
  Cluster(const Cluster&) = delete;
  Cluster& operator=(const Cluster&) = delete;

  // Listens on the peer port, registers this member, and enters every region (bootstrapping
  // or joining). Returns once the joins have started; they go on in the background.
  Status Start();
  // Leaves the registry and closes every peer connection.
  void Stop();

  int peer_port() const { return peer_port_; }
  const membership::MemberInfo& self() const { return self_; }
  replication::RegionReplicator* replicator(const std::string& region);

  // ClusterDebugHooks.
  Status HoldInboundLane(const Database& database, std::string_view member, std::string_view key,
                         bool hold) override;

 private:
  friend class RegionOutlet;

  // An inbound lane as DEBUG HOLD-LANE names it: (region, sending member, lane).
  using InboundLaneId = std::tuple<std::string, uint64_t, uint32_t>;
  // Registers an opened inbound lane (paused at once if held) and owns it until it closes: a
  // paused connection has no read in flight to keep it alive. The token unregisters it.
  uint64_t TrackInboundLane(const InboundLaneId& id,
                            const std::shared_ptr<transport::PeerConnection>& connection);
  void UntrackInboundLane(uint64_t token);

  void OnAccept(std::shared_ptr<transport::PeerConnection> connection,
                const transport::PeerIdentity& peer, transport::ChannelInfo channel);
  void ServeInboundLane(std::shared_ptr<transport::PeerConnection> connection,
                        const transport::PeerIdentity& peer);
  void ServeImageRequest(std::shared_ptr<transport::PeerConnection> connection,
                         const transport::PeerIdentity& peer);

  ServerState& state_;
  membership::Registry& registry_;
  membership::MemberInfo self_;
  transport::PeerIdentity identity_;
  int peer_port_ = 0;

  asio::io_context peer_io_{1};
  asio::io_context image_io_{1};
  std::unique_ptr<transport::PeerListener> listener_;
  std::vector<std::thread> threads_;

  Mutex random_mutex_;
  std::vector<std::unique_ptr<Random>> randoms_;
  std::vector<std::unique_ptr<RegionOutlet>> outlets_;
  std::vector<std::unique_ptr<replication::RegionReplicator>> replicators_;
  std::vector<std::unique_ptr<membership::WatchHandle>> watches_;
  bool stopped_ = false;

  Mutex inbound_lanes_mutex_;
  uint64_t next_inbound_token_ ABSL_GUARDED_BY(inbound_lanes_mutex_) = 0;
  std::map<uint64_t, std::pair<InboundLaneId, std::shared_ptr<transport::PeerConnection>>>
      inbound_lanes_ ABSL_GUARDED_BY(inbound_lanes_mutex_);
  std::set<InboundLaneId> held_inbound_lanes_ ABSL_GUARDED_BY(inbound_lanes_mutex_);
};

}  // namespace weft::server
