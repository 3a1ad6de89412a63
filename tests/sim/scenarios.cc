#include "tests/sim/scenarios.h"

#include <optional>

#include "weft/replication/messages.h"

#include <fmt/format.h>

namespace weft::sim {
namespace {

constexpr int64_t kMs = 1000;
constexpr int64_t kSecond = 1'000'000;

using replication::JoinPhase;

bool Serving(SimMember* member) {
  return member->alive() && member->replicator().serving() &&
         member->replicator().join().phase() == JoinPhase::kNone;
}

bool Holds(SimMember* member, const std::string& key) {
  return member->store().WithKey(
      key, [&](storage::LockedKeys& keys) { return keys.Find(key).has_value(); });
}

JoinPhase Phase(SimMember* member) {
  return member->replicator().join().phase();
}

SimPlan QuietPlan(uint64_t seed) {
  SimPlan plan;
  plan.seed = seed;
  plan.max_skew_ms = 0;
  plan.max_drift = 0;
  plan.delete_one_in = 0;  // scripted writes are SETs
  plan.expire_one_in = 0;
  return plan;
}

// Writes `count` distinct keys on `member`, one after the other, each waiting for its
// acknowledgement (bounded).
void WriteKeys(Simulation& sim, SimMember* member, const std::string& prefix, int count) {
  int acked = 0;
  for (int i = 0; i < count; ++i) {
    sim.Write(member, fmt::format("{}{}", prefix, i), false, [&acked](bool) { ++acked; });
  }
  sim.RunUntil([&] { return acked == count; }, 30 * kSecond);
}

SimMember* Founder(Simulation& sim) {
  SimMember* member = sim.StartMember();
  sim.RunUntil([&] { return Serving(member); }, 10 * kSecond);
  return member;
}

SimMember* Joined(Simulation& sim, const MemberTweaks& tweaks = {}) {
  SimMember* member = sim.StartMember(tweaks);
  sim.RunUntil([&] { return Serving(member); }, 30 * kSecond);
  return member;
}

// Holds `member`'s join in front of the image (it has stabilized) and waits until it is there.
bool HoldBeforeImage(Simulation& sim, SimMember* member) {
  member->replicator().HoldPhase(JoinPhase::kImage, true);
  return sim.RunUntil(
      [&] { return member->replicator().join().progress().held_at == JoinPhase::kImage; },
      10 * kSecond);
}

// A founder `a`, a member `b` joined from it, `keys` writes on `a`, and a joiner `n` of `a`
// held in front of its image (stabilized). Nullopt, with the run failed, if it never got there.
struct HeldJoin {
  SimMember* a;
  SimMember* b;
  SimMember* n;
};
std::optional<HeldJoin> StartHeldJoin(Simulation& sim, int keys) {
  SimMember* a = Founder(sim);
  SimMember* b = Joined(sim);
  WriteKeys(sim, a, "before", keys);
  SimMember* n = sim.StartMember(MemberTweaks{.preferred_provider = a->name()});
  if (!HoldBeforeImage(sim, n)) {
    sim.oracle().Fail("scenario: the joiner never stabilized");
    return std::nullopt;
  }
  return HeldJoin{a, b, n};
}

// Bug 3: the provider's own write after the cut reaches the joiner only through the image; the
// provider dies before its lanes deliver it. The joiner must remember the image entry and
// repair it to the others.
SimResult ProviderWriteOnlyInImage(Simulation& sim) {
  const std::optional<HeldJoin> join = StartHeldJoin(sim, 20);
  if (!join) {
    return sim.Finish(false);
  }
  SimMember* a = join->a;
  SimMember* b = join->b;
  SimMember* n = join->n;
  sim.network().CutLanes(a->id(), b->id(), 20 * kSecond);
  sim.network().CutLanes(a->id(), n->id(), 20 * kSecond);
  sim.Write(a, "only-in-image", false, [](bool) {});
  sim.loop().RunUntil(sim.loop().now_us() + 5 * kMs);
  n->replicator().HoldPhase(JoinPhase::kImage, false);
  sim.RunUntil(
      [&] {
        return Phase(n) == JoinPhase::kIncorporate || Phase(n) == JoinPhase::kFlush ||
               n->replicator().serving();
      },
      10 * kSecond);
  sim.Crash(a, /*restart=*/false);
  return sim.Finish(sim.Settle(60 * kSecond));
}

// Bug 6: a failed attempt's image chunks still queued on the worker must not land after the
// clear: the next attempt starts from an empty base store.
SimResult FailedAttemptChunksStayCleared(Simulation& sim) {
  SimMember* a = Founder(sim);
  WriteKeys(sim, a, "k", 1500);
  SimMember* n = sim.StartMember(MemberTweaks{.worker_piece_us = 5 * kMs});
  sim.RunUntil([&] { return n->replicator().join().progress().image_entries > 0; }, 10 * kSecond);
  sim.network().Reset(a->id(), n->id(), /*lanes=*/false, /*images=*/true);
  return sim.Finish(sim.Settle(60 * kSecond));
}

// Bug 7: a change made before the cut carries a newer version than a later live one (the
// later writer's clock is behind); the live one reaches the joiner only after incorporate. Its
// event comes, and then the newer change must come as the key's next event, before release.
SimResult PreCutChangeBeatsALaterLiveOne(Simulation& sim) {
  SimMember* a = sim.StartMember(MemberTweaks{.skew_ms = 0});
  sim.RunUntil([&] { return Serving(a); }, 10 * kSecond);
  SimMember* b = Joined(sim, MemberTweaks{.skew_ms = -400});
  WriteKeys(sim, a, "filler", 5);
  // a's change must not reach b before b writes (b's hybrid clock would move past it).
  sim.network().CutLanes(a->id(), b->id(), 2 * kSecond);
  sim.Write(a, "contested", false, [](bool) {});
  sim.loop().RunUntil(sim.loop().now_us() + 1 * kMs);
  SimMember* n = sim.StartMember(MemberTweaks{.preferred_provider = a->name()});
  if (!HoldBeforeImage(sim, n)) {
    sim.oracle().Fail("scenario: the joiner never stabilized");
    return sim.Finish(false);
  }
  // b's change is live (after the cut) but older by version (its clock is 400 ms behind); its
  // lane to the joiner holds it until the joiner is in its flush phase.
  sim.network().CutLanes(b->id(), n->id(), 2 * kSecond);
  sim.Write(b, "contested", false, [](bool) {});
  sim.loop().RunUntil(sim.loop().now_us() + 2 * kMs);
  n->replicator().HoldPhase(JoinPhase::kImage, false);
  sim.RunUntil([&] { return Phase(n) == JoinPhase::kFlush; }, 5 * kSecond);
  sim.network().Heal(b->id(), n->id());
  sim.network().Heal(a->id(), b->id());
  return sim.Finish(sim.Settle(60 * kSecond));
}

// Bug 2: a second joiner's intent reaches the first joiner while it releases its join; the
// release must not reinstall a recipient set without the second joiner.
SimResult SecondJoinerDuringRelease(Simulation& sim) {
  SimMember* a = Founder(sim);
  SimMember* n1 =
      sim.StartMember(MemberTweaks{.preferred_provider = a->name(), .reconcile_batch = 1});
  n1->replicator().HoldPhase(JoinPhase::kIncorporate, true);
  sim.RunUntil(
      [&] { return n1->replicator().join().progress().held_at == JoinPhase::kIncorporate; },
      10 * kSecond);
  // Many keys in n1's post-image store: its reconciles (one key a step) take a while.
  WriteKeys(sim, a, "during", 2000);
  n1->replicator().HoldPhase(JoinPhase::kIncorporate, false);
  sim.RunUntil([&] { return n1->replicator().join().releasing(); }, 20 * kSecond);
  SimMember* n2 = sim.StartMember(MemberTweaks{.preferred_provider = a->name()});
  n2->replicator().HoldPhase(JoinPhase::kIncorporate, true);
  sim.RunUntil([&] { return Phase(n1) == JoinPhase::kNone; }, 10 * kSecond);
  sim.RunUntil(
      [&] { return n2->replicator().join().progress().held_at == JoinPhase::kIncorporate; },
      10 * kSecond);
  // n1 writes after n2's image, while n2 is still joining: they reach n2 only on n1's lanes,
  // and n2 must get every one of them.
  WriteKeys(sim, n1, "after", 200);
  n2->replicator().HoldPhase(JoinPhase::kIncorporate, false);
  sim.RunUntil([&] { return Serving(n2); }, 30 * kSecond);
  WriteKeys(sim, n1, "later", 50);
  return sim.Finish(sim.Settle(60 * kSecond));
}

// Bug 11: only the joiner of a stabilized join may fetch its image.
class ImageProbe final : public replication::ChannelSession {
 public:
  explicit ImageProbe(std::string request) : request_(std::move(request)) {}
  void OnOpened(replication::Channel& channel) override {
    channel_ = &channel;
    channel.Send(static_cast<uint8_t>(replication::FrameType::kImageRequest), request_);
  }
  void OnFrame(uint8_t type, std::string_view payload) override {
    if (type == static_cast<uint8_t>(replication::FrameType::kImageChunk)) {
      ++chunks_;
    } else if (type == static_cast<uint8_t>(replication::FrameType::kImageRefused)) {
      refused_ = true;
    }
  }
  void OnClosed(const Status& reason) override { channel_ = nullptr; }
  void Close() {
    if (channel_ != nullptr) {
      std::exchange(channel_, nullptr)->Close();
    }
  }
  int chunks() const { return chunks_; }
  bool refused() const { return refused_; }

