// MemNetwork: several RegionReplicators connected by an in-memory network on one thread, with
// an in-process registry whose callbacks the network delivers itself. Delivery happens only in
// Step()/Run(), one channel action at a time, in an order drawn from a seeded Random, so a test
// is a deterministic interleaving of writes and protocol steps that a seed replays exactly.
// The deterministic simulator (tests/sim) grows from this.
//
// Not thread-safe: one test thread drives everything.
#pragma once

#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <tuple>
#include <vector>

#include "weft/base/clock.h"
#include "weft/base/random.h"
#include "weft/membership/in_process_registry.h"
#include "weft/replication/replicator.h"
#include "weft/storage/store.h"
#include "weft/storage/version.h"

namespace weft::replication::testing {

// Records every event with owned strings, for the consumer-seam checks.
struct RecordedEvent {
  std::string key;
  std::optional<std::string> old_value;
  std::optional<std::string> new_value;
  storage::Version version;
};

class RecordingConsumer : public ChangeConsumer {
 public:
  void OnChange(const ChangeEvent& event) override;
  std::vector<RecordedEvent> events;
};

class MemNetwork;

class MemMember : public Outlet {
 public:
  MemMember(MemNetwork& network, std::string name, uint64_t id, ReplicatorOptions options,
            uint64_t seed);
  ~MemMember() override;

  // Outlet
  void WakeLane(const membership::MemberInfo& peer, uint32_t lane) override;
  void OpenImage(const membership::MemberInfo& provider, uint64_t join_id,
                 std::string request) override;
  void DropPeer(uint64_t member_id) override;

  // A client write on this member (as a command would make it).
  void Set(std::string_view key, std::string_view value);
  void Delete(std::string_view key);
  std::optional<std::string> Get(std::string_view key);

  RegionReplicator& replicator() { return *replicator_; }
  storage::Store& store() { return store_; }
  RecordingConsumer& consumer() { return consumer_; }
  uint64_t id() const { return id_; }
  const std::string& name() const { return name_; }

 private:
  friend class MemNetwork;
  MemNetwork& network_;
  const std::string name_;
  const uint64_t id_;
  storage::Store store_;
  storage::VersionSource versions_;
  Random random_;
  RecordingConsumer consumer_;
  std::unique_ptr<membership::InProcessRegistry> registry_;
  std::unique_ptr<membership::WatchHandle> watch_;
  std::unique_ptr<RegionReplicator> replicator_;
};

class MemNetwork {
 public:
  explicit MemNetwork(uint64_t seed);
  ~MemNetwork();

  // Adds a member and starts it (it bootstraps or begins to join).
  MemMember& AddMember(std::string name, ReplicatorOptions options = {});
  // kill -9: the member stops; its lease expires at once.
  void Crash(MemMember& member);
  // The registry expires the member's lease while it runs on (a long stall, or a partition from
  // the registry): the others drop it; it learns from its group view.
  void ExpireLease(MemMember& member);

  // One delivery action chosen at random among the pending ones; false if nothing is pending.
  bool Step();
  // Steps until nothing is pending (bounded; fails the test if the bound is hit).
  void Run(int max_steps = 1'000'000);

  // While held, nothing is delivered on (from -> to, lane).
  void HoldLane(const MemMember& from, const MemMember& to, uint32_t lane, bool hold);

  ManualClock& clock() { return clock_; }
  Random& random() { return random_; }
  std::vector<MemMember*> members();

 private:
  friend class MemMember;
  using LaneKey = std::tuple<uint64_t, uint64_t, uint32_t>;  // from, to, lane

  struct Image {
    uint64_t joiner;
    uint64_t provider;
    uint64_t join_id;
    std::string request;
    std::shared_ptr<ImageSender> sender;
    bool finished = false;
  };

  MemMember* Find(uint64_t id);
  bool DeliverLane(const LaneKey& key);
  bool DeliverImage(Image& image);

  ManualClock clock_;
  Random random_;
  membership::InProcessRegistryHub hub_;
  std::deque<std::function<void()>> registry_callbacks_;
  std::vector<std::unique_ptr<MemMember>> members_;
  std::set<LaneKey> opened_;
  std::set<LaneKey> to_open_;
  std::set<LaneKey> held_;
  std::vector<std::unique_ptr<Image>> images_;
  uint64_t next_id_ = 0x1000;
};

}  // namespace weft::replication::testing
