// INFO: renders the sections Redis clients and scripts parse (server, clients, memory, stats,
// replication, keyspace) from ServerState, in Redis's "field:value" line format.
//
// Thread safety: reads ServerState through its thread-safe interfaces; callable from any thread.
#pragma once

#include <span>
#include <string>
#include <string_view>

#include "weft/server/server_state.h"

namespace weft::server {

// `sections` as given to INFO (empty = the default set). Unknown sections produce nothing.
std::string RenderInfo(ServerState& server, std::span<const std::string_view> sections);

// Resident set size of this process in bytes (0 if it cannot be read).
size_t ReadResidentBytes();

}  // namespace weft::server
