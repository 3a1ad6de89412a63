// ServerState: everything commands share across connections — the regions' stores, runtime
// settings, statistics and the client registry — without any I/O.
//
// Keeping this free of sockets and threads lets the command handlers run in unit tests against
// a ManualClock, and lets the network layer (server.h) stay a thin shell around it.
//
// Thread safety: safe from any thread. Databases synchronise through their stores' shard locks;
// statistics are relaxed atomics; settings are RuntimeSettings (atomics and a mutex).
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"

#include "weft/base/clock.h"
#include "weft/base/mutex.h"
#include "weft/base/random.h"
#include "weft/base/status.h"
#include "weft/replication/replicator.h"
#include "weft/server/client_registry.h"
#include "weft/server/config.h"
#include "weft/server/event_log.h"
#include "weft/storage/store.h"
#include "weft/storage/version.h"

namespace weft::server {

// One region as clients see it: its store and the source of versions for local writes.
class Database {
 public:
  // `clustered`: the member was started with a registry (the region waits for its replicator).
  Database(const RegionConfig& region, const storage::StoreOptions& options, const Clock& clock,
           uint64_t origin, bool clustered = false);

  const RegionConfig& region() const { return region_; }
  storage::Store& store() { return store_; }
  storage::VersionSource& versions() { return versions_; }

  // The region's replicator once the member joined a cluster; null when standalone.
  replication::RegionReplicator* replicator() const {
    return replicator_.load(std::memory_order_acquire);
  }
  void set_replicator(replication::RegionReplicator* replicator) {
    replicator_.store(replicator, std::memory_order_release);
  }
  // Whether clients may use the region: standalone, or ACTIVE in its group (DESIGN §5: until a
  // joining member holds a complete copy, clients get -LOADING). A member configured with a
  // registry is not standalone even before its cluster starts: it serves nothing until then,
  // or writes taken meanwhile would never replicate.
  bool serving() const {
    const replication::RegionReplicator* replicator = this->replicator();
    return replicator != nullptr ? replicator->serving() : !clustered_;
  }
  bool clustered() const { return clustered_; }

  // The test consumer of change events (--debug-event-log), or null.
  EventLog* event_log() const { return event_log_.get(); }
  void EnableEventLog(size_t capacity) { event_log_ = std::make_unique<EventLog>(capacity); }

 private:
  const RegionConfig region_;
  storage::Store store_;
  storage::VersionSource versions_;
  std::atomic<replication::RegionReplicator*> replicator_{nullptr};
  const bool clustered_;
  std::unique_ptr<EventLog> event_log_;
};

// Test hooks that live in the transport rather than in the protocol (DEBUG HOLD-LANE); the
// Cluster installs them while it runs.
class ClusterDebugHooks {
 public:
  virtual ~ClusterDebugHooks() = default;
  // Stops (or resumes) reading the inbound lane that carries `key` from the member named
  // `member`, so that its changes wait in the network while everything else flows.
  virtual Status HoldInboundLane(const Database& database, std::string_view member,
                                 std::string_view key, bool hold) = 0;
};

// Counters reported by INFO stats. Relaxed atomics: they are statistics, not synchronisation.
struct ServerStats {
  std::atomic<uint64_t> connections_received{0};
  std::atomic<uint64_t> connections_rejected{0};
  std::atomic<uint64_t> commands_processed{0};
  std::atomic<uint64_t> keyspace_hits{0};
  std::atomic<uint64_t> keyspace_misses{0};
  std::atomic<uint64_t> net_input_bytes{0};
  std::atomic<uint64_t> net_output_bytes{0};
  std::atomic<uint64_t> output_limit_disconnections{0};
  std::atomic<uint64_t> protocol_errors{0};
};

class ServerState {
 public:
  // `seed` feeds the member's Random (RANDOMKEY); weftd logs it so a run can be replayed.
  ServerState(const ServerConfig& config, const Clock& clock, uint64_t member_id,
              uint64_t seed = 1);

  const ServerConfig& config() const { return config_; }
  const Clock& clock() const { return clock_; }
  uint64_t member_id() const { return member_id_; }
  int64_t started_unix_ms() const { return started_unix_ms_; }

  size_t database_count() const { return databases_.size(); }
  // True once any region has a replicator (client writes may then wait for acknowledgements).
  bool replicated() const { return replicated_.load(std::memory_order_acquire); }
  void set_replicated() { replicated_.store(true, std::memory_order_release); }
  Database& database(size_t index) { return *databases_[index]; }

  RuntimeSettings& settings() { return settings_; }
  ServerStats& stats() { return stats_; }
  ClientRegistry& clients() { return clients_; }

  // The listening port as bound (the configured one may be 0 = any).
  int port() const { return port_.load(std::memory_order_relaxed); }
  void set_port(int port) { port_.store(port, std::memory_order_relaxed); }

  // SHUTDOWN asks the server to stop; the network layer installs the hook.
  void set_shutdown_hook(std::function<void()> hook) { shutdown_hook_ = std::move(hook); }
  void RequestShutdown() {
    if (shutdown_hook_)
      shutdown_hook_();
  }

  ClusterDebugHooks* cluster_debug_hooks() const {
    return cluster_debug_hooks_.load(std::memory_order_acquire);
  }
  void set_cluster_debug_hooks(ClusterDebugHooks* hooks) {
    cluster_debug_hooks_.store(hooks, std::memory_order_release);
  }

  // A uniformly drawn number from the member's seeded generator.
  uint64_t NextRandom();

  // Runs bounded active expiry on every region, the replicators' periodic work, and closes
  // clients idle longer than the `timeout` setting; called from the server's tick.
  void Tick();

 private:
  void CloseIdleClients();

  const ServerConfig config_;
  const Clock& clock_;
  const uint64_t member_id_;
  const int64_t started_unix_ms_;
  std::vector<std::unique_ptr<Database>> databases_;
  RuntimeSettings settings_;
  ServerStats stats_;
  ClientRegistry clients_;
  std::atomic<int> port_{0};
  std::atomic<bool> replicated_{false};
  std::atomic<ClusterDebugHooks*> cluster_debug_hooks_{nullptr};
  std::function<void()> shutdown_hook_;
  Mutex random_mutex_;
  Random random_ ABSL_GUARDED_BY(random_mutex_);
};

}  // namespace weft::server
