// Peers: the other members of one region's group as this member's replication sees them — for
// each, its outbound lanes (an Outbox and a LaneSender per lane) and whether it gets pre-images —
// and the inbound lanes' reception state. It publishes the recipient set that local writes
// snapshot (WritePath::Replace): every peer is a recipient.
//
// A peer is added from a group view or from its JoinIntent (a joiner may write to us before our
// view lists it), and removed when a view that should list it does not (it left, its lease
// expired, or it was expelled): its lanes stop, its outboxes retire (releasing every write that
// waits on it), and its inbound reception state goes. `listed_since` is the registry revision
// from which every view must list the peer, so an older view delivered late never removes it.
//
// Lane streams: each outbound lane gets a stream id from one counter that outlives this object
// (PeerHistory, the replicator's: a member that rejoins in place makes new Peers under the same
// member id), so a peer that is removed and added again, or a member that rejoins, starts new
// streams, which the receiver tells from a resume of the old ones. A stream also names the
// entry of this member it was made for (ChannelOpen::sender_entry); its lanes dial once that
// entry is known (SetSelfEntry). A receiver refuses streams of a peer's entry it removed
// (PeerHistory::ended): a member dropped from the group that has not noticed yet goes on
// writing, and those writes must not reach some members after the group settled without it.
//
// Thread safety: the protocol thread only (writers reach the outboxes through WritePath
// snapshots).
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <utility>
#include <vector>

#include "weft/replication/lane_receiver.h"
#include "weft/replication/lane_sender.h"
#include "weft/replication/messages.h"
#include "weft/replication/region_env.h"
#include "weft/replication/write_path.h"
#include "weft/storage/store.h"

namespace weft::replication {

// What a region remembers about its peers across its own rejoins (every Peers made for it shares
// one).
struct PeerHistory {
  uint64_t next_stream_id = 1;
  // member -> the latest of its entries (GroupMember::entered_at) known to be over: streams made
  // for it or an earlier entry are refused. Bounded: the oldest go first.
  std::map<uint64_t, int64_t> ended;

  // Entries of `member` up to `through` are over.
  void EndEntries(uint64_t member, int64_t through);
  // Whether a stream made for `member`'s entry `entry` belongs to an entry that is over.
  bool Ended(uint64_t member, int64_t entry) const;
};

class Peers {
 public:
  struct Peer {
    membership::MemberInfo info;
    std::shared_ptr<PeerOutboxes> outboxes;
    std::vector<std::shared_ptr<LaneSender>> senders;
    int64_t listed_since = 0;
    // The registry revision of the entry this peer is (GroupMember::entered_at; 0 unknown). A
    // member that enters again is a new peer: the caller removes the old one first.
    int64_t entered_at = 0;
    bool wants_pre_image = false;
    // The registry revision at which it became ACTIVE after its join (its JoinReleased says):
    // an older view that lists it INITIALIZING is late, not a new join.
    int64_t active_since = 0;
    int64_t added_us = 0;  // when this member learned of it (monotonic)
  };

  // `history` must outlive this object and every Peers made for the region after it.
  Peers(const RegionEnv& env, WritePath& write_path, PeerHistory& history);
  ~Peers();
  Peers(const Peers&) = delete;
  Peers& operator=(const Peers&) = delete;

