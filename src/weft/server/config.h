// Member configuration: what `weftd` is told at start (flags, optional TOML file) and the subset
// that `CONFIG GET` / `CONFIG SET` read and change at run time.
//
// Settings that connections consult on every request (limits) are atomics so that CONFIG SET on
// one I/O thread is seen by the others without a lock. Everything else is fixed at start.
//
// Thread safety: ServerConfig's fixed fields are immutable after start. RuntimeSettings is safe
// from any thread.
#pragma once

#include <atomic>
#include <cstdint>
#include <mutex>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"

#include "weft/base/mutex.h"
#include "weft/base/status.h"

namespace weft::server {

// Redis's client-output-buffer-limit for normal clients: disconnect when the pending output
// exceeds `hard_bytes`, or has stayed above `soft_bytes` for `soft_seconds`. 0 disables a limit.
struct OutputBufferLimit {
  int64_t hard_bytes = 0;
  int64_t soft_bytes = 0;
  int64_t soft_seconds = 0;
};

class RuntimeSettings {
 public:
  RuntimeSettings();

  int64_t proto_max_bulk_len() const { return proto_max_bulk_len_.load(std::memory_order_relaxed); }
  int64_t client_query_buffer_limit() const {
    return client_query_buffer_limit_.load(std::memory_order_relaxed);
  }
  int64_t maxclients() const { return maxclients_.load(std::memory_order_relaxed); }
  int64_t idle_timeout_seconds() const { return timeout_seconds_.load(std::memory_order_relaxed); }
  int64_t hz() const { return hz_.load(std::memory_order_relaxed); }
  OutputBufferLimit output_buffer_limit() const {
    return {output_hard_bytes_.load(std::memory_order_relaxed),
            output_soft_bytes_.load(std::memory_order_relaxed),
            output_soft_seconds_.load(std::memory_order_relaxed)};
  }
  bool active_expire_enabled() const { return active_expire_.load(std::memory_order_relaxed); }
  void set_active_expire_enabled(bool on) { active_expire_.store(on, std::memory_order_relaxed); }

  std::string requirepass() const;
  bool auth_required() const { return auth_required_.load(std::memory_order_relaxed); }

  // CONFIG GET: appends (name, value) pairs of every parameter matching the glob `pattern`
  // (case-insensitive), each once, in table order.
  void Get(std::string_view pattern, std::vector<std::pair<std::string, std::string>>* out) const;

  // CONFIG SET one parameter. On failure returns InvalidArgument with the reason Redis gives,
  // for example "argument couldn't be parsed into an integer" or "Unknown option or number of
  // arguments for CONFIG SET - 'foo'" (NotFound for the latter).
  Status Set(std::string_view name, std::string_view value);

  // Fixed parameters reported by CONFIG GET but not settable (port, bind, ...).
  void SetFixed(std::string name, std::string value);

 private:
  struct Parameter;
  const Parameter* Find(std::string_view name) const;
  std::string Read(const Parameter& parameter) const;

  std::atomic<int64_t> proto_max_bulk_len_{512LL * 1024 * 1024};
  std::atomic<int64_t> client_query_buffer_limit_{1024LL * 1024 * 1024};
  std::atomic<int64_t> maxclients_{10000};
  std::atomic<int64_t> timeout_seconds_{0};
  std::atomic<int64_t> hz_{10};
  // Unlike Redis (no limit for normal clients), weft bounds every client's output by default:
  // a client that never reads cannot make the member grow without bound.
  std::atomic<int64_t> output_hard_bytes_{256LL * 1024 * 1024};
  std::atomic<int64_t> output_soft_bytes_{64LL * 1024 * 1024};
  std::atomic<int64_t> output_soft_seconds_{60};
  std::atomic<bool> active_expire_{true};
  std::atomic<bool> auth_required_{false};

  mutable Mutex mutex_;
  std::string requirepass_ ABSL_GUARDED_BY(mutex_);
  std::vector<std::pair<std::string, std::string>> fixed_ ABSL_GUARDED_BY(mutex_);
  // CONFIG SET of parameters weft accepts for compatibility but does not act on (for example
  // `save` or `appendonly`): remembered so that CONFIG GET returns what was set.
  std::vector<std::pair<std::string, std::string>> accepted_ ABSL_GUARDED_BY(mutex_);
};

struct RegionConfig {
  std::string name;
  bool sync = true;
};

// Everything weftd is started with.
struct ServerConfig {
  std::string bind = "127.0.0.1";
  int port = 6379;
  int io_threads = 0;  // 0 = number of cores
  std::string name;
  std::string requirepass;
  std::string loglevel = "info";
  std::vector<RegionConfig> regions;  // empty = one region named "default"
  size_t shard_count = 1024;
  int64_t maxclients = 10000;
  uint64_t seed = 0;  // 0 = from the OS

  // Cluster membership (DESIGN §8). Without a registry the member is standalone: its regions are
  // ACTIVE at once and replicate nowhere.
  std::string registry;          // "", "inprocess" (tests, demo) or "etcd://host:port"
  std::string cluster = "weft";  // registry key prefix and handshake cluster name
  std::string peer_bind;         // empty: same as bind
  int peer_port = 0;             // 0 = any free port
  std::string secret_file;       // cluster secret; required with a registry
  std::string secret;            // its contents (loaded by ParseCommandLine)
  uint32_t lanes = 2;            // channels per peer pair per region
  std::string provider;          // preferred provider's name when joining
  int64_t image_rate_limit = 0;  // bytes/s, 0 = unlimited
  int64_t peer_backlog_limit = int64_t{1} << 30;  // per peer lane; past it the peer is expelled
  int64_t lease_ttl_seconds = 5;                  // registry lease of this member
  int64_t peer_timeout_seconds = 60;  // a peer acknowledging nothing this long is expelled

  // Test hooks (DEBUG HOLD-PHASE, HOLD-LANE, EVENTS). Off by default, as Redis's
  // enable-debug-command: they can stall replication on purpose.
  bool enable_debug_command = false;
  std::string debug_hold_phase;  // a join phase to hold from the start (needs the above)
  int64_t debug_event_log = 0;   // change events to record for DEBUG EVENTS (needs the above)
};

// Parses weftd's command line (and the TOML file given by --config; flags win).
// On --help or a bad flag returns an error whose message is the text to print; `exit_code`
// receives what the process should exit with.
StatusOr<ServerConfig> ParseCommandLine(int argc, char** argv, int* exit_code);

// Parses "name" or "name:sync" / "name:async".
StatusOr<RegionConfig> ParseRegion(std::string_view text);

// Parses Redis memory units: "64mb", "1gb", "100k", "12345". Returns nullopt-like error.
StatusOr<int64_t> ParseMemory(std::string_view text);

}  // namespace weft::server
