// RegionEnv: what every role of one region's replication shares — its options, this member, the
// host and the injected clock and randomness — and ReplicatorOptions, the knobs of them all.
//
// Thread safety: a bundle of references; each object says its own.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

#include "weft/base/clock.h"
#include "weft/base/random.h"
#include "weft/membership/registry.h"
#include "weft/replication/host.h"
#include "weft/replication/write_path.h"

namespace weft::replication {

// Deliberate breaks of the protocol, for the simulator only (weftd never sets them). Each
// removes one safeguard or reverts one fix, and the simulator's oracles must catch it: the first
// four are the checker tests of docs/design/simulation.md; the others bring back the bugs found
// in review (issue 8), each with the seed or scenario that catches it (tests/sim/breaks.txt).
struct ProtocolBreaks {
  bool skip_drain = false;                  // markers read counters before in-flight writes end
  bool image_overwrites_postimage = false;  // the merge keeps image entries over newer ones
  bool release_before_flush = false;        // free the index before every JoinFlush arrived
  bool ack_before_joiner_applies = false;   // a joiner's lanes take no sync tickets
  // Bug 1: the merge copies a batch of post-image entries and merges the copies a step later.
  bool stale_reconcile = false;
  // Bug 2: the release installs the recipient set as it was when the release began.
  bool stale_release_recipients = false;
  // Bug 3: image entries are not remembered for departure repair.
  bool forget_image_for_repair = false;
  // Bug 4: repairs ship no pre-image, and the release does not wait for RepairDone.
  bool repair_without_pre_image = false;
  // Bug 5: a lane that closes releases the tickets of the writes waiting on it.
  bool release_tickets_on_close = false;
  // Bug 6: a failed attempt clears the base store at once, ahead of chunks still queued.
  bool clear_without_barrier = false;
  // Bug 7: no last reconcile before the release.
  bool skip_release_sweep = false;
  // Bug 8: a provider that failed once is never tried again; none left: FAILED.
  bool blacklist_failed_providers = false;
  // Bug 9: a member that cannot mark says nothing (and the joiner has no phase deadline).
  bool silent_marking_failure = false;
  // Bug 10: pre-image flags set while joining survive this member's own ACTIVE.
  bool keep_pre_images_at_active = false;
  // Bug 11: any member may fetch the image of a stabilized join; early markers never expire.
  bool admit_any_requester = false;
  // Bug 12: a lane re-created for the same member reuses its stream id.
  bool reuse_stream_ids = false;
  // Seed 989: a member rejoining as a joiner gives its holding up at once and clears its copy.
  bool give_up_holding_on_entry = false;
  // Seed 1624: a receiver takes streams of a member's entry it has removed.
  bool admit_ended_entries = false;

  bool any() const {
    return skip_drain || image_overwrites_postimage || release_before_flush ||
           ack_before_joiner_applies || stale_reconcile || stale_release_recipients ||
           forget_image_for_repair || repair_without_pre_image || release_tickets_on_close ||
           clear_without_barrier || skip_release_sweep || blacklist_failed_providers ||
           silent_marking_failure || keep_pre_images_at_active || admit_any_requester ||
           reuse_stream_ids || give_up_holding_on_entry || admit_ended_entries;
  }
};

struct ReplicatorOptions {
  std::string region = "default";
  ReplicationMode mode = ReplicationMode::kSync;
  uint32_t lanes = 2;
  // Member name to prefer as provider; empty: a seeded random ACTIVE member.
  std::string preferred_provider;
  size_t lane_payload_bytes = 256 * 1024;  // per LaneItems frame (at least one record)
  // A recipient whose unacknowledged changes on one lane pass this is expelled from the group,
  // as is one that acknowledges nothing on a lane with changes waiting for ack_timeout_ms
  // (longer than a registry lease, so a crashed member leaves by its lease first).
  size_t outbox_bytes_max = size_t{1} << 30;
  int64_t ack_timeout_ms = 60'000;
  // A recipient with changes waiting that no lane has reached for this long is expelled too:
  // sync writes wait for every group member (the sync contract), so an unreachable one may hold
  // them only this long. Longer than a lane's silence timeout plus a redial, so that one lost
  // connection is not taken for an unreachable member.
  int64_t unreachable_timeout_ms = 5'000;
  // Lanes: an idle lane heartbeats; a lane silent this long is closed and redialed.
  int64_t heartbeat_interval_ms = 500;
  int64_t silence_timeout_ms = 3'000;
  int64_t redial_min_ms = 50;
  int64_t redial_max_ms = 2'000;
  // Periodic work (pacing, laggards, deadlines).
  int64_t tick_ms = 100;
  // Join attempts: the intent and stabilization phases must end within this, and the image must
  // make progress within image_stall_timeout_ms; a failed attempt is retried after a backoff
  // that doubles from retry_min_ms to retry_max_ms.
  int64_t join_phase_timeout_ms = 15'000;
  int64_t image_stall_timeout_ms = 30'000;
  int64_t retry_min_ms = 100;
  int64_t retry_max_ms = 5'000;
  // How long a provider keeps a marker that overtook its JoinIntent, and a stabilized join
  // whose image was not asked for.
  int64_t early_marker_ttl_ms = 60'000;
  int64_t stabilized_ttl_ms = 60'000;
  // Post-image entries reconciled per protocol step (incorporate, release): short steps, so
  // live changes interleave.
  size_t reconcile_batch = 512;
  size_t image_chunk_bytes = 256 * 1024;
  uint64_t image_window_bytes = 8 << 20;  // credit the joiner keeps granted
  uint64_t image_rate_limit_bytes_per_s = 0;
  // Pace images by the acknowledgement latency of live changes (ImagePacer). Off by default
  // because pacing needs time to pass; weftd turns it on.
  bool pace_images = false;
  int64_t image_pace_target_us = 4'000;
  size_t postimage_shard_count = 256;
  // RecentChanges window for repairing a crashed member's half-sent changes.
  size_t recent_changes_capacity = 1 << 18;
  size_t recent_changes_bytes_max = 64 << 20;
  int64_t recent_changes_window_ms = 30'000;
  ProtocolBreaks breaks;
};

struct RegionEnv {
  const ReplicatorOptions& options;
  const membership::MemberInfo& self;
  Host& host;
  const Clock& clock;
  Random& random;
};

}  // namespace weft::replication
