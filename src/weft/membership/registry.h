// Registry: who is in a region's group, in which state, as of which revision (DESIGN.md §6).
//
// The membership layer sits between transport/ and replication/. The replication engine asks a
// Registry to enter a region, to change this member's state in it, and to be told about every
// change to the region's group. The Registry arbitrates the races of DESIGN.md §5/§6 through
// atomic registry transactions:
//   - two members entering an empty region at once: exactly one becomes its first ACTIVE member
//     (EnterRegion's `bootstrapped`), the other joins it as INITIALIZING;
//   - a member becoming ACTIVE while others join: SetState returns the group as of the very
//     transaction that made it ACTIVE, so it sees every member INITIALIZING at that moment and
//     can send them pre-images before it accepts a write;
//   - several members joining at once: each entry is its own transaction; all of them see the
//     same ACTIVE member(s).
// Implementations: InProcessRegistry (members in one process: demo, tests, simulator) and
// EtcdRegistry (etcd v3 through its JSON gateway). docs/design/membership.md describes the key
// layout and transactions.
//
// Revisions: every change to the registry gets a revision, strictly increasing, shared by all
// regions (etcd's store revision). A GroupView's revision is the revision of the transaction or
// read it reflects; a view with a higher revision is newer. Views of one region delivered by a
// watch carry strictly increasing revisions.
//
// Thread safety: every method of a Registry is safe to call from any thread, concurrently, and
// from inside a watch callback. Watch callbacks never run while the registry holds a lock.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "weft/base/status.h"

namespace weft::membership {

// A member's state in one region's group.
enum class MemberState : uint8_t {
  kInitializing,  // joining: receives every change (with pre-images) while it gets the image
  kActive,        // holds the whole region and serves clients
  kLeaving,       // announced its departure; still listed until it leaves
};

// "INITIALIZING", "ACTIVE", "LEAVING" (the registry's wire spelling too).
std::string_view MemberStateName(MemberState state);
// The inverse of MemberStateName; nullopt for anything else.
std::optional<MemberState> ParseMemberState(std::string_view name);

// What other members need to know to reach a member.
struct MemberInfo {
  // Random 64-bit id chosen at process start; a new one per incarnation. Never 0.
  uint64_t member_id = 0;
  std::string name;            // human name
  std::string peer_address;    // "host:port" of its peer listener
  std::string client_address;  // "host:port" of its RESP port

  friend bool operator==(const MemberInfo&, const MemberInfo&) = default;
};

struct GroupMember {
  MemberInfo info;
  MemberState state = MemberState::kInitializing;
  // The registry revision at which this member entered the region (its entry's creation; state
  // changes keep it). A member that leaves (or is expelled, or loses its lease) and enters again
  // has a larger one: it tells the member's entries apart.
  int64_t entered_at = 0;

  friend bool operator==(const GroupMember&, const GroupMember&) = default;
};

// A region's group as of one registry revision.
struct GroupView {
  std::string region;
  // The registry revision this view reflects (monotonic across the whole registry). 0 only for
  // a default-constructed view.
  int64_t revision = 0;
  // Sorted by member_id, ids unique.
  std::vector<GroupMember> members;

  // The member with this id, or null. The pointer is valid while the view is unchanged.
  const GroupMember* Find(uint64_t member_id) const;
  bool Contains(uint64_t member_id) const { return Find(member_id) != nullptr; }
  // Ids of the members in `state`, ascending.
  std::vector<uint64_t> IdsInState(MemberState state) const;
  std::vector<uint64_t> ActiveIds() const { return IdsInState(MemberState::kActive); }
  std::vector<uint64_t> InitializingIds() const { return IdsInState(MemberState::kInitializing); }
  bool HasActive() const;

