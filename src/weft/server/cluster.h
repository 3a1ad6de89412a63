// Cluster: what makes a weftd process a member — its registry entry, the peer listener, and for
// every region a RegionReplicator run by the ClusterHost (DESIGN.md §3: the transport and
// membership layers around the sans-I/O protocol).
//
// It wires and forwards, nothing more: accepted connections go to the ChannelRouter, group views
// and a lost lease are posted to the replicators on the protocol thread, and every decision
// about lanes, images, joins and members is the replicators' (docs/design/threading.md).
//
// Thread safety: Start/Stop from the controlling thread; HoldInboundLane (DEBUG) from any.
#pragma once

#include <map>
#include <memory>
#include <set>
#include <string>
#include <tuple>
#include <vector>

#include "weft/base/mutex.h"
#include "weft/base/random.h"
#include "weft/base/status.h"
#include "weft/membership/registry.h"
#include "weft/replication/channel_router.h"
#include "weft/replication/replicator.h"
#include "weft/server/cluster_host.h"
#include "weft/server/server_state.h"
#include "weft/transport/peer_link.h"

namespace weft::server {

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

  // ClusterDebugHooks.
  Status HoldInboundLane(const Database& database, std::string_view member, std::string_view key,
                         bool hold) override;

 private:
  // An inbound lane as DEBUG HOLD-LANE names it: (region, sending member, lane).
  using InboundLaneId = std::tuple<std::string, uint64_t, uint32_t>;
  class LaneTap;

  void OnAccept(std::shared_ptr<transport::PeerConnection> connection,
                const transport::PeerIdentity& peer, transport::ChannelInfo channel);
  // Registers an opened inbound lane's connection (paused at once if held); the token
  // unregisters it.
  uint64_t TrackInboundLane(const InboundLaneId& id,
                            const std::shared_ptr<transport::PeerConnection>& connection);
  void UntrackInboundLane(uint64_t token);

  ServerState& state_;
  membership::Registry& registry_;
  membership::MemberInfo self_;
  transport::PeerIdentity identity_;
  int peer_port_ = 0;

  std::unique_ptr<ClusterHost> host_;
  std::unique_ptr<transport::PeerListener> listener_;
  replication::ChannelRouter router_;
  std::vector<std::unique_ptr<Random>> randoms_;
  std::vector<std::unique_ptr<replication::RegionReplicator>> replicators_;
  std::vector<std::unique_ptr<membership::WatchHandle>> watches_;
  bool stopped_ = false;

  Mutex inbound_lanes_mutex_;
  uint64_t next_inbound_token_ ABSL_GUARDED_BY(inbound_lanes_mutex_) = 0;
  std::map<uint64_t, std::pair<InboundLaneId, std::weak_ptr<transport::PeerConnection>>>
      inbound_lanes_ ABSL_GUARDED_BY(inbound_lanes_mutex_);
  std::set<InboundLaneId> held_inbound_lanes_ ABSL_GUARDED_BY(inbound_lanes_mutex_);
};

}  // namespace weft::server