 private:
  const std::string request_;
  replication::Channel* channel_ = nullptr;
  int chunks_ = 0;
  bool refused_ = false;
};

SimResult ImageOnlyForItsJoiner(Simulation& sim) {
  SimMember* a = Founder(sim);
  SimMember* b = Joined(sim);
  WriteKeys(sim, a, "k", 50);
  SimMember* n = sim.StartMember(MemberTweaks{.preferred_provider = a->name()});
  if (!HoldBeforeImage(sim, n)) {
    sim.oracle().Fail("scenario: the joiner never stabilized");
    return sim.Finish(false);
  }
  replication::ImageRequest request;
  request.region = sim.region();
  request.joiner = n->id();  // b pretends to be the joiner
  request.join_id = n->replicator().join().progress().join_id;
  request.credit_bytes = 1 << 20;
  auto probe = std::make_shared<ImageProbe>(replication::EncodeImageRequest(request));
  sim.network().Dial(b->id(), a->id(), replication::ChannelKind::kImage, probe);
  sim.RunUntil([&] { return probe->refused() || probe->chunks() > 0; }, 2 * kSecond);
  if (probe->chunks() > 0) {
    sim.oracle().Fail(fmt::format("scenario: {} received {} chunk(s) of the image of {}'s join",
                                  b->name(), probe->chunks(), n->name()));
  } else if (!probe->refused()) {
    sim.oracle().Fail("scenario: the forged image request got no answer");
  }
  probe->Close();
  n->replicator().HoldPhase(JoinPhase::kImage, false);
  return sim.Finish(sim.Settle(60 * kSecond));
}

// Seed 989: a member comes back from a stall past its lease while the only other holder, which
// crashed meanwhile, is still listed ACTIVE (its lease has not run out). It must keep its copy
// and its holding, and re-form the group once that lease ends, with every acknowledged write.
SimResult RejoiningHolderReFormsBesideACrashedMember(Simulation& sim) {
  SimMember* a = Founder(sim);
  SimMember* b = Joined(sim);
  WriteKeys(sim, a, "k", 50);
  a->Stall(3 * kSecond);
  sim.loop().RunUntil(sim.loop().now_us() + 1'500 * kMs);
  b->Crash();  // for good: its lease ends about 2 s from now, after a is back
  if (!sim.RunUntil([&] { return a->replicator().rejoins() > 0; }, 10 * kSecond)) {
    sim.oracle().Fail("scenario: the stalled member never rejoined");
    return sim.Finish(false);
  }
  if (!sim.RunUntil([&] { return Serving(a); }, 30 * kSecond)) {
    sim.oracle().Fail(fmt::format("scenario: {} never served again after {}'s crash ({})",
                                  a->name(), b->name(), a->replicator().join().progress().waiting));
    return sim.Finish(false);
  }
  if (a->store().KeyCount() < 50) {
    sim.oracle().Fail(fmt::format("scenario: {} re-formed the group with {} of 50 keys", a->name(),
                                  a->store().KeyCount()));
  }
  return sim.Finish(sim.Settle(60 * kSecond));
}

// Seed 1624: a member cut off from the registry loses its lease and the others drop it, but it
// does not know yet and goes on taking async writes. Its lanes were clogged; when they clear it
// opens them again. Those late writes must reach nobody: the group settled without the member
// (its departure repair ran), and a member that applied them would hold what the others never
// will.
SimResult DroppedMembersLateStreamsAreRefused(Simulation& sim) {
  SimMember* a = Founder(sim);
  SimMember* b = Joined(sim);
  SimMember* c = Joined(sim);
  WriteKeys(sim, a, "k", 20);
  sim.registry().Cut(c->id(), 12 * kSecond);
  sim.network().CutLanes(c->id(), a->id(), 30 * kSecond);
  sim.network().CutLanes(c->id(), b->id(), 30 * kSecond);
  const auto dropped = [&](SimMember* member) {
    return member->replicator().peers().all().count(c->id()) == 0;
  };
  if (!sim.RunUntil([&] { return dropped(a) && dropped(b); }, 10 * kSecond)) {
    sim.oracle().Fail("scenario: the others never dropped the member cut off from the registry");
    return sim.Finish(false);
  }
  if (!c->replicator().serving()) {
    sim.oracle().Fail(fmt::format("scenario: {} stopped serving before its late writes ({})",
                                  c->name(), c->replicator().not_serving_reason()));
    return sim.Finish(false);
  }
  int acked = 0;
  for (int i = 0; i < 5; ++i) {
    sim.Write(c, fmt::format("late{}", i), false, [&acked](bool ok) { acked += ok ? 1 : 0; });
  }
  sim.loop().RunUntil(sim.loop().now_us() + 10 * kMs);
  sim.network().Heal(c->id(), b->id());  // c opens its lanes to b again
  sim.loop().RunUntil(sim.loop().now_us() + 3 * kSecond);
  for (int i = 0; i < 5; ++i) {
    if (Holds(b, fmt::format("late{}", i))) {
      sim.oracle().Fail(fmt::format("scenario: {} applied {}'s write late{} after dropping it",
                                    b->name(), c->name(), i));
      break;
    }
  }
  sim.network().Heal(c->id(), a->id());
  return sim.Finish(sim.Settle(60 * kSecond));
}

// Item 7's break `release-before-flush`: the joiner frees its event index only once every
// member's JoinFlush has come. b's write reaches the provider, and so the image, while b's lane
// to the joiner holds it back; a joiner that released without b's flush would apply the live
// copy afterwards, find it in its store already (the image's), and never report it.
SimResult ReleaseWaitsForEveryFlush(Simulation& sim) {
  const std::optional<HeldJoin> join = StartHeldJoin(sim, 5);
  if (!join) {
    return sim.Finish(false);
  }
  SimMember* a = join->a;
  SimMember* b = join->b;
  SimMember* n = join->n;
  sim.network().CutLanes(b->id(), n->id(), 3 * kSecond);
  sim.Write(b, "held-back", false, [](bool) {});
  sim.RunUntil([&] { return Holds(a, "held-back"); }, 1 * kSecond);
  n->replicator().HoldPhase(JoinPhase::kImage, false);
  if (!sim.RunUntil([&] { return Phase(n) == JoinPhase::kFlush || Serving(n); }, 10 * kSecond) ||
      !Holds(n, "held-back")) {
    sim.oracle().Fail("scenario: the image did not bring the held-back write");
    return sim.Finish(false);
  }
  return sim.Finish(sim.Settle(60 * kSecond));
}

struct Scenario {
  const char* name;
  const char* what;
  SimResult (*run)(Simulation&);
  replication::ReplicationMode mode = replication::ReplicationMode::kSync;
};

constexpr Scenario kScenarios[] = {
    {"provider-write-only-in-image",
     "bug 3: the provider's post-cut write reaches the joiner only through the image; the "
     "provider dies; the joiner repairs it",
     ProviderWriteOnlyInImage},
    {"failed-attempt-chunks-stay-cleared",
     "bug 6: chunks of a failed attempt queued on the worker never land after the clear",
     FailedAttemptChunksStayCleared},
    {"pre-cut-change-beats-a-later-live-one",
     "bug 7: a newer pre-cut change becomes the key's last event before the release",
     PreCutChangeBeatsALaterLiveOne},
    {"second-joiner-during-release",
     "bug 2: a second joiner's intent during the first joiner's release is kept",
     SecondJoinerDuringRelease},
    {"image-only-for-its-joiner",
     "bug 11: a member that is not the joiner cannot fetch the image of a stabilized join",
     ImageOnlyForItsJoiner},
    {"rejoining-holder-reforms-beside-a-crashed-member",
     "seed 989: a holder back from a stall, beside a crashed member still listed ACTIVE, keeps "
     "its copy and re-forms the group",
     RejoiningHolderReFormsBesideACrashedMember},
    {"dropped-members-late-streams-are-refused",
     "seed 1624: a member dropped from the group that does not know it yet opens its lanes "
     "again; nobody applies its late writes",
     DroppedMembersLateStreamsAreRefused, replication::ReplicationMode::kAsync},
    {"release-waits-for-every-flush",
     "break release-before-flush: a write the image brought whose live copy is held back "
     "still makes its event on the joiner",
     ReleaseWaitsForEveryFlush},
};

}  // namespace

std::vector<std::string> ScenarioNames() {
  std::vector<std::string> names;
  for (const Scenario& scenario : kScenarios) {
    names.emplace_back(scenario.name);
  }
  return names;
}

std::optional<SimResult> RunScenario(const std::string& name,
                                     const replication::ProtocolBreaks& breaks, bool verbose) {
  for (const Scenario& scenario : kScenarios) {
    if (name == scenario.name) {
      if (verbose) {
        fmt::print(stderr, "scenario {}: {}\n", scenario.name, scenario.what);
      }
      SimPlan plan = QuietPlan(1);
      plan.mode = scenario.mode;
      Simulation sim(plan, breaks, verbose);
      return scenario.run(sim);
    }
  }
  return std::nullopt;
}

}  // namespace weft::sim