  friend bool operator==(const GroupView&, const GroupView&) = default;
};

// For logs and test failures: "region@revision[0000000000000001 ACTIVE name, ...]".
std::string GroupViewToString(const GroupView& view);

// A member id as the registry spells it: 16 lower-case hex digits.
std::string FormatMemberId(uint64_t member_id);

// Region names are non-empty, at most kRegionNameBytesMax bytes, printable ASCII without '/'
// (a region is a key prefix in etcd, so "a/b" would sit inside region "a"). Returns
// InvalidArgument otherwise. Every Registry method that takes a region checks it.
inline constexpr size_t kRegionNameBytesMax = 200;
Status ValidateRegionName(std::string_view region);

struct EnterResult {
  // True if this member entered ACTIVE: as the region's first member (nobody holds it), or as
  // one of its holders re-forming a group that has no ACTIVE member (`reformed`).
  bool bootstrapped = false;
  bool reformed = false;
  // True if this member entered INITIALIZING while it holds the region: its copy stays a
  // holding until it gives it up (GiveUpHolding, before an image replaces the copy), re-forms
  // the group from it (Reform), or an ACTIVE member drops it.
  bool holds = false;
  // The group as of the entering transaction (includes this member).
  GroupView group;
};

// A live watch. Destroying the handle (or calling Cancel) stops the watch: no callback starts
// afterwards, and a callback running on another thread is waited for. Called from inside that
// watch's own callback, it does not wait (the callback finishes normally).
// REQUIRES: the handle is destroyed before the Registry (and hub) that made it.
class WatchHandle {
 public:
  virtual ~WatchHandle() = default;
  // Idempotent; the destructor calls it.
  virtual void Cancel() = 0;
};

class Registry {
 public:
  virtual ~Registry() = default;

  // Makes this member known (lease-backed where the backend has leases) and binds the registry
  // to it: later calls act as `self`. Call once, first.
  // Errors: InvalidArgument (member_id 0), FailedPrecondition (already registered, or
  // deregistered), AlreadyExists (another member holds this id), or a backend error.
  virtual Status Register(const MemberInfo& self) = 0;

  // Enters `region` atomically:
  //  - the region has an ACTIVE member: this member enters INITIALIZING (it joins);
  //  - no ACTIVE member, and nobody holds the region (see holders below): this member becomes
  //    its first ACTIVE member (bootstrapped);
  //  - no ACTIVE member, this member is one of its holders: it enters ACTIVE with the copy it
  //    holds (bootstrapped and reformed): the group re-forms from the members' own data;
  //  - no ACTIVE member, others hold it: INITIALIZING, waiting for a holder to come back. A
  //    member that holds nothing never bootstraps a region whose data someone holds.
  // Of members entering a region nobody holds at once, exactly one bootstraps. The returned
  // group is the state right after this member's own entry, at that entry's revision.
  //
  // Holders: the members that hold a complete copy, recorded beyond any lease. A member becomes
  // one when it enters ACTIVE or is set ACTIVE; it stops being one when it leaves the region,
  // is expelled, deregisters, gives its holding up (an image is about to replace its copy), or
  // an ACTIVE member drops it (DropHolder). Neither a lease that expires nor entering as a
  // joiner ends it: when every member lost its lease at once, they may all come back and the
  // first to enter re-forms the group; and a holder that came back while a member it cannot
  // join from (crashed, its lease not yet expired) was still listed ACTIVE keeps its holding,
  // so that it can re-form the group once that member is gone (Reform).
  // Errors: FailedPrecondition (not registered, or the lease was lost), AlreadyExists (this
  // member is already in the region), InvalidArgument (region name), Aborted (the region kept
  // changing under every attempt; etcd only), or a backend error (e.g. Unavailable).
  virtual StatusOr<EnterResult> EnterRegion(const std::string& region) = 0;

  // Sets this member's state in `region` and returns the group as of that change (same
  // transaction): a member becoming ACTIVE sees every member that was INITIALIZING at that
  // moment; any member entering later sees it ACTIVE.
  // Errors: FailedPrecondition (not registered, lease lost, or not in the region), or a
  // backend error. On a backend error the change may or may not have happened.
  virtual StatusOr<GroupView> SetState(const std::string& region, MemberState state) = 0;

  // The region's current group; an unknown region is an empty group (not an error). Works
  // before Register too.
  virtual StatusOr<GroupView> ReadGroup(const std::string& region) = 0;

  // Removes this member from `region`. Leaving a region this member is not in is OK.
  // Errors: FailedPrecondition (not registered), or a backend error.
  virtual Status LeaveRegion(const std::string& region) = 0;

