// ChannelRouter: where a channel that a peer opened to this member goes. The first frame names
// the region (ChannelOpen on a lane, ImageRequest on an image channel); the router hands the
// channel to that region's replicator, which answers with the session for the rest of it, or
// refuses (logged; an image refusal is answered with ImageRefused) and the channel closes.
//
// Both hosts use it: server/cluster.cc for TCP connections, the simulator for its links.
//
// Thread safety: the protocol thread only.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <string>

#include "weft/replication/host.h"
#include "weft/replication/replicator.h"

namespace weft::replication {

class ChannelRouter {
 public:
  // `replicator` must outlive the router's use of it.
  void Add(RegionReplicator* replicator);
  // The session for a channel of `kind` that the authenticated member `peer` opened.
  std::shared_ptr<ChannelSession> Accept(uint64_t peer, ChannelKind kind, Channel& channel);
  RegionReplicator* Find(std::string_view region) const;

 private:
  std::map<std::string, RegionReplicator*, std::less<>> regions_;
};

}  // namespace weft::replication