  Peer* Find(uint64_t member);
  // Why `member` refuses this member's handshakes: the reason if its last dial on every lane
  // was refused (the two do not share the cluster's secret and name), OK otherwise.
  Status Refusal(uint64_t member) const;
  const std::map<uint64_t, Peer>& all() const { return peers_; }
  // Adds `info` (if new: its lanes start, dialing once this member's entry is known) with
  // `wants_pre_image`. Returns the peer. Publish() makes the change visible to writers.
  Peer& Add(const membership::MemberInfo& info, int64_t listed_since, bool wants_pre_image,
            int64_t entered_at);
  // Removes a peer whose entries up to `entries_through` are over: stops its outbound lanes,
  // retires its outboxes, closes and forgets the inbound lanes of streams made for those
  // entries, and refuses such streams from now on. Inbound lanes of a later entry stay: when a
  // member entered again, its new streams may be arriving already (seed 5181: forgetting one
  // left its sender resuming past a counter the receiver had dropped, for good). Returns false
  // if the peer is unknown (its entries are over all the same).
  bool Remove(uint64_t member, int64_t entries_through);
  // The inbound half of Remove alone: `member`'s entries up to `entries_through` are over, so
  // their streams close and are refused from now on. For a departed member whose outbound side
  // must wait (writes waiting on it are released only once the registry agrees).
  void EndInbound(uint64_t member, int64_t entries_through);
  // This member's entry in the group is `entry` (GroupMember::entered_at): every lane, present
  // and future, opens its streams for it.
  void SetSelfEntry(int64_t entry);
  // Whether the entry of `member` this member knows is over (EndInbound), though the peer may
  // still be here (its departure waits for the registry).
  bool EntryEnded(uint64_t member) const;
  // Why a lane opening `open` from `from` is refused (OK: admitted).
  Status AdmitLane(uint64_t from, const ChannelOpen& open) const;
  // `member` released its join, ACTIVE as of `revision` (its JoinReleased): a view older than
  // that listing it INITIALIZING is late. Remembered beyond the peer's removal: a late view may
  // add it back before a current one.
  void NoteReleased(uint64_t member, int64_t revision);
  // Whether a view of `revision` listing `member` INITIALIZING means it joins (not a late view).
  bool JoinsAsOf(uint64_t member, int64_t revision) const;
  // Sets whether `member` gets pre-images. Returns true if that changed.
  bool SetWantsPreImage(uint64_t member, bool wants);
  // Installs the recipient set for writers (the current peers and the event index) in a new
  // epoch and returns the epoch (WritePath::Replace).
  uint64_t Publish();
  // Where local writes keep a joiner's event index in its flush phase (null: nowhere). Takes
  // effect at the next Publish.
  void set_event_index(EventIndex* index) { event_index_ = index; }

  // Appends a control record to `lane` of the peer's outbound lanes. Returns false if the peer
  // is unknown.
  bool SendControl(uint64_t to, RecordKind kind, const ControlRecord& control, uint32_t lane = 0);
  // The transmission counters (and their streams) toward `to`, per lane.
  std::vector<uint64_t> SentCounters(uint64_t to);
  std::vector<uint64_t> StreamIds(uint64_t to);

  // Inbound lanes. The state of (from, lane), made on first use.
  InboundLane& Inbound(uint64_t from, uint32_t lane);
  const std::map<std::pair<uint64_t, uint32_t>, InboundLane>& inbound() const { return inbound_; }
  // When `from` was last heard on any inbound lane (0: never).
  int64_t InboundHeardUs(uint64_t from) const;
  // Keeps `receiver` ticked until it closes.
  void AddReceiver(std::shared_ptr<LaneReceiver> receiver);
  size_t receivers() const { return receivers_.size(); }

  // Heartbeats and silence on every lane; forgets closed receivers.
  void OnTick();
  // Stops every lane (the member is stopping or failed).
  void StopAll();

  // Longest acknowledgement latency of live changes since the last call, over every lane.
  std::optional<int64_t> TakeMaxAckLatencyUs();

 private:
  const RegionEnv& env_;
  WritePath& write_path_;
  std::map<uint64_t, Peer> peers_;
  std::map<std::pair<uint64_t, uint32_t>, InboundLane> inbound_;
  std::vector<std::shared_ptr<LaneReceiver>> receivers_;
  PeerHistory& history_;
  int64_t self_entry_ = 0;                   // 0: not known yet
  std::map<uint64_t, int64_t> released_at_;  // member -> revision of its ACTIVE (bounded)
  EventIndex* event_index_ = nullptr;
};

}  // namespace weft::replication
