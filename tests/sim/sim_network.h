// SimNetwork: the simulated transport between members — what TCP between weftd processes is in
// production, as the protocol's Channel sees it.
//
// A connection carries frames both ways; each direction is FIFO (as a TCP stream is) with a
// latency per frame drawn from the seed. What the network can do to it, as the workload asks:
//   - cut a direction (one way or both ways) for a while: frames wait, as TCP retransmits them;
//     the protocol's heartbeats notice the silence and close the connection;
//   - clog: frames are held, then all arrive late (a stalled path);
//   - reset: both ends see the connection close; frames in flight are lost;
//   - a member's crash resets all its connections; dialing a dead member is refused after a
//     round trip, dialing across a cut times out.
// Sending is pulled, as production's is: a woken end pulls frames from its session while less
// than the window is in flight in its direction.
//
// Thread safety: none; the simulator's one thread.
#pragma once

#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "weft/base/random.h"
#include "weft/replication/host.h"

#include "tests/sim/event_loop.h"

namespace weft::sim {

// What the network needs of a member.
class NetworkNode {
 public:
  virtual ~NetworkNode() = default;
  // The session for a channel a peer opened to this member (the member's ChannelRouter).
  virtual std::shared_ptr<replication::ChannelSession> Accept(uint64_t from,
                                                              replication::ChannelKind kind,
                                                              replication::Channel& channel) = 0;
  // The event-loop owner of this member's events (its incarnation).
  virtual uint64_t owner() const = 0;
};

class SimNetwork {
 public:
  SimNetwork(EventLoop& loop, Random& random);
  ~SimNetwork();

  void Attach(uint64_t member, NetworkNode* node);
  // The member crashed: every connection it has is reset.
  void Detach(uint64_t member);

  // `from` dials `to`; `session` hears OnOpened or OnOpenFailed.
  void Dial(uint64_t from, uint64_t to, replication::ChannelKind kind,
            std::weak_ptr<replication::ChannelSession> session);

  // Faults.
  void Cut(uint64_t from, uint64_t to, int64_t duration_us);  // frames from->to wait
  // Only lane frames from->to wait (image channels flow).
  void CutLanes(uint64_t from, uint64_t to, int64_t duration_us);
  // Ends every cut and clog from->to now.
  void Heal(uint64_t from, uint64_t to);
  void Clog(uint64_t a, uint64_t b, int64_t duration_us);  // both ways, frames held
  // Resets the connections between a and b (kind: lanes, images, or both).
  void Reset(uint64_t a, uint64_t b, bool lanes, bool images);
  bool IsCut(uint64_t from, uint64_t to) const;

  size_t connections() const { return connections_.size(); }
  uint64_t frames_delivered() const { return frames_delivered_; }

 private:
  class Connection;
  friend class Connection;

  int64_t Latency(size_t bytes);
  // The earliest time a frame from->to may arrive (after cuts and clogs end).
  int64_t BlockedUntil(uint64_t from, uint64_t to, replication::ChannelKind kind) const;
  void Forget(uint64_t connection_id);

  EventLoop& loop_;
  Random& random_;
  std::map<uint64_t, NetworkNode*> nodes_;
  std::map<uint64_t, std::shared_ptr<Connection>> connections_;
  std::vector<std::shared_ptr<Connection>> closed_;
  std::map<std::pair<uint64_t, uint64_t>, int64_t> cut_until_us_;       // (from, to) ->
  std::map<std::pair<uint64_t, uint64_t>, int64_t> clog_until_us_;      // (min, max) ->
  std::map<std::pair<uint64_t, uint64_t>, int64_t> lane_cut_until_us_;  // (from, to) ->
  uint64_t next_connection_id_ = 1;
  uint64_t frames_delivered_ = 0;
};

}  // namespace weft::sim
