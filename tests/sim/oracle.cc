#include "tests/sim/oracle.h"

#include <cstdlib>

#include "tests/sim/sim_member.h"
#include <fmt/format.h>
#include <fmt/ranges.h>

namespace weft::sim {
namespace {

std::string Show(const std::optional<std::string>& value) {
  if (!value) {
    return "(absent)";
  }
  return value->size() <= 40 ? "'" + *value + "'" : "'" + value->substr(0, 37) + "...'";
}

std::string Show(const storage::Version& version) {
  return fmt::format("{}:{:x}/{}", version.stamp, version.origin, version.seq);
}

std::optional<std::string> Owned(std::optional<std::string_view> value) {
  return value ? std::optional<std::string>(std::string(*value)) : std::nullopt;
}

// At least as new: equal, or newer by (stamp, origin).
bool AtLeast(const storage::Version& held, const storage::Version& wanted) {
  return held == wanted || held.NewerThan(wanted);
}

std::optional<storage::EntryView> Held(storage::LockedKeys& keys, std::string_view key) {
  return keys.FindAny(key);
}

}  // namespace

void Oracle::Fail(std::string failure) {
  if (failures_.size() < 20) {
    failures_.push_back(std::move(failure));
  }
}

std::string Oracle::Where(SimMember& member, std::string_view key) const {
  return fmt::format("{} key '{}'", member.name(), key);
}

size_t Oracle::OnWrite(WriteRecord record) {
  const size_t index = writes_.size();
  by_version_[{record.version.origin, record.version.seq}] = index;
  writes_.push_back(std::move(record));
  return index;
}

void Oracle::OnAck(size_t write, int64_t now_us) {
  WriteRecord& record = writes_[write];
  if (record.acked_us >= 0) {
    return;
  }
  record.acked_us = now_us;
}

uint64_t Oracle::writes_acked() const {
  uint64_t acked = 0;
  for (const WriteRecord& write : writes_) {
    acked += write.acked_us >= 0 ? 1 : 0;
  }
  return acked;
}

const WriteRecord* Oracle::Find(const storage::Version& version) const {
  auto it = by_version_.find({version.origin, version.seq});
  if (it == by_version_.end() || !(writes_[it->second].version == version)) {
    return nullptr;
  }
  return &writes_[it->second];
}

void Oracle::CheckRead(SimMember& member, const std::string& key, int64_t started_us,
                       int64_t acked_by_us) {
  std::optional<storage::Version> held;
  member.store().WithKey(key, [&](storage::LockedKeys& keys) {
    if (const std::optional<storage::EntryView> entry = Held(keys, key)) {
      held = entry->version;
    }
  });
  for (const WriteRecord& write : writes_) {
    if (write.key != key || !write.sync || write.acked_us < 0 || write.acked_us > acked_by_us) {
      continue;
    }
    if (!held || !AtLeast(*held, write.version)) {
      Fail(fmt::format(
          "read: {} misses the sync write {} acknowledged at {:.6f} s (holds {}; read at {:.6f} "
          "s{})",
          Where(member, key), Show(write.version), static_cast<double>(write.acked_us) / 1e6,
          held ? Show(*held) : std::string("nothing"), static_cast<double>(started_us) / 1e6,
          acked_by_us < started_us ? ", by a member the group had dropped" : ""));
      return;
    }
  }
}

int64_t Oracle::LatestWallUnixMs(SimMember& member) const {
  return latest_wall_unix_ms_ ? latest_wall_unix_ms_() : member.clock().NowUnixMs();
}

void Oracle::ExpectLocalEvent(SimMember& member, size_t write) {
  members_[member.id()].local = write;
}

void Oracle::Record(SimMember& member, const std::string& key, const storage::Version& version,
                    std::optional<std::string> new_value) {
  KeyEvents& events = members_[member.id()].keys[key];
  events.any = true;
  events.last = version;
  events.last_new = std::move(new_value);
  const WriteRecord* write = Find(version);
  events.last_expire_at_unix_ms = write != nullptr ? write->expire_at_unix_ms : 0;
}

void Oracle::OnEvent(SimMember& member, const replication::ChangeEvent& event) {
  if (const char* debug = std::getenv("WEFT_SIM_DEBUG_KEY");
      debug != nullptr && event.key == debug) {
    fmt::print(stderr, "EVENT {} {} old={} new={} {} pending={} local={}\n", member.name(),
               event.key, Show(Owned(event.old_value)), Show(Owned(event.new_value)),
               Show(event.version), members_[member.id()].pending.has_value(),
               members_[member.id()].local.has_value());
  }
  ++events_seen_;
  MemberState& state = members_[member.id()];
  ++state.events;
  const std::string key(event.key);
  const std::optional<std::string> old_value = Owned(event.old_value);
  const std::optional<std::string> new_value = Owned(event.new_value);
  const WriteRecord* write = Find(event.version);
  if (write == nullptr || write->key != key) {
    Fail(fmt::format("events: {} has an event for version {}, which no write of that key made",
                     Where(member, key), Show(event.version)));
    return;
  }
  // A value whose expiry passed reads as absent (a correction shows what the store holds).
  const bool expired = !new_value && write->expire_at_unix_ms != 0;
  if (write->value != new_value && !expired) {
    Fail(fmt::format("events: {} event {} says new={}, the write made {}", Where(member, key),
                     Show(event.version), Show(new_value), Show(write->value)));
  }
  // A local write that began before this member's last rejoin and landed after it belongs to
  // the copy and the events that the rejoin started over from: its lanes went with the old
  // entry, and the rejoin's image replaces it. Not in the chain. (A rejoining holder keeps its
  // copy until its image begins, so complete() alone does not tell; seed 11092.)
  if (state.local && writes_[*state.local].version == event.version &&
      writes_[*state.local].begun_us < state.rejoined_us) {
    state.local.reset();
    return;
  }
  const KeyEvents& last = state.keys[key];
  if (last.any) {
    if (!event.version.NewerThan(last.last)) {
      Fail(
          fmt::format("events: {} event {} after {}: versions must increase (a duplicate or a "
                      "loser made an event)",
                      Where(member, key), Show(event.version), Show(last.last)));
    }
    const bool expired_between = !old_value && last.last_expire_at_unix_ms != 0;
    if (old_value != last.last_new && !expired_between) {
      Fail(fmt::format("events: {} event {} has old={}, but the previous event's new was {}",
                       Where(member, key), Show(event.version), Show(old_value),
                       Show(last.last_new)));
    }
  }
  if (state.pending) {
    Pending& pending = *state.pending;
    if (!pending.expected || pending.notional) {
      Fail(fmt::format("events: {} change {} made an event though it is {}", Where(member, key),
                       Show(event.version),
                       pending.notional ? "a delete of an absent key" : "a duplicate or a loser"));
    } else if (!last.any && pending.check_old && old_value != pending.old_value) {
      Fail(fmt::format("events: {} first event {} has old={}, the model says {}",
                       Where(member, key), Show(event.version), Show(old_value),
                       Show(pending.old_value)));
    }
  } else if (state.local && !member.replicator().complete()) {
    // A write that was under way when its member was dropped from the group landed after: it
    // is unconfirmable, and the image that the rejoin brings replaces it. Not in the chain.
    state.local.reset();
    return;
  } else if (state.local) {
    const WriteRecord& local = writes_[*state.local];
    state.local.reset();
    if (!(local.version == event.version)) {
      Fail(fmt::format("events: {} local write {} made event {}", Where(member, key),
                       Show(local.version), Show(event.version)));
    } else if (!last.any && old_value != local.pre) {
      Fail(fmt::format("events: {} first event {} (a local write) has old={}, it replaced {}",
                       Where(member, key), Show(event.version), Show(old_value), Show(local.pre)));
    }
  } else if (!last.any) {
    // A correction (the base store held a newer change than the key's last event) needs a
    // last event to correct.
    Fail(
        fmt::format("events: {} event {} came from no arrival and no local write, and the key "
                    "had no event before",
                    Where(member, key), Show(event.version)));
  }
  state.event_old[{event.version.origin, event.version.seq}] = old_value;
  Record(member, key, event.version, new_value);
}

void Oracle::OnImageStart(SimMember& member) {
  const size_t held = member.store().KeyCount() + member.store().TombstoneCount();
  if (held > 0) {
    Fail(
        fmt::format("image: {} starts an image holding {} entries already (an earlier "
                    "attempt's partial image, or its own copy)",
                    member.name(), held));
  }
}

void Oracle::OnChangeArriving(SimMember& member, uint64_t from,
                              const replication::ChangeRecord& change) {
  if (const char* debug = std::getenv("WEFT_SIM_DEBUG_KEY");
      debug != nullptr && change.post.key == debug) {
    fmt::print(stderr, "ARRIVE {} {} {} tombstone={} has_pre={} from={:x} mode={}\n", member.name(),
               change.post.key, Show(change.post.version), change.post.tombstone, change.has_pre,
               from, static_cast<int>(member.replicator().applier().mode()));
  }
  MemberState& state = members_[member.id()];
  Pending pending;
  pending.events_before = state.events;
  const storage::EntryView& post = change.post;
  const std::string key(post.key);
  const KeyEvents& last = state.keys[key];
  std::optional<storage::Version> held_version;
  std::optional<std::string> held_live;
  member.store().WithKey(key, [&](storage::LockedKeys& keys) {
    if (const std::optional<storage::EntryView> held = keys.FindAny(key)) {
      held_version = held->version;
      if (!held->tombstone) {
        held_live = std::string(held->value);
      }
    }
  });
  const replication::Applier::Mode mode = member.replicator().applier().mode();
  if (mode == replication::Applier::Mode::kActive) {
    pending.expected = !held_version || post.version.NewerThan(*held_version);
    pending.old_value = held_live;
    pending.check_old = true;
  } else {
    // Joining: the key's last event decides; the image never does.
    pending.expected = !last.any || post.version.NewerThan(last.last);
    pending.check_old = true;
    if (last.any) {
      pending.old_value = last.last_new;
    } else if (change.has_pre) {
      pending.old_value = change.pre_present
                              ? std::optional<std::string>(std::string(change.pre_value))
                              : std::nullopt;
    } else {
      pending.old_value = held_live;
    }
    // A repair's pre-image is what the repairer held before that change: its own event's old.
    if (!last.any && change.has_pre && from != post.version.origin) {
      const auto& repairer = members_[from].event_old;
      if (auto it = repairer.find({post.version.origin, post.version.seq}); it != repairer.end()) {
        const std::optional<std::string> shipped =
            change.pre_present ? std::optional<std::string>(std::string(change.pre_value))
                               : std::nullopt;
        if (shipped != it->second) {
          Fail(
              fmt::format("repair: {} change {} repaired with pre={}, the repairer's event had "
                          "old={}",
                          Where(member, key), Show(post.version), Show(shipped), Show(it->second)));
        }
      }
    }
    // The shipped pre-image must be what its origin held (a repair ships the repairer's).
    if (change.has_pre && from == post.version.origin) {
      if (const WriteRecord* write = Find(post.version); write != nullptr) {
        const std::optional<std::string> shipped =
            change.pre_present ? std::optional<std::string>(std::string(change.pre_value))
                               : std::nullopt;
        if (shipped != write->pre) {
          Fail(fmt::format("pre-image: {} change {} shipped pre={}, its origin held {}",
                           Where(member, key), Show(post.version), Show(shipped),
                           Show(write->pre)));
        }
      }
    }
  }
  const bool expired_somewhere =
      post.expire_at_unix_ms != 0 && post.expire_at_unix_ms <= LatestWallUnixMs(member);
  // A write that the store holds already, live, and that never made an event here, arriving from
  // its origin after the join was released: the image carried it, and its live copy came too
  // late for the index to report it. The flush exists so that every change the image could
  // carry arrives before the release; otherwise this change's event is lost.
  if (mode == replication::Applier::Mode::kActive && from == post.version.origin &&
      held_version == post.version && held_live && !expired_somewhere &&
      !state.event_old.contains({post.version.origin, post.version.seq})) {
    Fail(
        fmt::format("events: {} change {} arrived after the join was released; the image had "
                    "brought it and no event ever showed it",
                    Where(member, key), Show(post.version)));
  }
  pending.notional = pending.expected && !pending.old_value && post.tombstone;
  // Expiry makes no event, and a member takes an expiry from whichever member noticed it first
  // (storage::Supersedes). So a change may be silent when: it is a write's expiry (a tombstone
  // under the write's own version, shipped by an image or a repair); its own expiry has passed
  // on some member's clock (the expiry may be here already, or a reconcile took the write in
  // expired, and the write then arrives as a duplicate); it deletes a value with an expiry,
  // which may have expired here first.
  const WriteRecord* write = Find(post.version);
  const bool is_expiry = post.tombstone && write != nullptr && write->value.has_value();
  const bool deletes_volatile = post.tombstone && last.any && last.last_expire_at_unix_ms != 0;
  pending.may_be_silent = pending.expected && (is_expiry || expired_somewhere || deletes_volatile);
  state.pending = pending;
}

void Oracle::OnChangeApplied(SimMember& member, uint64_t from,
                             const replication::ChangeRecord& change) {
  MemberState& state = members_[member.id()];
  if (!state.pending) {
    return;
  }
  const Pending pending = *state.pending;
  state.pending.reset();
  const uint64_t made = state.events - pending.events_before;
  const std::string key(change.post.key);
  if (pending.expected && !pending.notional && !pending.may_be_silent && made == 0 &&
      TookInADeleteSilently(member, key, change.post.version)) {
    return;
  }
  if (pending.expected && !pending.notional && !pending.may_be_silent && made == 0) {
    std::string index_holds = "no index";
    if (storage::Store* index = member.replicator().applier().index()) {
      index_holds = "nothing in the index";
      index->WithKey(key, [&](storage::LockedKeys& keys) {
        if (auto entry = keys.FindAny(key)) {
          index_holds = "index " + Show(entry->version);
        }
      });
    }
    Fail(
        fmt::format("events: {} change {} arrived newer than the key's last event ({}) and made "
                    "no event ({})",
                    Where(member, key), Show(change.post.version),
                    members_[member.id()].keys[key].any ? Show(members_[member.id()].keys[key].last)
                                                        : std::string("none"),
                    index_holds));
  }
  if ((pending.notional || pending.may_be_silent) && made == 0) {
    Record(member, key, change.post.version, std::nullopt);
  }
}

bool Oracle::TookInADeleteSilently(SimMember& member, const std::string& key,
                                   const storage::Version& arrived) {
  // A reconcile that finds the image newer than the key's last event makes that change the
  // key's event, collapsing the changes between; when the key was absent (or its value has
  // expired) and the image's entry is a delete, the collapsed event is absent -> absent and
  // makes no sound. The changes it
  // collapsed then arrive older than the index's entry.
  KeyEvents& events = members_[member.id()].keys[key];
  const bool expired = events.last_expire_at_unix_ms != 0 &&
                       events.last_expire_at_unix_ms <= member.clock().NowUnixMs();
  if (events.any && events.last_new && !expired) {
    return false;  // the key held a value: a delete over it is an event
  }
  storage::Store* index = member.replicator().applier().index();
  std::optional<storage::Version> deleted;
  (index != nullptr ? *index : member.store()).WithKey(key, [&](storage::LockedKeys& keys) {
    if (auto entry = keys.FindAny(key);
        entry && entry->tombstone && entry->version.NewerThan(arrived)) {
      deleted = entry->version;
    }
  });
  if (!deleted) {
    return false;
  }
  Record(member, key, *deleted, std::nullopt);
  return true;
}

void Oracle::OnStabilized(SimMember& provider, uint64_t joiner, uint64_t join_id,
                          const std::map<uint64_t, replication::Marker>& markers,
                          const std::map<uint64_t, SimMember*>& members) {
  // The cut: everything the provider holds now must be in the joiner when it turns ACTIVE.
  std::map<std::string, storage::Version>& complete = members_[joiner].complete_from;
  complete.clear();
  uint64_t cursor = 0;
  do {
    cursor = provider.store().Scan(
        cursor, 64, /*include_tombstones=*/true,
        [&](const storage::EntryView& entry) { complete[std::string(entry.key)] = entry.version; });
  } while (cursor != 0);
  // Every marker is satisfied here: the image may start.
  for (const auto& [member, marker] : markers) {
    if (provider.replicator().peers().all().count(member) == 0 ||
        provider.replicator().peers().EntryEnded(member)) {
      continue;  // it left (or its entry is over here): not waited for from now on
    }
    for (uint32_t lane = 0; lane < marker.counters.size(); ++lane) {
      const auto& inbound = provider.replicator().peers().inbound();
      auto it = inbound.find({member, lane});
      const uint64_t stream = lane < marker.streams.size() ? marker.streams[lane] : 0;
      const bool ok =
          it != inbound.end() &&
          (it->second.stream_id > stream ||  // superseded: the marked stream ended
           (it->second.stream_id == stream && it->second.received >= marker.counters[lane]));
      if (!ok) {
        Fail(fmt::format(
            "cut: {} stabilized join {:016x} before the marker of {:016x} on lane {} was applied "
            "(marker: stream {} through {}; here: {})",
            provider.name(), join_id, member, lane,
            lane < marker.streams.size() ? marker.streams[lane] : 0, marker.counters[lane],
            it == inbound.end()
                ? std::string("nothing")
                : fmt::format("stream {} of entry {}, {} applied", it->second.stream_id,
                              it->second.sender_entry, it->second.received)));
      }
    }
  }
}

void Oracle::OnActive(SimMember& member) {
  MemberState& state = members_[member.id()];
  for (const auto& [complete_key, version] : state.complete_from) {
    const std::string& key = complete_key;  // a lambda below uses it (no binding captures)
    std::optional<storage::Version> held;
    member.store().WithKey(key, [&](storage::LockedKeys& keys) {
      if (const std::optional<storage::EntryView> entry = keys.FindAny(key)) {
        held = entry->version;
      }
    });
    if (!held || !AtLeast(*held, version)) {
      Fail(fmt::format(
          "complete: {} turned ACTIVE holding {} where its provider held {} at the "
          "cut",
          Where(member, key), held ? Show(*held) : std::string("nothing"), Show(version)));
    }
  }
  state.complete_from.clear();
}

void Oracle::OnRejoin(SimMember& member, bool still_in_group, std::string_view reason,
                      int64_t now_us) {
  if (still_in_group) {
    Fail(fmt::format("liveness: {} rejoined in place while still in the group ({})", member.name(),
                     reason));
  }
  MemberState& state = members_[member.id()];
  state.rejoined_us = now_us;
  state.keys.clear();
  state.pending.reset();
  state.local.reset();
  state.complete_from.clear();
  ++rejoins_;
}

void Oracle::OnCrash(SimMember& member) {
  crashed_.insert(member.id());
  members_.erase(member.id());
}

void Oracle::CheckCounters(const std::map<uint64_t, SimMember*>& members) {
  for (const auto& [id, receiver] : members) {
    if (!receiver->alive()) {
      continue;
    }
    for (const auto& [key, inbound] : receiver->replicator().peers().inbound()) {
      auto sender = members.find(key.first);
      if (sender == members.end() || !sender->second->alive()) {
        continue;
      }
      const auto& peers = sender->second->replicator().peers().all();
      auto peer = peers.find(id);
      if (peer == peers.end()) {
        continue;
      }
      const replication::Outbox& outbox = *peer->second.outboxes->lanes[key.second];
      if (outbox.stream_id() == inbound.stream_id && inbound.received > outbox.sent()) {
        Fail(fmt::format("counters: lane {} {} -> {}: received {} > sent {}", key.second,
                         sender->second->name(), receiver->name(), inbound.received,
                         outbox.sent()));
      }
    }
  }
}

void Oracle::CheckEnd(const std::map<uint64_t, SimMember*>& members, bool quiet,
                      const membership::GroupView& group, bool sync_region) {
  std::vector<SimMember*> active;
  std::set<uint64_t> active_ids;
  for (const auto& [id, member] : members) {
    if (member->alive() && member->replicator().serving() && group.Contains(id)) {
      active.push_back(member);
      active_ids.insert(id);
    }
  }
  if (!quiet) {
    for (const auto& [id, member] : members) {
      // A member that reports its failure has settled; the others must have.
      if (!member->alive() || member->replicator().state() == replication::RegionState::kFailed ||
          (member->replicator().serving() && group.Contains(id) &&
           member->replicator().join().phase() == replication::JoinPhase::kNone)) {
        continue;
      }
      const replication::ReplicationStatus status = member->replicator().GetStatus();
      Fail(
          fmt::format("liveness: did not settle; {} is {} in phase {} ({}{}; {} flush(es) and {} "
                      "repair(s) awaited)",
                      member->name(), replication::RegionStateName(status.state),
                      replication::JoinPhaseName(status.phase), status.waiting, status.failure,
                      member->replicator().join().flush_pending(),
                      member->replicator().join().repairs_pending()));
      for (uint64_t pending : member->replicator().join().flush_pending_members()) {
        auto other = members.find(pending);
        Fail(fmt::format("liveness: {} awaits the flush of {}", member->name(),
                         other != members.end() ? other->second->name() : "a departed member"));
      }
      const auto name_of = [&](uint64_t id) {
        auto it = members.find(id);
        return it != members.end() ? it->second->name() : fmt::format("{:016x}", id);
      };
      for (const auto& [survivor, departed] :
           member->replicator().join().repairs_pending_members()) {
        Fail(fmt::format("liveness: {} awaits the RepairDone of {} for departed {}", member->name(),
                         name_of(survivor), name_of(departed)));
      }
    }
  }
  for (const auto& [id, member] : members) {
    if (member->alive() && member->replicator().state() == replication::RegionState::kFailed &&
        group.Contains(id) && !active.empty()) {
      Fail(
          fmt::format("liveness: {} gave up ({}) while still in the group, with ACTIVE members "
                      "to join from",
                      member->name(), member->replicator().GetStatus().failure));
    }
  }
  if (active.empty()) {
    return;
  }
  // Convergence.
  const uint64_t digest = active[0]->store().Digest();
  auto live_entries = [](SimMember& member) {
    std::map<std::string, std::string> entries;
    uint64_t cursor = 0;
    do {
      cursor = member.store().Scan(cursor, 64, /*include_tombstones=*/false,
                                   [&](const storage::EntryView& entry) {
                                     entries[std::string(entry.key)] =
                                         fmt::format("{}={}", Show(entry.version), entry.value);
                                   });
    } while (cursor != 0);
    return entries;
  };
  for (SimMember* member : active) {
    if (member->store().Digest() == digest) {
      continue;
    }
    // Name the first keys that differ.
    const std::map<std::string, std::string> mine = live_entries(*member);
    const std::map<std::string, std::string> theirs = live_entries(*active[0]);
    std::vector<std::string> differ;
    for (const auto& [key, entry] : theirs) {
      auto it = mine.find(key);
      if (it == mine.end() || it->second != entry) {
        differ.push_back(fmt::format("'{}' ({} vs {})", key,
                                     it == mine.end() ? std::string("absent") : it->second, entry));
      }
    }
    for (const auto& [key, entry] : mine) {
      if (!theirs.contains(key)) {
        differ.push_back(fmt::format("'{}' ({} vs absent)", key, entry));
      }
    }
    differ.resize(std::min<size_t>(differ.size(), 3));
    Fail(fmt::format("convergence: {} differs from {}: {}", member->name(), active[0]->name(),
                     fmt::join(differ, ", ")));
  }
  auto held_version = [](SimMember& member, const std::string& key) {
    std::optional<storage::Version> held;
    member.store().WithKey(key, [&](storage::LockedKeys& keys) {
      if (const std::optional<storage::EntryView> entry = keys.FindAny(key)) {
        held = entry->version;
      }
    });
    return held;
  };
  // No acknowledged sync write lost while a member that applied it survives.
  if (sync_region) {
    for (const WriteRecord& write : writes_) {
      if (write.acked_us < 0 || !write.sync) {
        continue;
      }
      bool survivor = active_ids.contains(write.origin);
      for (uint64_t id : write.snapshot) {
        survivor |= active_ids.contains(id);
      }
      if (!survivor) {
        continue;
      }
      for (SimMember* member : active) {
        const std::optional<storage::Version> held = held_version(*member, write.key);
        if (!held || !AtLeast(*held, write.version)) {
          Fail(fmt::format("durability: {} lost the acknowledged write {} (holds {})",
                           Where(*member, write.key), Show(write.version),
                           held ? Show(*held) : std::string("nothing")));
          break;
        }
      }
    }
    // Single-writer keys hold their last acknowledged value, or the one written after it whose
    // outcome is unknown.
    std::map<std::string, std::vector<const WriteRecord*>> single;
    for (const WriteRecord& write : writes_) {
      if (write.single_writer) {
        single[write.key].push_back(&write);
      }
    }
    for (const auto& [key, writes] : single) {
      const WriteRecord* acked = nullptr;
      const WriteRecord* after = nullptr;
      for (const WriteRecord* write : writes) {
        if (write->acked_us >= 0) {
          acked = write;
          after = nullptr;
        } else {
          after = write;
        }
      }
      if (acked == nullptr) {
        continue;
      }
      for (SimMember* member : active) {
        const std::optional<storage::Version> held = held_version(*member, key);
        const bool ok =
            held && (*held == acked->version || (after != nullptr && *held == after->version));
        if (!ok) {
          Fail(fmt::format("single writer: {} holds {}, its last acknowledged write is {}",
                           Where(*member, key), held ? Show(*held) : std::string("nothing"),
                           Show(acked->version)));
        }
      }
    }
  }
  // Events end where the store is.
  for (SimMember* member : active) {
    for (const auto& [event_key, events] : members_[member->id()].keys) {
      if (!events.any) {
        continue;
      }
      const std::string& key = event_key;  // a lambda below uses it (no binding captures)
      std::optional<std::string> live;
      member->store().WithKey(key, [&](storage::LockedKeys& keys) {
        if (const std::optional<storage::EntryView> entry = keys.Find(key)) {
          live = std::string(entry->value);
        }
      });
      const bool expired = !live && events.last_expire_at_unix_ms != 0;
      if (live != events.last_new && !expired) {
        Fail(fmt::format("events: {} last event says {}, the store holds {}", Where(*member, key),
                         Show(events.last_new), Show(live)));
      }
    }
  }
  // Nothing stays behind.
  for (SimMember* member : active) {
    const replication::RegionReplicator& replicator = member->replicator();
    std::vector<std::string> left;
    if (replicator.join().phase() != replication::JoinPhase::kNone) {
      left.push_back(fmt::format("join phase {}", JoinPhaseName(replicator.join().phase())));
    }
    if (replicator.applier().index() != nullptr) {
      left.push_back("a post-image store");
    }
    const replication::JoinService& service = replicator.service();
    if (service.stabilizations() + service.early_markers() + service.stabilized_joins() +
            service.pending_marks() + service.purge_pauses() >
        0) {
      left.push_back(
          fmt::format("join state ({} stabilizing, {} early markers, {} stabilized, "
                      "{} marks, {} purge pauses)",
                      service.stabilizations(), service.early_markers(), service.stabilized_joins(),
                      service.pending_marks(), service.purge_pauses()));
    }
    if (replicator.image_serves() > 0) {
      left.push_back("an image being served");
    }
    for (const auto& [id, peer] : replicator.peers().all()) {
      if (!active_ids.contains(id)) {
        continue;
      }
      if (peer.wants_pre_image) {
        left.push_back(fmt::format("pre-images for ACTIVE {}", peer.info.name));
      }
      for (const auto& outbox : peer.outboxes->lanes) {
        if (outbox->sent() != outbox->acked()) {
          left.push_back(fmt::format("{} unacknowledged change(s) to {}",
                                     outbox->sent() - outbox->acked(), peer.info.name));
        }
      }
    }
    for (const std::string& what : left) {
      Fail(fmt::format("bounds: {} still has {}", member->name(), what));
    }
  }
}

}  // namespace weft::sim
