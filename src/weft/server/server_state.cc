#include "weft/server/server_state.h"

namespace weft::server {

Database::Database(const RegionConfig& region, const storage::StoreOptions& options,
                   const Clock& clock, uint64_t origin, bool clustered)
    : region_(region), store_(options, clock), versions_(clock, origin), clustered_(clustered) {}

ServerState::ServerState(const ServerConfig& config, const Clock& clock, uint64_t member_id,
                         uint64_t seed)
    : config_(config),
      clock_(clock),
      member_id_(member_id),
      started_unix_ms_(clock.NowUnixMs()),
      random_(seed) {
  storage::StoreOptions options;
  options.shard_count = config.shard_count;
  for (const RegionConfig& region : config.regions) {
    databases_.push_back(
        std::make_unique<Database>(region, options, clock, member_id, !config.registry.empty()));
    if (config.debug_event_log > 0) {
      databases_.back()->EnableEventLog(static_cast<size_t>(config.debug_event_log));
    }
  }
  if (!config.requirepass.empty()) {
    (void)settings_.Set("requirepass", config.requirepass);
  }
  (void)settings_.Set("maxclients", std::to_string(config.maxclients));
  settings_.SetFixed("bind", config.bind);
  settings_.SetFixed("io-threads", std::to_string(config.io_threads));
  settings_.SetFixed("databases", std::to_string(config.regions.size()));
}

uint64_t ServerState::NextRandom() {
  MutexLock lock(&random_mutex_);
  return random_.Next();
}

void ServerState::CloseIdleClients() {
  const int64_t timeout_s = settings_.idle_timeout_seconds();
  if (timeout_s <= 0)
    return;
  const int64_t now_ms = clock_.NowUnixMs();
  for (const auto& session : clients_.Snapshot()) {
    if (now_ms - session->last_interaction_unix_ms() > timeout_s * 1000)
      session->RequestClose();
  }
}

void ServerState::Tick() {
  CloseIdleClients();
  if (!settings_.active_expire_enabled())
    return;
  // Redis examines 20 keys per loop and repeats while >25% were expired; a fixed budget per
  // tick keeps the cost per tick bounded and predictable instead.
  constexpr size_t kKeysPerTickMax = 2000;
  for (auto& database : databases_)
    database->store().ActiveExpireCycle(kKeysPerTickMax);
}

}  // namespace weft::server
