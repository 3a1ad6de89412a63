// DemoCluster: several weft members in one process for `weft demo` — each a real weftd
// (ServerState + Server with its own RESP port + Cluster with its own peer port), joined
// through an in-process registry and talking over loopback TCP, exactly as separate processes
// would, minus etcd.
//
// Thread safety: Start/AddMember/Stop from one controlling thread; members' accessors from any.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "weft/base/clock.h"
#include "weft/base/status.h"
#include "weft/membership/in_process_registry.h"
#include "weft/replication/replicator.h"
#include "weft/server/cluster.h"
#include "weft/server/command_table.h"
#include "weft/server/config.h"
#include "weft/server/server.h"
#include "weft/server/server_state.h"

namespace weft::tools {

struct DemoMemberOptions {
  std::string name;
  std::string secret;
  std::string cluster = "demo";
  size_t shard_count = 1024;
  int io_threads = 1;
  uint32_t lanes = 2;
  bool sync = true;
  int64_t image_rate_limit = 0;
  std::string provider;  // joining: the member to ask for the image (empty: a random ACTIVE one)
  uint64_t seed = 1;
};

class DemoMember {
 public:
  DemoMember(DemoMemberOptions options, membership::InProcessRegistryHub& hub, const Clock& clock);
  ~DemoMember();
  DemoMember(const DemoMember&) = delete;
  DemoMember& operator=(const DemoMember&) = delete;

  // Starts the RESP server, then joins the cluster (bootstrapping if it is the first).
  Status Start();
  void Stop();

  const std::string& name() const { return options_.name; }
  int port() const { return state_->port(); }
  server::ServerState& state() { return *state_; }
  server::Database& database() { return state_->database(0); }
  replication::RegionReplicator* replicator() { return database().replicator(); }

 private:
  const DemoMemberOptions options_;
  std::unique_ptr<membership::InProcessRegistry> registry_;
  std::unique_ptr<server::ServerState> state_;
  std::unique_ptr<server::Server> server_;
  std::unique_ptr<server::Cluster> cluster_;
  bool stopped_ = false;
};

}  // namespace weft::tools