  // Removes another member from `region`: it fell so far behind that this member cannot keep
  // its backlog (DESIGN §2: everything is bounded), or it cannot be reached. Every member, the
  // expelled one included, sees it leave in its group view. Expelling a member that is not in
  // the region is OK. Only a member that is itself ACTIVE in the region may expel, checked in
  // the same transaction: two members cut off from each other cannot expel each other — the
  // first expel wins, the second finds its sender gone.
  // Only the entry made at `entered_at` (GroupMember::entered_at) goes: a member that has
  // entered again since is not expelled for what its earlier entry did (OK, nothing happens).
  // Errors: FailedPrecondition (this member is not registered, or not ACTIVE in the region), or a
  // backend error.
  virtual Status ExpelFromRegion(const std::string& region, uint64_t member_id,
                                 int64_t entered_at) = 0;

  // Ends `member_id`'s holding of `region` (it vanished from the group with its lease, so the
  // group goes on without it and its copy goes stale). Only an ACTIVE member of the region may,
  // checked in the same transaction. Dropping a non-holder is OK.
  // Errors: FailedPrecondition (not registered, or not ACTIVE in the region), or a backend
  // error.
  virtual Status DropHolder(const std::string& region, uint64_t member_id) = 0;

  // Ends this member's own holding of `region`: its copy is about to be replaced by an image.
  // Giving up a holding this member does not have is OK.
  // Errors: FailedPrecondition (not registered, or the lease was lost), or a backend error.
  virtual Status GiveUpHolding(const std::string& region) = 0;

  // This member, INITIALIZING in `region` and still one of its holders, turns ACTIVE because
  // no member is: the group re-forms from its copy. Returns the group as of that change.
  // Errors: FailedPrecondition (not registered, not in the region, no longer a holder, or a
  // member is ACTIVE: join from it), Aborted (the region kept changing under every attempt;
  // etcd only), or a backend error (the change may or may not have happened).
  virtual StatusOr<GroupView> Reform(const std::string& region) = 0;

  // After this member's lease was lost: registers it again under the same id with a new lease
  // (it is in no region until it enters one). Returns the registration now in effect: Register
  // made registration 1, and every Reregister that had to grant a new lease the next one; a
  // member whose lease is still alive keeps its registration.
  // Errors: FailedPrecondition (never registered, or deregistered), or a backend error.
  virtual StatusOr<uint64_t> Reregister() = 0;

  // Watches `region`'s group. on_change is called first with the group as of the watch's start,
  // then with a fresh view after every change to the group (entries, state changes, leaves, and
  // members vanishing through lease expiry), in revision order (strictly increasing revisions),
  // never concurrently with itself for one watch, never while the registry holds a lock, on a
  // registry-owned thread (or the in-process hub's dispatcher). A backend outage delays views;
  // the watch reconnects on its own and resumes after the last delivered revision (or, if the
  // backend compacted that history, delivers the current group). Works before Register too.
  // Returns null only for an invalid region name (logged).
  virtual std::unique_ptr<WatchHandle> Watch(const std::string& region,
                                             std::function<void(const GroupView&)> on_change) = 0;

  // Removes this member from every region and from the registry (graceful shutdown). The
  // registry cannot be used for this member afterwards. Deregistering twice is OK.
  virtual Status Deregister() = 0;

  // Called once per registration whose lease is lost, as the registry itself says (it expired
  // there, or was revoked), with that registration's number (see Reregister): the member has
  // vanished from every group and must stop acting as a member. The call can reach its receiver
  // after a Reregister that already replaced the lease; the number tells it that the news is
  // stale. A registry that cannot be reached is not a lost lease: its leases do not run out while
  // it is down (etcd's new leader gives every lease a fresh TTL), so the member keeps trying.
  // Runs on a registry-owned thread, outside registry locks. Set before Register. The default
  // ignores it (for test doubles whose leases never run out).
  using LeaseLostCallback = std::function<void(uint64_t registration)>;
  virtual void SetLeaseLostCallback(LeaseLostCallback on_lease_lost) {}
};

}  // namespace weft::membership
