#include "weft/server/config.h"

#include <algorithm>
#include <cctype>
#include <charconv>
#include <fstream>
#include <iterator>
#include <thread>

#include "weft/base/glob.h"
#include "weft/base/strings.h"

#include <CLI/CLI.hpp>
#include <toml++/toml.h>

namespace weft::server {

StatusOr<int64_t> ParseMemory(std::string_view text) {
  std::string lower = AsciiLower(text);
  int64_t multiplier = 1;
  const std::pair<std::string_view, int64_t> units[] = {
      {"gb", 1LL << 30},    {"mb", 1LL << 20}, {"kb", 1LL << 10}, {"g", 1000LL * 1000 * 1000},
      {"m", 1000LL * 1000}, {"k", 1000},       {"b", 1}};
  for (const auto& [suffix, factor] : units) {
    if (lower.size() > suffix.size() && lower.ends_with(suffix)) {
      multiplier = factor;
      lower.resize(lower.size() - suffix.size());
      break;
    }
  }
  int64_t value = 0;
  const auto [end, error] = std::from_chars(lower.data(), lower.data() + lower.size(), value);
  if (error != std::errc() || end != lower.data() + lower.size() || value < 0 ||
      value > INT64_MAX / multiplier) {
    return absl::InvalidArgumentError("argument must be a memory value");
  }
  return value * multiplier;
}

// One CONFIG parameter: how to read it and, if settable, how to change it.
struct RuntimeSettings::Parameter {
  std::string_view name;
  std::string (*read)(const RuntimeSettings&);
  Status (*write)(RuntimeSettings&, std::string_view);  // nullptr: read-only
};

namespace {

bool ParseInteger(std::string_view text, int64_t* value) {
  const auto [end, error] = std::from_chars(text.data(), text.data() + text.size(), *value);
  return error == std::errc() && end == text.data() + text.size() && !text.empty();
}

Status SetInteger(std::atomic<int64_t>& target, std::string_view value, int64_t min, int64_t max) {
  int64_t parsed = 0;
  if (!ParseInteger(value, &parsed)) {
    return absl::InvalidArgumentError("argument couldn't be parsed into an integer");
  }
  if (parsed < min || parsed > max) {
    return absl::InvalidArgumentError(
        StrCat("argument must be between ", min, " and ", max, " inclusive"));
  }
  target.store(parsed, std::memory_order_relaxed);
  return absl::OkStatus();
}

Status SetMemory(std::atomic<int64_t>& target, std::string_view value, int64_t min) {
  StatusOr<int64_t> parsed = ParseMemory(value);
  if (!parsed.ok())
    return parsed.status();
  if (*parsed < min) {
    return absl::InvalidArgumentError(StrCat("argument must be at least ", min));
  }
  target.store(*parsed, std::memory_order_relaxed);
  return absl::OkStatus();
}

}  // namespace

RuntimeSettings::RuntimeSettings() {
  // What Redis tools (redis-benchmark among them) ask for at start: no persistence.
  accepted_ = {{"save", ""}, {"appendonly", "no"}};
}

const RuntimeSettings::Parameter* RuntimeSettings::Find(std::string_view name) const {
  static constexpr Parameter kParameters[] = {
      {"proto-max-bulk-len",
       [](const RuntimeSettings& s) { return std::to_string(s.proto_max_bulk_len()); },
       [](RuntimeSettings& s, std::string_view v) {
         return SetMemory(s.proto_max_bulk_len_, v, 1024 * 1024);
       }},
      {"client-query-buffer-limit",
       [](const RuntimeSettings& s) { return std::to_string(s.client_query_buffer_limit()); },
       [](RuntimeSettings& s, std::string_view v) {
         return SetMemory(s.client_query_buffer_limit_, v, 1024 * 1024);
       }},
      {"maxclients", [](const RuntimeSettings& s) { return std::to_string(s.maxclients()); },
       [](RuntimeSettings& s, std::string_view v) {
         return SetInteger(s.maxclients_, v, 1, INT32_MAX);
       }},
      {"timeout", [](const RuntimeSettings& s) { return std::to_string(s.idle_timeout_seconds()); },
       [](RuntimeSettings& s, std::string_view v) {
         return SetInteger(s.timeout_seconds_, v, 0, INT32_MAX);
       }},
      {"hz", [](const RuntimeSettings& s) { return std::to_string(s.hz()); },
       [](RuntimeSettings& s, std::string_view v) {
         return SetInteger(s.hz_, v, 1, 500);
       }},
      {"client-output-buffer-limit",
       [](const RuntimeSettings& s) {
         const OutputBufferLimit limit = s.output_buffer_limit();
         return StrCat("normal ", limit.hard_bytes, " ", limit.soft_bytes, " ", limit.soft_seconds,
                       " replica 0 0 0 pubsub 0 0 0");
       },
       [](RuntimeSettings& s, std::string_view v) -> Status {
         // Redis takes groups of four: <class> <hard> <soft> <seconds>. weft has only normal
         // clients; the other classes are accepted and ignored.
         std::vector<std::string_view> words = SplitSkipEmpty(v, ' ');
         if (words.empty() || words.size() % 4 != 0) {
           return absl::InvalidArgumentError(
               "Wrong number of arguments in buffer limit configuration.");
         }
         for (size_t i = 0; i < words.size(); i += 4) {
           const std::string cls = AsciiLower(words[i]);
           if (cls != "normal" && cls != "replica" && cls != "slave" && cls != "pubsub") {
             return absl::InvalidArgumentError(
                 "Invalid client class specified in buffer limit configuration.");
           }
           StatusOr<int64_t> hard = ParseMemory(words[i + 1]);
           StatusOr<int64_t> soft = ParseMemory(words[i + 2]);
           int64_t seconds = 0;
           if (!hard.ok() || !soft.ok() || !ParseInteger(words[i + 3], &seconds) || seconds < 0) {
             return absl::InvalidArgumentError(
                 "Error in hard, soft or soft_seconds setting in buffer limit configuration.");
           }
           if (cls == "normal") {
             s.output_hard_bytes_.store(*hard, std::memory_order_relaxed);
             s.output_soft_bytes_.store(*soft, std::memory_order_relaxed);
             s.output_soft_seconds_.store(seconds, std::memory_order_relaxed);
           }
         }
         return absl::OkStatus();
       }},
      {"requirepass", [](const RuntimeSettings& s) { return s.requirepass(); },
       [](RuntimeSettings& s, std::string_view v) {
         MutexLock lock(&s.mutex_);
         s.requirepass_ = std::string(v);
         s.auth_required_.store(!v.empty(), std::memory_order_relaxed);
         return absl::OkStatus();
       }},
  };
  for (const Parameter& parameter : kParameters) {
    if (EqualsIgnoreCase(parameter.name, name))
      return &parameter;
  }
  return nullptr;
}

std::string RuntimeSettings::requirepass() const {
  MutexLock lock(&mutex_);
  return requirepass_;
}

std::string RuntimeSettings::Read(const Parameter& parameter) const {
  return parameter.read(*this);
}

void RuntimeSettings::Get(std::string_view pattern,
                          std::vector<std::pair<std::string, std::string>>* out) const {
  auto seen = [&](std::string_view name) {
    return std::any_of(out->begin(), out->end(), [&](const auto& kv) { return kv.first == name; });
  };
  for (std::string_view name : {"proto-max-bulk-len", "client-query-buffer-limit", "maxclients",
                                "timeout", "hz", "client-output-buffer-limit", "requirepass"}) {
    if (GlobMatch(pattern, name, true) && !seen(name)) {
      out->emplace_back(std::string(name), Read(*Find(name)));
    }
  }
  MutexLock lock(&mutex_);
  for (const auto* list : {&fixed_, &accepted_}) {
    for (const auto& [name, value] : *list) {
      if (GlobMatch(pattern, name, true) && !seen(name))
        out->emplace_back(name, value);
    }
  }
}

Status RuntimeSettings::Set(std::string_view name, std::string_view value) {
  const std::string lower = AsciiLower(name);
  if (const Parameter* parameter = Find(lower))
    return parameter->write(*this, value);
  MutexLock lock(&mutex_);
  for (const auto& [fixed_name, fixed_value] : fixed_) {
    if (fixed_name == lower) {
      return absl::FailedPreconditionError("can't set immutable config");
    }
  }
  // Persistence and eviction knobs that Redis tools routinely set: weft has neither
  // persistence nor eviction, so these are accepted, remembered, and have no effect.
  static constexpr std::string_view kAccepted[] = {"save",
                                                   "appendonly",
                                                   "appendfsync",
                                                   "maxmemory",
                                                   "maxmemory-policy",
                                                   "lazyfree-lazy-user-del",
                                                   "lazyfree-lazy-server-del",
                                                   "lazyfree-lazy-expire",
                                                   "lazyfree-lazy-user-flush",
                                                   "latency-tracking",
                                                   "slowlog-log-slower-than",
                                                   "slowlog-max-len",
                                                   "notify-keyspace-events",
                                                   "list-max-listpack-size",
                                                   "set-max-intset-entries",
                                                   "hash-max-listpack-entries",
                                                   "zset-max-listpack-entries",
                                                   "activedefrag",
                                                   "busy-reply-threshold",
                                                   "lua-time-limit",
                                                   "loglevel"};
  for (std::string_view accepted : kAccepted) {
    if (accepted == lower) {
      for (auto& [accepted_name, accepted_value] : accepted_) {
        if (accepted_name == lower) {
          accepted_value = std::string(value);
          return absl::OkStatus();
        }
      }
      accepted_.emplace_back(lower, std::string(value));
      return absl::OkStatus();
    }
  }
  return absl::NotFoundError(
      StrCat("Unknown option or number of arguments for CONFIG SET - '", name, "'"));
}

void RuntimeSettings::SetFixed(std::string name, std::string value) {
  MutexLock lock(&mutex_);
  fixed_.emplace_back(std::move(name), std::move(value));
}

StatusOr<RegionConfig> ParseRegion(std::string_view text) {
  RegionConfig region;
  const size_t colon = text.find(':');
  region.name = std::string(text.substr(0, colon));
  if (region.name.empty())
    return absl::InvalidArgumentError("region name is empty");
  if (colon != std::string_view::npos) {
    const std::string_view mode = text.substr(colon + 1);
    if (mode == "sync") {
      region.sync = true;
    } else if (mode == "async") {
      region.sync = false;
    } else {
      return absl::InvalidArgumentError(
          StrCat("region '", region.name, "': mode must be sync or async, not '", mode, "'"));
    }
  }
  return region;
}

namespace {

Status ApplyTomlFile(const std::string& path, ServerConfig* config) {
  toml::table table;
  try {
    table = toml::parse_file(path);
  } catch (const toml::parse_error& error) {
    return absl::InvalidArgumentError(StrCat("config file ", path, ": ", error.what()));
  }
  if (auto v = table["bind"].value<std::string>())
    config->bind = *v;
  if (auto v = table["port"].value<int64_t>())
    config->port = static_cast<int>(*v);
  if (auto v = table["io-threads"].value<int64_t>())
    config->io_threads = static_cast<int>(*v);
  if (auto v = table["name"].value<std::string>())
    config->name = *v;
  if (auto v = table["requirepass"].value<std::string>())
    config->requirepass = *v;
  if (auto v = table["loglevel"].value<std::string>())
    config->loglevel = *v;
  if (auto v = table["maxclients"].value<int64_t>())
    config->maxclients = *v;
  if (auto v = table["shards"].value<int64_t>())
    config->shard_count = static_cast<size_t>(*v);
  if (auto v = table["registry"].value<std::string>())
    config->registry = *v;
  if (auto v = table["cluster"].value<std::string>())
    config->cluster = *v;
  if (auto v = table["peer-bind"].value<std::string>())
    config->peer_bind = *v;
  if (auto v = table["peer-port"].value<int64_t>())
    config->peer_port = static_cast<int>(*v);
  if (auto v = table["secret-file"].value<std::string>())
    config->secret_file = *v;
  if (auto v = table["lanes"].value<int64_t>())
    config->lanes = static_cast<uint32_t>(*v);
  if (auto v = table["provider"].value<std::string>())
    config->provider = *v;
  if (auto v = table["image-rate-limit"].value<std::string>()) {
    WEFT_ASSIGN_OR_RETURN(config->image_rate_limit, ParseMemory(*v));
  }
  if (auto v = table["peer-backlog-limit"].value<std::string>()) {
    WEFT_ASSIGN_OR_RETURN(config->peer_backlog_limit, ParseMemory(*v));
  }
  if (auto v = table["peer-timeout"].value<int64_t>())
    config->peer_timeout_seconds = *v;
  if (auto v = table["lease-ttl"].value<int64_t>())
    config->lease_ttl_seconds = *v;
  if (const toml::array* regions = table["region"].as_array()) {
    for (const toml::node& node : *regions) {
      const std::optional<std::string> text = node.value<std::string>();
      if (!text)
        return absl::InvalidArgumentError("config: region entries must be strings");
      WEFT_ASSIGN_OR_RETURN(RegionConfig region, ParseRegion(*text));
      config->regions.push_back(std::move(region));
    }
  }
  return absl::OkStatus();
}

}  // namespace

// The value of --config (either "--config FILE" or "--config=FILE"), or empty. Found before
// the real parse so that the file can provide defaults that the flags then override.
std::string FindConfigFile(int argc, char** argv) {
  for (int i = 1; i < argc; ++i) {
    const std::string_view arg = argv[i];
    if (arg == "--config" && i + 1 < argc)
      return argv[i + 1];
    if (arg.starts_with("--config="))
      return std::string(arg.substr(9));
  }
  return "";
}

StatusOr<ServerConfig> ParseCommandLine(int argc, char** argv, int* exit_code) {
  ServerConfig config;
  *exit_code = 2;
  std::string config_file = FindConfigFile(argc, argv);
  if (!config_file.empty())
    WEFT_RETURN_IF_ERROR(ApplyTomlFile(config_file, &config));

  // Every option writes straight into `config`, over what the file set: flags win.
  CLI::App app("weftd: a member of a weft cluster (speaks the Redis protocol)", "weftd");
  std::vector<std::string> regions;
  app.add_option("--config", config_file, "TOML config file; flags given here win");
  app.add_option("--bind", config.bind, "address to listen on for clients");
  app.add_option("--port", config.port, "client port (RESP)")->check(CLI::Range(0, 65535));
  app.add_option("--io-threads", config.io_threads, "I/O threads (0 = cores)")
      ->check(CLI::Range(0, 256));
  app.add_option("--name", config.name, "member name");
  app.add_option("--requirepass", config.requirepass, "password clients must AUTH with");
  app.add_option("--loglevel", config.loglevel, "debug|info|warning|error");
  app.add_option("--maxclients", config.maxclients, "client connection limit")
      ->check(CLI::Range(1, 1000000));
  app.add_option("--shards", config.shard_count, "store shards per region (power of two)");
  app.add_option("--region", regions, "region name[:sync|async] (repeatable)");
  app.add_option("--seed", config.seed, "random seed (0 = from the OS)");
  app.add_option("--registry", config.registry, "membership registry: etcd://host:port");
  app.add_option("--cluster", config.cluster, "cluster name (registry prefix, peer handshake)");
  app.add_option("--peer-bind", config.peer_bind, "address for peer connections (default --bind)");
  app.add_option("--peer-port", config.peer_port, "port for peer connections (0 = any)")
      ->check(CLI::Range(0, 65535));
  app.add_option("--secret-file", config.secret_file, "file holding the cluster secret");
  app.add_option("--lanes", config.lanes, "channels per peer pair and region")
      ->check(CLI::Range(1, 64));
  app.add_option("--provider", config.provider, "preferred provider's name when joining");
  std::string image_rate_limit;
  app.add_option("--image-rate-limit", image_rate_limit,
                 "cap on the image's bytes/s when this member provides (e.g. 200mb)");
  app.add_option("--peer-timeout", config.peer_timeout_seconds,
                 "seconds a peer may leave changes unacknowledged before it is expelled")
      ->check(CLI::Range(1, 86400));
  std::string peer_backlog_limit;
  app.add_option("--peer-backlog-limit", peer_backlog_limit,
                 "unacknowledged bytes per peer lane before that peer is expelled (default 1gb)");
  app.add_option("--lease-ttl", config.lease_ttl_seconds, "registry lease in seconds")
      ->check(CLI::Range(2, 600));
  app.add_flag("--enable-debug-command", config.enable_debug_command,
               "allow the DEBUG subcommands that hold replication (tests)");
  app.add_option("--debug-hold-phase", config.debug_hold_phase,
                 "hold the join before this phase until DEBUG HOLD-PHASE releases it (tests)")
      ->check(CLI::IsMember({"image", "incorporate", "flush"}));
  app.add_option("--debug-event-log", config.debug_event_log,
                 "record up to N change events for DEBUG EVENTS (tests)")
      ->check(CLI::Range(int64_t{0}, int64_t{100'000'000}));
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& error) {
    std::ostringstream text;
    *exit_code = app.exit(error, text, text);
    return absl::InvalidArgumentError(text.str());
  }
  if (!regions.empty())
    config.regions.clear();
  for (const std::string& text : regions) {
    StatusOr<RegionConfig> parsed = ParseRegion(text);
    if (!parsed.ok()) {
      *exit_code = 2;
      return parsed.status();
    }
    config.regions.push_back(*std::move(parsed));
  }
  if (config.shard_count == 0 || (config.shard_count & (config.shard_count - 1)) != 0) {
    *exit_code = 2;
    return absl::InvalidArgumentError("--shards must be a power of two");
  }
  if (config.regions.empty())
    config.regions.push_back({"default", true});
  if (!image_rate_limit.empty()) {
    StatusOr<int64_t> limit = ParseMemory(image_rate_limit);
    if (!limit.ok()) {
      *exit_code = 2;
      return absl::InvalidArgumentError(StrCat("--image-rate-limit: ", limit.status().message()));
    }
    config.image_rate_limit = *limit;
  }
  if (config.peer_timeout_seconds <= config.lease_ttl_seconds) {
    // A crashed member must leave by its lease before anyone expels it for silence.
    *exit_code = 2;
    return absl::InvalidArgumentError(StrCat("--peer-timeout (", config.peer_timeout_seconds,
                                             " s) must be longer than "
                                             "--lease-ttl (",
                                             config.lease_ttl_seconds, " s)"));
  }
  if (!peer_backlog_limit.empty()) {
    StatusOr<int64_t> limit = ParseMemory(peer_backlog_limit);
    if (!limit.ok() || *limit < 4096) {
      *exit_code = 2;
      return absl::InvalidArgumentError(
          "--peer-backlog-limit must be a size of at least 4kb (e.g. 512mb)");
    }
    config.peer_backlog_limit = *limit;
  }
  if (!config.registry.empty()) {
    if (config.registry != "inprocess" && !config.registry.starts_with("etcd://")) {
      *exit_code = 2;
      return absl::InvalidArgumentError(
          StrCat("--registry must be etcd://host:port, got '", config.registry, "'"));
    }
    if (config.secret_file.empty()) {
      *exit_code = 2;
      return absl::InvalidArgumentError(
          "--secret-file is required with --registry: members authenticate each other with it");
    }
    std::ifstream file(config.secret_file, std::ios::binary);
    if (!file) {
      *exit_code = 2;
      return absl::InvalidArgumentError(StrCat("cannot read --secret-file ", config.secret_file));
    }
    config.secret.assign(std::istreambuf_iterator<char>(file), std::istreambuf_iterator<char>());
    while (!config.secret.empty() &&
           (config.secret.back() == '\n' || config.secret.back() == '\r')) {
      config.secret.pop_back();
    }
    if (config.secret.size() < 16) {
      *exit_code = 2;
      return absl::InvalidArgumentError(
          StrCat("the cluster secret in ", config.secret_file, " is shorter than 16 bytes"));
    }
    if (config.name.empty()) {
      *exit_code = 2;
      return absl::InvalidArgumentError("--name is required with --registry");
    }
  }
  if (!config.enable_debug_command &&
      (!config.debug_hold_phase.empty() || config.debug_event_log > 0)) {
    *exit_code = 2;
    return absl::InvalidArgumentError(
        "--debug-hold-phase and --debug-event-log need --enable-debug-command");
  }
  if (config.io_threads == 0) {
    config.io_threads = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  }
  return config;
}

}  // namespace weft::server
