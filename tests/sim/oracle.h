// Oracle: what the simulator checks during and at the end of every run (docs/design/
// simulation.md lists them with the breaks that prove each can fail):
//
//  durability   no acknowledged sync write is lost while a member that applied it survives;
//               single-writer keys hold their last acknowledged value; a read on an ACTIVE
//               group member never misses a sync write acknowledged before it began (so a
//               deleted or expired key never comes back).
//  events       per member and key, events chain: versions increase, each old value is the
//               previous new value, and (quiet) the last new value is what the store holds.
//               Every change that reaches a member makes an event exactly when the model says
//               so: while joining, when it is newer than the key's last event (the image never
//               decides); otherwise when it is newer than the stored entry. A first event's old
//               value is the pre-image its origin shipped, checked against what the origin
//               really held. An event not made by an arrival or a local write (a correction)
//               must carry a real change, newer than the key's last event. Expiry makes no
//               event, and a member takes a write's expiry from whichever member noticed it
//               first: a write whose expiry passed on any member's clock may be silent. A
//               write arriving from its origin after the join was released, held already (the
//               image) and never shown by an event, is a lost event.
//  complete     when a joiner turns ACTIVE it holds every entry its provider held when the join
//               stabilized, or something newer.
//  counters     on every lane, received never exceeds sent (same stream).
//  convergence  after the faults heal and writes stop, every ACTIVE member has one digest.
//  liveness     every join ends (ACTIVE or a reported failure) and nothing stays behind: post-
//               image stores, markers, stabilized joins, backlogs, pre-images for members
//               that finished joining.
//
// The protocol's own invariants (the phase table, WEFT_CHECKs) stop the process; the batch
// runner reports that as a failed seed.
//
// Thread safety: none; the simulator's one thread.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "weft/replication/change_consumer.h"
#include "weft/replication/join_service.h"
#include "weft/replication/messages.h"
#include "weft/replication/replicator.h"
#include "weft/storage/version.h"

namespace weft::sim {

class SimMember;

// One local write as the workload made it.
struct WriteRecord {
  uint64_t origin = 0;
  std::string key;
  std::optional<std::string> value;  // nullopt: a delete
  int64_t expire_at_unix_ms = 0;
  storage::Version version;
  std::optional<std::string> pre;  // what the origin held (live) just before
  std::set<uint64_t> snapshot;     // the recipients it was enqueued to
  bool sync = true;
  bool single_writer = false;
  int64_t begun_us = 0;   // the client's write began (its recipient snapshot)
  int64_t issued_us = 0;  // ... and was applied
  int64_t acked_us = -1;
};

class Oracle {
 public:
  // Failures so far (empty: everything held).
  const std::vector<std::string>& failures() const { return failures_; }
  bool failed() const { return !failures_.empty(); }
  void Fail(std::string failure);

  // --- the workload ---
  // Returns the write's index.
  size_t OnWrite(WriteRecord record);
  void OnAck(size_t write, int64_t now_us);
  const WriteRecord& write(size_t index) const { return writes_[index]; }
  // A read of `key` served by `member`, begun at `started_us`: it must hold every sync write of
  // `key` acknowledged by `acked_by_us` (the read's start for a member of the group; for one
  // the group dropped, the start less the read guard's bound).
  void CheckRead(SimMember& member, const std::string& key, int64_t started_us,
                 int64_t acked_by_us);

  // --- the members ---
  // The latest wall clock of any member, crashed ones included: an expiry noticed by the member
  // whose clock is furthest ahead may reach every other (storage::Supersedes).
  void set_latest_wall_clock(std::function<int64_t()> latest_unix_ms) {
    latest_wall_unix_ms_ = std::move(latest_unix_ms);
  }
  void OnEvent(SimMember& member, const replication::ChangeEvent& event);
  void OnChangeArriving(SimMember& member, uint64_t from, const replication::ChangeRecord& change);
  void OnChangeApplied(SimMember& member, uint64_t from, const replication::ChangeRecord& change);
  void OnStabilized(SimMember& provider, uint64_t joiner, uint64_t join_id,
                    const std::map<uint64_t, replication::Marker>& markers,
                    const std::map<uint64_t, SimMember*>& members);
  void OnActive(SimMember& member);
  // An image begins: it must go into an empty base store (not onto an earlier attempt's
  // partial image, nor onto the member's own copy from before it rejoined).
  void OnImageStart(SimMember& member);
  void OnCrash(SimMember& member);
  // Dropped from the group, the member rejoins: its copy and its events start over.
  // `member` rejoins in place for `reason`; `still_in_group`: the registry still lists it.
  void OnRejoin(SimMember& member, bool still_in_group, std::string_view reason, int64_t now_us);
  // Local writes are reported here before their event fires (so the event can be matched).
  void ExpectLocalEvent(SimMember& member, size_t write);

  // --- periodic and final checks ---
  void CheckCounters(const std::map<uint64_t, SimMember*>& members);
  // `quiet`: the run settled (false: report what is still going on).
  void CheckEnd(const std::map<uint64_t, SimMember*>& members, bool quiet,
                const membership::GroupView& group, bool sync_region);

  uint64_t events() const { return events_seen_; }
  int rejoins() const { return rejoins_; }
  uint64_t writes_acked() const;
  size_t write_count() const { return writes_.size(); }

 private:
  // A key's events on one member, as the model follows them.
  struct KeyEvents {
    bool any = false;  // an event (or a notional one: deleting an absent key) happened
    storage::Version last;
    std::optional<std::string> last_new;
    int64_t last_expire_at_unix_ms = 0;
  };
  struct Pending {
    bool expected = false;       // the arriving change must make an event
    bool notional = false;       // ... which is silent (a delete of an absent key)
    bool may_be_silent = false;  // it may have expired (here, or on a clock ahead of ours)
    std::optional<std::string> old_value;  // the event's expected old value, if known
    bool check_old = false;
    uint64_t events_before = 0;
  };
  // Whether the key's post-image holds a delete newer than `arrived` that a reconcile took in
  // over an absent key without an event (recorded as the key's last event if so).
  bool TookInADeleteSilently(SimMember& member, const std::string& key,
                             const storage::Version& arrived);
  struct MemberState {
    std::map<std::string, KeyEvents> keys;
    std::optional<Pending> pending;  // the change being applied now
    std::optional<size_t> local;     // the local write whose event is expected now
    uint64_t events = 0;
    int64_t rejoined_us = -1;  // when the member last rejoined in place
    std::map<std::string, storage::Version> complete_from;  // provider's store at stabilization
    // The old value of each event this member made, by (origin, seq): a repair's pre-image is
    // the repairer's own event's old value.
    std::map<std::pair<uint64_t, uint64_t>, std::optional<std::string>> event_old;
  };

  std::string Where(SimMember& member, std::string_view key) const;
  int64_t LatestWallUnixMs(SimMember& member) const;
  const WriteRecord* Find(const storage::Version& version) const;
  void Record(SimMember& member, const std::string& key, const storage::Version& version,
              std::optional<std::string> new_value);

  std::vector<WriteRecord> writes_;
  std::map<std::pair<uint64_t, uint64_t>, size_t> by_version_;  // (origin, seq) ->
  std::map<uint64_t, MemberState> members_;
  std::set<uint64_t> crashed_;
  std::vector<std::string> failures_;
  uint64_t events_seen_ = 0;
  int rejoins_ = 0;
  std::function<int64_t()> latest_wall_unix_ms_;
};

}  // namespace weft::sim
