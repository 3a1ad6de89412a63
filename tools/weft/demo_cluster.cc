#include "tools/weft/demo_cluster.h"

#include <utility>

namespace weft::tools {

DemoMember::DemoMember(DemoMemberOptions options, membership::InProcessRegistryHub& hub,
                       const Clock& clock)
    : options_(std::move(options)),
      registry_(std::make_unique<membership::InProcessRegistry>(hub)) {
  server::ServerConfig config;
  config.bind = "127.0.0.1";
  config.port = 0;
  config.io_threads = options_.io_threads;
  config.name = options_.name;
  config.shard_count = options_.shard_count;
  config.regions.push_back({"default", options_.sync});
  config.registry = "inprocess";
  config.cluster = options_.cluster;
  config.secret = options_.secret;
  config.lanes = options_.lanes;
  config.image_rate_limit = options_.image_rate_limit;
  config.provider = options_.provider;
  config.seed = options_.seed;
  state_ = std::make_unique<server::ServerState>(config, clock, /*member_id=*/options_.seed,
                                                 options_.seed);
  server_ = std::make_unique<server::Server>(*state_, server::GlobalCommandTable());
}

DemoMember::~DemoMember() {
  Stop();
}

Status DemoMember::Start() {
  WEFT_RETURN_IF_ERROR(server_->Start());
  cluster_ = std::make_unique<server::Cluster>(*state_, *registry_);
  return cluster_->Start();
}

void DemoMember::Stop() {
  if (stopped_) {
    return;
  }
  stopped_ = true;
  if (cluster_ != nullptr) {
    cluster_->Stop();
  }
  server_->Stop();
  server_->Wait();
}

}  // namespace weft::tools
