#include "weft/server/info.h"

#include <unistd.h>

#include <cstdio>
#include <fstream>

#include "weft/base/strings.h"
#include "weft/server/version.h"

#include <fmt/format.h>

// jemalloc's control entry point, present only when weftd is linked with jemalloc (sanitizer
// builds are not): a weak reference tells INFO which allocator runs.
extern "C" int mallctl(const char*, void*, size_t*, void*, size_t) __attribute__((weak));

namespace weft::server {

size_t ReadResidentBytes() {
  std::ifstream statm("/proc/self/statm");
  size_t total_pages = 0;
  size_t resident_pages = 0;
  if (!(statm >> total_pages >> resident_pages))
    return 0;
  return resident_pages * static_cast<size_t>(sysconf(_SC_PAGESIZE));
}

namespace {

std::string HumanBytes(double bytes) {
  const char* units = "BKMGTP";
  int unit = 0;
  while (bytes >= 1024 && unit < 5) {
    bytes /= 1024;
    ++unit;
  }
  if (unit == 0)
    return StrCat(static_cast<int64_t>(bytes), "B");
  return fmt::format("{:.2f}{}", bytes, units[unit]);
}

void ServerSection(ServerState& server, std::string* out) {
  const int64_t uptime_s = (server.clock().NowUnixMs() - server.started_unix_ms()) / 1000;
  StrAppend(out, "# Server\r\n", "redis_version:", kRedisCompatibleVersion, "\r\n",
            "weft_version:", kWeftVersion, "\r\n", "redis_mode:standalone\r\n", "os:Linux\r\n",
            "arch_bits:64\r\n", "multiplexing_api:epoll\r\n", "process_id:", getpid(), "\r\n",
            "run_id:", fmt::format("{:016x}", server.member_id()), "\r\n",
            "tcp_port:", server.port(), "\r\n",
            "server_time_usec:", server.clock().NowUnixMs() * 1000, "\r\n",
            "uptime_in_seconds:", uptime_s, "\r\n", "uptime_in_days:", uptime_s / 86400, "\r\n",
            "hz:", server.settings().hz(), "\r\n", "io_threads_active:", server.config().io_threads,
            "\r\n", "member_name:", server.config().name, "\r\n", "executable:weftd\r\n", "\r\n");
}

void ClientsSection(ServerState& server, std::string* out) {
  StrAppend(out, "# Clients\r\n", "connected_clients:", server.clients().Count(), "\r\n",
            "maxclients:", server.settings().maxclients(), "\r\n", "blocked_clients:0\r\n",
            "tracking_clients:0\r\n", "\r\n");
}

void MemorySection(ServerState& server, std::string* out) {
  size_t used = 0;
  for (size_t i = 0; i < server.database_count(); ++i) {
    used += server.database(i).store().MemoryBytes();
  }
  const size_t rss = ReadResidentBytes();
  StrAppend(
      out, "# Memory\r\n", "used_memory:", used, "\r\n",
      "used_memory_human:", HumanBytes(static_cast<double>(used)), "\r\n", "used_memory_rss:", rss,
      "\r\n", "used_memory_rss_human:", HumanBytes(static_cast<double>(rss)), "\r\n",
      "used_memory_dataset:", used, "\r\n", "maxmemory:0\r\n", "maxmemory_policy:noeviction\r\n",
      "mem_allocator:", mallctl != nullptr ? "jemalloc" : "libc", "\r\n", "\r\n");
}

void StatsSection(ServerState& server, std::string* out) {
  ServerStats& stats = server.stats();
  uint64_t expired = 0;
  for (size_t i = 0; i < server.database_count(); ++i) {
    expired += server.database(i).store().ExpiredKeysTotal();
  }
  auto load = [](const std::atomic<uint64_t>& counter) {
    return counter.load(std::memory_order_relaxed);
  };
  StrAppend(
      out, "# Stats\r\n", "total_connections_received:", load(stats.connections_received), "\r\n",
      "total_commands_processed:", load(stats.commands_processed), "\r\n",
      "total_net_input_bytes:", load(stats.net_input_bytes), "\r\n",
      "total_net_output_bytes:", load(stats.net_output_bytes), "\r\n",
      "rejected_connections:", load(stats.connections_rejected), "\r\n", "expired_keys:", expired,
      "\r\n", "evicted_keys:0\r\n", "keyspace_hits:", load(stats.keyspace_hits), "\r\n",
      "keyspace_misses:", load(stats.keyspace_misses), "\r\n",
      "client_output_buffer_limit_disconnections:", load(stats.output_limit_disconnections), "\r\n",
      "total_error_replies:0\r\n", "protocol_errors:", load(stats.protocol_errors), "\r\n", "\r\n");
}

// One line per region, per member of its group and per channel, in Redis's "name:k=v,k=v"
// style so that scripts can poll them (DESIGN §8); `weft status` renders them as tables.
void ReplicationSection(ServerState& server, std::string* out) {
  StrAppend(out, "# Replication\r\n", "role:member\r\n", "connected_slaves:0\r\n",
            fmt::format("member_id:{:016x}\r\n", server.member_id()),
            "member_name:", server.config().name, "\r\n", "regions:", server.database_count(),
            "\r\n");
  size_t channel_index = 0;
  std::string channels;
  for (size_t i = 0; i < server.database_count(); ++i) {
    Database& database = server.database(i);
    const RegionConfig& region = database.region();
    const replication::RegionReplicator* replicator = database.replicator();
    if (replicator == nullptr) {
      // Standalone: the region is complete from the start and replicates nowhere. A member
      // started with a registry whose cluster has not started yet is STARTING.
      StrAppend(out, "region", i, ":name=", region.name,
                database.clustered() ? ",state=STARTING,mode=" : ",state=ACTIVE,mode=",
                region.sync ? "sync" : "async",
                ",phase=none,provider=,entries=0,entries_estimate=0,bytes=0,rate_bps=0,eta_ms=0,"
                "postimage_keys=0,postimage_changes=0,members=1,join_ms=0,join_attempts=0,"
                "held=,rejoins=0\r\n");
      continue;
    }
    const replication::ReplicationStatus status = replicator->GetStatus();
    StrAppend(out, "region", i, ":name=", status.region,
              ",state=", replication::RegionStateName(status.state),
              ",mode=", replication::ReplicationModeName(status.mode),
              ",phase=", replication::JoinPhaseName(status.phase), ",provider=", status.provider,
              ",entries=", status.image_entries,
              ",entries_estimate=", status.image_entries_estimate, ",bytes=", status.image_bytes,
              ",rate_bps=", status.rate_bytes_per_s, ",eta_ms=", status.eta_ms,
              ",postimage_keys=", status.postimage_keys,
              ",postimage_changes=", status.postimage_changes, ",members=", status.members.size(),
              ",join_ms=", status.join_ms, ",join_attempts=", status.join_attempts, ",held=",
              status.held_at == replication::JoinPhase::kNone
                  ? std::string_view()
                  : replication::JoinPhaseName(status.held_at),
              ",rejoins=", status.rejoins, "\r\n");
    if (status.state == replication::RegionState::kFailed) {
      StrAppend(out, "region", i, "_failure:", status.failure, "\r\n");
    }
    if (!status.waiting.empty()) {
      StrAppend(out, "region", i, "_waiting:", status.waiting, "\r\n");
    }
    for (size_t m = 0; m < status.members.size(); ++m) {
      const membership::GroupMember& member = status.members[m];
      StrAppend(out, "region", i, "_member", m, ":",
                fmt::format("id={:016x}", member.info.member_id), ",name=", member.info.name,
                ",state=", membership::MemberStateName(member.state),
                ",peer=", member.info.peer_address, ",client=", member.info.client_address, "\r\n");
    }
    for (const replication::ChannelStatus& channel : status.channels) {
      StrAppend(&channels, "channel", channel_index++, ":region=", status.region,
                ",peer=", channel.peer_name, ",dir=", channel.outbound ? "out" : "in",
                ",lane=", channel.lane,
                ",state=", channel.connected ? "connected" : "disconnected");
      if (channel.outbound) {
        StrAppend(&channels, ",sent=", channel.sent, ",acked=", channel.acked,
                  ",lag=", channel.sent - channel.acked, "\r\n");
      } else {
        StrAppend(&channels, ",received=", channel.received, "\r\n");
      }
    }
  }
  StrAppend(out, channels, "\r\n");
}

void KeyspaceSection(ServerState& server, std::string* out) {
  StrAppend(out, "# Keyspace\r\n");
  for (size_t i = 0; i < server.database_count(); ++i) {
    storage::Store& store = server.database(i).store();
    const size_t keys = store.KeyCount();
    if (keys == 0)
      continue;
    StrAppend(out, "db", i, ":keys=", keys, ",expires=", store.VolatileKeyCount(),
              ",avg_ttl=0\r\n");
  }
  StrAppend(out, "\r\n");
}

}  // namespace

std::string RenderInfo(ServerState& server, std::span<const std::string_view> sections) {
  struct Section {
    std::string_view name;
    void (*render)(ServerState&, std::string*);
  };
  static constexpr Section kSections[] = {
      {"server", ServerSection}, {"clients", ClientsSection},         {"memory", MemorySection},
      {"stats", StatsSection},   {"replication", ReplicationSection}, {"keyspace", KeyspaceSection},
  };
  auto wanted = [&](std::string_view name) {
    if (sections.empty())
      return true;
    for (std::string_view requested : sections) {
      const std::string lower = AsciiLower(requested);
      if (lower == name || lower == "all" || lower == "everything" || lower == "default") {
        return true;
      }
    }
    return false;
  };
  std::string out;
  for (const Section& section : kSections) {
    if (wanted(section.name))
      section.render(server, &out);
  }
  // Redis ends the text without the trailing blank line.
  while (out.ends_with("\r\n\r\n"))
    out.resize(out.size() - 2);
  return out;
}

}  // namespace weft::server
