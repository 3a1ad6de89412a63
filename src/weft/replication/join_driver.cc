#include "weft/replication/join_driver.h"

#include <algorithm>
#include <utility>

#include "weft/base/check.h"
#include "weft/base/logging.h"

namespace weft::replication {
namespace {

bool IsTransient(const Status& status) {
  return !absl::IsFailedPrecondition(status) && !absl::IsInvalidArgument(status) &&
         !absl::IsAlreadyExists(status);
}

}  // namespace

JoinDriver::JoinDriver(const RegionEnv& env, JoinDriverHost& host, Peers& peers, Applier& applier,
                       WritePath& write_path, storage::Store& store,
                       storage::VersionSource& versions, RecentChanges& recent)
    : env_(env),
      host_(host),
      peers_(peers),
      applier_(applier),
      write_path_(write_path),
      store_(store),
      versions_(versions),
      recent_(recent) {}

JoinDriver::~JoinDriver() {
  if (fetch_ != nullptr) {
    fetch_->Abandon();
  }
}

void JoinDriver::EnterPhase(JoinPhase phase) {
  WEFT_CHECK(JoinPhaseTransitionAllowed(phase_, phase));
  const int64_t now_us = env_.clock.NowMonotonicUs();
  WEFT_LOG_INFO("region {}: join phase {} -> {} after {} ms", env_.options.region,
                JoinPhaseName(phase_), JoinPhaseName(phase), (now_us - phase_started_us_) / 1000);
  const JoinPhase from = phase_;
  phase_ = phase;
  phase_started_us_ = now_us;
  held_at_ = JoinPhase::kNone;
  host_.OnJoinPhase(from, phase);
}

bool JoinDriver::Held(JoinPhase phase) {
  if (held_.contains(phase)) {
    held_at_ = phase;
    return true;
  }
  return false;
}

void JoinDriver::Begin(int64_t entered_revision, bool own_copy) {
  entered_revision_ = entered_revision;
  own_copy_ = own_copy ? OwnCopy::kKept : OwnCopy::kNone;
  join_started_us_ = env_.clock.NowMonotonicUs();
  phase_started_us_ = join_started_us_;
  BeginAttempt();
}

void JoinDriver::BeginAttempt() {
  const int64_t now_us = env_.clock.NowMonotonicUs();
  std::vector<uint64_t> active;
  std::vector<uint64_t> candidates;
  for (const membership::GroupMember& member : host_.view().members) {
    if (member.info.member_id == env_.self.member_id ||
        member.state != membership::MemberState::kActive) {
      continue;
    }
    active.push_back(member.info.member_id);
    auto backoff = provider_backoff_until_us_.find(member.info.member_id);
    if (backoff == provider_backoff_until_us_.end() || backoff->second <= now_us) {
      candidates.push_back(member.info.member_id);
    }
  }
  if (env_.options.breaks.blacklist_failed_providers && !active.empty() && candidates.empty()) {
    host_.OnJoinAborted("no provider left to join from");
    return;
  }
  if (active.empty() && own_copy_ == OwnCopy::kKept) {
    waiting_ = "no ACTIVE member to join from; re-forming the group from this member's copy";
    if (phase_ != JoinPhase::kRetry) {
      EnterPhase(JoinPhase::kRetry);
    }
    Reform();
    return;
  }
  if (active.empty() || candidates.empty()) {
    // Never "ready" with a partial copy: wait for a provider, and say why.
    waiting_ = active.empty() ? "no ACTIVE member to join from"
                              : "every ACTIVE member failed as provider recently";
    if (phase_ != JoinPhase::kRetry) {
      EnterPhase(JoinPhase::kRetry);
    }
    ScheduleRetry(RetryDelayUs());
    return;
  }
  waiting_.clear();
  uint64_t provider = candidates[env_.random.Uniform(candidates.size())];
  for (uint64_t id : candidates) {
    const Peers::Peer* peer = peers_.Find(id);
    if (peer != nullptr && !env_.options.preferred_provider.empty() &&
        peer->info.name == env_.options.preferred_provider) {
      provider = id;
    }
  }
  Attempt attempt;
  attempt.join_id = env_.random.Next() | 1;
  attempt.provider = provider;
  const Peers::Peer* provider_peer = peers_.Find(provider);
  attempt.provider_name =
      provider_peer != nullptr ? provider_peer->info.name : membership::FormatMemberId(provider);
  attempt.intent_pending.insert(active.begin(), active.end());
  attempt.deadline_us = now_us + env_.options.join_phase_timeout_ms * 1000;
  attempt.last_progress_us = now_us;
  attempt_ = std::move(attempt);
  ++attempts_;
  WEFT_LOG_INFO("region {}: join attempt {} (id {:016x}) from provider {}, {} member(s) to mark",
                env_.options.region, attempts_, attempt_->join_id, attempt_->provider_name,
                active.size());
  EnterPhase(JoinPhase::kIntent);
  ControlRecord intent;
  intent.join_id = attempt_->join_id;
  intent.member = provider;
  intent.members = active;
  intent.revision = entered_revision_;
  intent.view_revision = host_.view().revision;
  intent.name = env_.self.name;
  intent.peer_address = env_.self.peer_address;
  intent.client_address = env_.self.client_address;
  for (uint64_t member : active) {
    if (!peers_.SendControl(member, RecordKind::kJoinIntent, intent)) {
      FailAttempt("an ACTIVE member is not reachable from here yet");
      return;
    }
  }
}

int64_t JoinDriver::RetryDelayUs() {
  const int shift = std::min(std::max(consecutive_failures_ - 1, 0), 20);
  const int64_t ceiling = std::min(env_.options.retry_max_ms, env_.options.retry_min_ms << shift);
  return (ceiling / 2 + static_cast<int64_t>(env_.random.Uniform(ceiling / 2 + 1))) * 1000;
}

void JoinDriver::ScheduleRetry(int64_t delay_us) {
  const uint64_t generation = ++retry_generation_;
  env_.host.After(
      delay_us, Guard([this, generation] {
        if (generation == retry_generation_ && phase_ == JoinPhase::kRetry && !clearing_) {
          BeginAttempt();
        }
      }));
}

void JoinDriver::FailAttempt(std::string_view reason) {
  if (!attempt_) {
    return;
  }
  WEFT_LOG_WARN("region {}: join attempt {} from {} failed in phase {}: {}; retrying",
                env_.options.region, attempts_, attempt_->provider_name, JoinPhaseName(phase_),
                reason);
  ++consecutive_failures_;
  const int64_t now_us = env_.clock.NowMonotonicUs();
  provider_backoff_until_us_[attempt_->provider] =
      env_.options.breaks.blacklist_failed_providers ? INT64_MAX : now_us + RetryDelayUs() * 4;
  if (fetch_ != nullptr) {
    fetch_->Abandon();
    fetch_.reset();
  }
  last_attempt_ = std::move(attempt_);
  attempt_.reset();
  waiting_ = std::string(reason);
  EnterPhase(JoinPhase::kRetry);
  if (own_copy_ != OwnCopy::kNone) {
    // No image has begun: the base store is this member's own copy, kept (or being given up,
    // which schedules the retry once it is cleared).
    ScheduleRetry(RetryDelayUs());
    return;
  }
  // The partial image goes, behind any chunk still queued on the worker; the next attempt
  // starts once it is gone and a backoff has passed. The post-image store stays.
  if (env_.options.breaks.clear_without_barrier) {
    store_.Clear();
    ScheduleRetry(RetryDelayUs());
    return;
  }
  const uint64_t generation = ++retry_generation_;
  ClearBaseStore([this, generation] {
    if (generation == retry_generation_ && phase_ == JoinPhase::kRetry) {
      ScheduleRetry(RetryDelayUs());
    }
  });
}

void JoinDriver::ClearBaseStore(std::function<void()> done) {
  clearing_ = true;
  storage::Store& store = store_;
  env_.host.Offload([&store] { store.Clear(); }, Guard([this, done = std::move(done)] {
                      clearing_ = false;
                      done();
                    }));
}

void JoinDriver::OnGroupView(const membership::GroupView& view) {
  // A provider may have appeared while the join waited for one.
  if (phase_ == JoinPhase::kRetry && !attempt_ && !clearing_ && !view.ActiveIds().empty() &&
      waiting_ == "no ACTIVE member to join from") {
    BeginAttempt();
  }
}

void JoinDriver::OnIntentAck(uint64_t from, const ControlRecord& ack) {
  if (!attempt_ || attempt_->join_id != ack.join_id) {
    return;
  }
  if (!ack.error.empty()) {
    if (attempt_->stabilized) {
      // The provider has every marker it waited for (or saw the member leave): the cut holds.
      // A refusal now comes from a member that got the intent late, after it rejoined (seed
      // 5341: the join was incorporating).
      return;
    }
    const Peers::Peer* peer = peers_.Find(from);
    FailAttempt(fmt::format("{} could not mark the cut: {}",
                            peer != nullptr ? peer->info.name : membership::FormatMemberId(from),
                            ack.error));
    return;
  }
  attempt_->intent_pending.erase(from);
  if (attempt_->intent_pending.empty() && phase_ == JoinPhase::kIntent) {
    EnterPhase(JoinPhase::kStabilize);
  }
}

void JoinDriver::OnStabilized(uint64_t from, const ControlRecord& stabilized) {
  if (!attempt_ || attempt_->join_id != stabilized.join_id || from != attempt_->provider) {
    return;
  }
  attempt_->stabilized = true;
  // Stabilized implies every member marked (or left), whether or not its IntentAck is in.
  if (phase_ == JoinPhase::kIntent) {
    EnterPhase(JoinPhase::kStabilize);
  }
  MaybeRequestImage();
}

void JoinDriver::MaybeRequestImage() {
  if (!attempt_ || !attempt_->stabilized || phase_ != JoinPhase::kStabilize ||
      Held(JoinPhase::kImage)) {
    return;
  }
  const Peers::Peer* provider = peers_.Find(attempt_->provider);
  if (provider == nullptr) {
    FailAttempt("the provider is not in the group");
    return;
  }
  if (own_copy_ != OwnCopy::kNone) {
    GiveUpOwnCopy();  // comes back here once the copy is gone
    return;
  }
  EnterPhase(JoinPhase::kImage);
  const int64_t now_us = env_.clock.NowMonotonicUs();
  attempt_->image_started_us = now_us;
  attempt_->last_progress_us = now_us;
  ImageRequest request;
  request.region = env_.options.region;
  request.joiner = env_.self.member_id;
  request.join_id = attempt_->join_id;
  request.credit_bytes = env_.options.image_window_bytes;
  fetch_ = std::make_shared<ImageFetch>(env_.host, env_.clock, store_, versions_, *this,
                                        attempt_->join_id, EncodeImageRequest(request),
                                        recent_.window_ms());
  env_.host.Open(provider->info, ChannelKind::kImage, 0, fetch_);
}

void JoinDriver::GiveUpOwnCopy() {
  if (own_copy_ != OwnCopy::kKept) {
    return;  // under way already
  }
  own_copy_ = OwnCopy::kGivingUp;
  // The holding goes first: once the copy is cleared this member must never re-form the group,
  // and nobody may wait for it as a holder.
  RegistryRequest request;
  request.op = RegistryRequest::Op::kGiveUpHolding;
  request.region = env_.options.region;
  env_.host.Registry(std::move(request), Guard([this](RegistryReply reply) {
                       if (!reply.status.ok()) {
                         WEFT_LOG_WARN("region {}: giving up the holding failed ({}); retrying",
                                       env_.options.region, reply.status.ToString());
                         env_.host.After(RetryDelayUs(), Guard([this] {
                                           own_copy_ = OwnCopy::kKept;
                                           GiveUpOwnCopy();
                                         }));
                         return;
                       }
                       ClearBaseStore([this] {
                         own_copy_ = OwnCopy::kNone;
                         WEFT_LOG_INFO(
                             "region {}: gave up this member's own copy; an image "
                             "replaces it",
                             env_.options.region);
                         if (phase_ == JoinPhase::kStabilize) {
                           MaybeRequestImage();
                         } else if (phase_ == JoinPhase::kRetry) {
                           ScheduleRetry(RetryDelayUs());
                         }
                       });
                     }));
}

void JoinDriver::Reform() {
  if (reforming_) {
    return;
  }
  reforming_ = true;
  ++retry_generation_;  // no attempt may start while the answer is out
  RegistryRequest request;
  request.op = RegistryRequest::Op::kReform;
  request.region = env_.options.region;
  env_.host.Registry(std::move(request), Guard([this](RegistryReply reply) {
                       reforming_ = false;
                       if (phase_ != JoinPhase::kRetry || attempt_) {
                         return;
                       }
                       if (reply.status.ok()) {
                         // The changes received since this member came back go into its copy;
                         // nobody wrote locally meanwhile (INITIALIZING), so the index that
                         // decided their events can go at once.
                         applier_.BeginMerge();
                         uint64_t cursor = 0;
                         do {
                           cursor = applier_.Reconcile(cursor, env_.options.reconcile_batch);
                         } while (cursor != 0);
                         std::unique_ptr<EventIndex> index = applier_.EndJoin();
                         own_copy_ = OwnCopy::kNone;
                         waiting_.clear();
                         active_revision_ = reply.view.revision;
                         join_finished_us_ = env_.clock.NowMonotonicUs();
                         WEFT_LOG_INFO(
                             "region {}: re-formed the group from this member's own copy and {} "
                             "change(s) received since it came back: nobody was ACTIVE "
                             "(revision {})",
                             env_.options.region, applier_.postimage_changes(),
                             reply.view.revision);
                         EnterPhase(JoinPhase::kNone);
                         host_.OnBecameActive(reply.view);
                         write_path_.RetireIndex(std::move(index), peers_.Publish());
                         return;
                       }
                       // Someone is ACTIVE now (join from it), this member no longer holds the
                       // region (an ACTIVE member dropped it before going on without it: wait
                       // for a holder), or it is no longer in the group (the view will say).
                       // The copy stays either way until an image is about to replace it: a
                       // refusal read wrongly must never cost the region's last copy.
                       WEFT_LOG_INFO("region {}: re-forming the group failed ({}); retrying",
                                     env_.options.region, reply.status.ToString());
                       ScheduleRetry(RetryDelayUs());
                     }));
}

void JoinDriver::OnImageChunkApplied(uint64_t join_id, uint64_t entries, uint64_t bytes,
                                     uint64_t entries_estimate,
                                     std::vector<RecentImageEntry> recent) {
  if (!attempt_ || attempt_->join_id != join_id) {
    return;
  }
  attempt_->entries += entries;
  attempt_->bytes += bytes;
  attempt_->entries_estimate = entries_estimate;
  const int64_t now_us = env_.clock.NowMonotonicUs();
  attempt_->last_progress_us = now_us;
  // A provider's change may reach this member only through the image; if its origin dies, the
  // repair has to know it from here.
  const int64_t now_ms = env_.clock.NowUnixMs();  // the repair window is wall time
  for (const RecentImageEntry& entry : recent) {
    if (env_.options.breaks.forget_image_for_repair) {
      break;
    }
    recent_.Record(entry.key, entry.version, /*pre_known=*/false, std::nullopt, now_ms);
  }
}

void JoinDriver::OnImageComplete(uint64_t join_id, const ImageDone& done,
                                 uint64_t entries_applied) {
  if (!attempt_ || attempt_->join_id != join_id || phase_ != JoinPhase::kImage) {
    return;
  }
  fetch_.reset();
  if (done.entries != entries_applied) {
    FailAttempt(
        fmt::format("the image announced {} entries, {} arrived", done.entries, entries_applied));
    return;
  }
  attempt_->image_complete = true;
  attempt_->image_finished_us = env_.clock.NowMonotonicUs();
  WEFT_LOG_INFO("region {}: image complete: {} entries, {} bytes", env_.options.region,
                done.entries, done.bytes);
  MaybeIncorporate();
}

void JoinDriver::OnImageFailed(uint64_t join_id, const Status& reason) {
  if (attempt_ && attempt_->join_id == join_id && phase_ == JoinPhase::kImage) {
    FailAttempt(fmt::format("the image failed: {}", std::string(reason.message())));
  }
}

void JoinDriver::MaybeIncorporate() {
  if (!attempt_ || !attempt_->image_complete || phase_ != JoinPhase::kImage ||
      Held(JoinPhase::kIncorporate)) {
    return;
  }
  consecutive_failures_ = 0;
  EnterPhase(JoinPhase::kIncorporate);
  applier_.BeginMerge();
  reconcile_cursor_ = 0;
  ContinueMerge();
}

void JoinDriver::ContinueMerge() {
  reconcile_cursor_ = applier_.Reconcile(reconcile_cursor_, env_.options.reconcile_batch);
  if (reconcile_cursor_ != 0) {
    env_.host.After(0, Guard([this] {
                      if (phase_ == JoinPhase::kIncorporate) {
                        ContinueMerge();
                      }
                    }));
    return;
  }
  RequestActive();
}

void JoinDriver::RequestActive() {
  RegistryRequest request;
  request.op = RegistryRequest::Op::kSetState;
  request.region = env_.options.region;
  request.state = membership::MemberState::kActive;
  env_.host.Registry(std::move(request), Guard([this](RegistryReply reply) {
                       if (phase_ != JoinPhase::kIncorporate) {
                         return;
                       }
                       if (reply.status.ok()) {
                         active_revision_ = reply.view.revision;
                         host_.OnBecameActive(reply.view);
                         if (phase_ == JoinPhase::kIncorporate) {
                           SendJoinComplete();
                         }
                         return;
                       }
                       if (!IsTransient(reply.status)) {
                         host_.OnJoinAborted(fmt::format("could not mark this member ACTIVE: {}",
                                                         std::string(reply.status.message())));
                         return;
                       }
                       WEFT_LOG_WARN("region {}: marking this member ACTIVE failed ({}); retrying",
                                     env_.options.region, std::string(reply.status.message()));
                       ++consecutive_failures_;
                       env_.host.After(RetryDelayUs(), Guard([this] {
                                         if (phase_ == JoinPhase::kIncorporate) {
                                           RequestActive();
                                         }
                                       }));
                     }));
}

void JoinDriver::SendJoinComplete() {
  if (phase_ != JoinPhase::kIncorporate || Held(JoinPhase::kFlush)) {
    return;
  }
  EnterPhase(JoinPhase::kFlush);
  ControlRecord complete;
  complete.join_id = attempt_->join_id;
  // How to reach this member: a member that turned ACTIVE just before it may not list it yet.
  complete.revision = active_revision_;
  complete.name = env_.self.name;
  complete.peer_address = env_.self.peer_address;
  complete.client_address = env_.self.client_address;
  for (const membership::GroupMember& member : host_.view().members) {
    const uint64_t id = member.info.member_id;
    if (id == env_.self.member_id || member.state != membership::MemberState::kActive ||
        peers_.Find(id) == nullptr) {
      continue;
    }
    for (uint32_t lane = 0; lane < env_.options.lanes; ++lane) {
      flush_pending_.insert({id, lane});
    }
    peers_.SendControl(id, RecordKind::kJoinComplete, complete);
  }
  MaybeRelease();
}

void JoinDriver::OnJoinFlush(uint64_t from, uint32_t lane, const ControlRecord& flush) {
  if (phase_ == JoinPhase::kFlush && attempt_ && attempt_->join_id == flush.join_id) {
    flush_pending_.erase({from, lane});
    MaybeRelease();
  }
}

void JoinDriver::OnRepairDone(uint64_t from, uint32_t lane, uint64_t origin, int64_t through) {
  if (joining()) {
    int64_t& claim = repairs_received_.try_emplace({from, lane, origin}, through).first->second;
    claim = std::max(claim, through);
    MaybeRelease();
  }
}

bool JoinDriver::RepairPending(const RepairMark& mark, int64_t entry) const {
  auto received = repairs_received_.find(mark);
  return received == repairs_received_.end() || received->second < entry;
}

size_t JoinDriver::repairs_pending() const {
  size_t pending = 0;
  for (const auto& [mark, entry] : repairs_expected_) {
    pending += RepairPending(mark, entry) ? 1 : 0;
  }
  return pending;
}

void JoinDriver::QueryRepairs() {
  repairs_queried_us_ = env_.clock.NowMonotonicUs();
  std::set<std::pair<uint64_t, uint64_t>> asked;
  for (const auto& [mark, entry] : repairs_expected_) {
    const auto& [repairer, lane, origin] = mark;
    if (RepairPending(mark, entry) && asked.emplace(repairer, origin).second) {
      ControlRecord query;
      query.member = origin;
      query.revision = entry;
      peers_.SendControl(repairer, RecordKind::kRepairQuery, query);
    }
  }
}

std::set<std::pair<uint64_t, uint64_t>> JoinDriver::repairs_pending_members() const {
  std::set<std::pair<uint64_t, uint64_t>> pending;
  for (const auto& [mark, entry] : repairs_expected_) {
    if (RepairPending(mark, entry)) {
      pending.emplace(std::get<0>(mark), std::get<2>(mark));
    }
  }
  return pending;
}

void JoinDriver::OnMemberLeft(uint64_t member, int64_t revision, int64_t entry) {
  if (!joining()) {
    return;
  }
  std::erase_if(flush_pending_, [&](const auto& entry) { return entry.first == member; });
  std::erase_if(repairs_expected_,
                [&](const auto& expected) { return std::get<0>(expected.first) == member; });
  // Every survivor that knew the departed entry repairs its half-sent changes, and a repair may
  // carry a change this member must report: the release waits for each one's RepairDone. Which
  // survivors knew it is not known here (the departure may show late: a survivor listed before
  // this view may have entered after the entry ended, seed 5181); one whose RepairDone is slow
  // in coming is asked (OnTick).
  for (const auto& [id, peer] : peers_.all()) {
    if (id != member && peer.listed_since < revision) {
      for (uint32_t lane = 0; lane < env_.options.lanes; ++lane) {
        int64_t& awaited = repairs_expected_.try_emplace({id, lane, member}, entry).first->second;
        awaited = std::max(awaited, entry);
      }
    }
  }
  if (attempt_) {
    attempt_->intent_pending.erase(member);
    if (member == attempt_->provider &&
        (phase_ == JoinPhase::kIntent || phase_ == JoinPhase::kStabilize ||
         phase_ == JoinPhase::kImage)) {
      FailAttempt("the provider left the group");
      return;
    }
    if (phase_ == JoinPhase::kIntent && attempt_->intent_pending.empty()) {
      EnterPhase(JoinPhase::kStabilize);
    }
  }
  MaybeRelease();
}

void JoinDriver::MaybeRelease() {
  if (phase_ != JoinPhase::kFlush || releasing_) {
    return;
  }
  if (!env_.options.breaks.release_before_flush) {
    const bool repairs_wait =
        repairs_pending() > 0 && !env_.options.breaks.repair_without_pre_image;
    if (!flush_pending_.empty() || repairs_wait) {
      return;
    }
  }
  releasing_ = true;
  reconcile_cursor_ = 0;
  if (env_.options.breaks.stale_release_recipients) {
    release_recipients_ = write_path_.Current()->members;
  }
  ContinueSweep();
}

void JoinDriver::ContinueSweep() {
  // A last reconcile while the index still decides: every change the image carried before its
  // live copy is in by now (the flushes), so what the base store holds newer than a key's last
  // event is a change that key's events must still show.
  if (!env_.options.breaks.skip_release_sweep) {
    reconcile_cursor_ = applier_.Reconcile(reconcile_cursor_, env_.options.reconcile_batch);
  }
  if (reconcile_cursor_ != 0) {
    env_.host.After(0, Guard([this] {
                      if (phase_ == JoinPhase::kFlush) {
                        ContinueSweep();
                      }
                    }));
    return;
  }
  // From here the base store decides events, for live changes and local writes alike; writes
  // that began before still use the index, which is freed once they are done.
  std::unique_ptr<EventIndex> released_index = applier_.EndJoin();
  peers_.set_event_index(nullptr);
  const uint64_t release_epoch = env_.options.breaks.stale_release_recipients
                                     ? write_path_.Replace(std::move(release_recipients_), nullptr)
                                     : peers_.Publish();
  write_path_.RetireIndex(std::move(released_index), release_epoch);
  ControlRecord released;
  released.join_id = attempt_->join_id;
  // Views older than this still list this member INITIALIZING; they must not turn pre-images
  // back on.
  released.revision = active_revision_;
  for (const auto& [id, peer] : peers_.all()) {
    peers_.SendControl(id, RecordKind::kJoinReleased, released);
  }
  join_finished_us_ = env_.clock.NowMonotonicUs();
  WEFT_LOG_INFO("region {}: join complete in {} ms; {} live change(s) arrived during it",
                env_.options.region, (join_finished_us_ - join_started_us_) / 1000,
                applier_.postimage_changes());
  last_attempt_ = std::move(attempt_);
  attempt_.reset();
  flush_pending_.clear();
  repairs_expected_.clear();
  repairs_received_.clear();
  releasing_ = false;
  EnterPhase(JoinPhase::kNone);
}

void JoinDriver::OnTick() {
  const int64_t now_us = env_.clock.NowMonotonicUs();
  if (phase_ == JoinPhase::kIntent || phase_ == JoinPhase::kStabilize ||
      phase_ == JoinPhase::kImage || phase_ == JoinPhase::kRetry) {
    if (std::optional<std::string> refusal = EveryProviderRefuses()) {
      host_.OnJoinRefused(*std::move(refusal));
      return;
    }
  }
  if (!attempt_) {
    return;
  }
  // The release still waits for repairs a second into flush (or since the last ask): ask the
  // repairers for their claims. Not at once: almost always the repairs come by themselves, and
  // a question costs a record on every repairer's lane.
  constexpr int64_t kRepairQueryIntervalUs = 1'000'000;
  if (phase_ == JoinPhase::kFlush && !releasing_ && repairs_pending() > 0 &&
      now_us - std::max(phase_started_us_, repairs_queried_us_) >= kRepairQueryIntervalUs) {
    QueryRepairs();
  }
  if ((phase_ == JoinPhase::kIntent || phase_ == JoinPhase::kStabilize) &&
      now_us > attempt_->deadline_us && held_at_ != JoinPhase::kImage &&
      !env_.options.breaks.silent_marking_failure) {
    FailAttempt(fmt::format("no stabilization within {} ms", env_.options.join_phase_timeout_ms));
  } else if (phase_ == JoinPhase::kImage &&
             now_us - attempt_->last_progress_us > env_.options.image_stall_timeout_ms * 1000) {
    FailAttempt(
        fmt::format("the image made no progress for {} ms", env_.options.image_stall_timeout_ms));
  }
}

std::optional<std::string> JoinDriver::EveryProviderRefuses() const {
  std::optional<std::string> reason;
  for (const membership::GroupMember& member : host_.view().members) {
    if (member.info.member_id == env_.self.member_id ||
        member.state != membership::MemberState::kActive) {
      continue;
    }
    Status refusal = peers_.Refusal(member.info.member_id);
    if (refusal.ok()) {
      return std::nullopt;
    }
    if (!reason) {
      reason = fmt::format("every ACTIVE member refuses this member's handshake ({})",
                           std::string(refusal.message()));
    }
  }
  return reason;
}

void JoinDriver::Abort() {
  if (fetch_ != nullptr) {
    fetch_->Abandon();
    fetch_.reset();
  }
  ++retry_generation_;
  if (phase_ != JoinPhase::kFailed) {
    EnterPhase(JoinPhase::kFailed);
  }
}

void JoinDriver::HoldPhase(JoinPhase phase, bool hold) {
  if (hold) {
    held_.insert(phase);
    return;
  }
  held_.erase(phase);
  if (held_at_ != phase) {
    return;
  }
  held_at_ = JoinPhase::kNone;
  switch (phase) {
    case JoinPhase::kImage:
      MaybeRequestImage();
      break;
    case JoinPhase::kIncorporate:
      MaybeIncorporate();
      break;
    case JoinPhase::kFlush:
      SendJoinComplete();
      break;
    default:
      break;
  }
}

JoinProgress JoinDriver::progress() const {
  JoinProgress progress;
  progress.phase = phase_;
  progress.held_at = held_at_;
  progress.waiting = waiting_;
  progress.attempts = attempts_;
  progress.join_started_us = join_started_us_;
  progress.join_finished_us = join_finished_us_;
  const std::optional<Attempt>& attempt = attempt_ ? attempt_ : last_attempt_;
  if (attempt) {
    progress.provider = attempt->provider_name;
    progress.join_id = attempt->join_id;
    progress.image_entries = attempt->entries;
    progress.image_bytes = attempt->bytes;
    progress.image_entries_estimate = attempt->entries_estimate;
    progress.image_started_us = attempt->image_started_us;
    progress.image_finished_us = attempt->image_finished_us;
  }
  return progress;
}

}  // namespace weft::replication
