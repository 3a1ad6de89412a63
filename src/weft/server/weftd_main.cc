// weftd: a weft member. Parses its configuration, builds the server and runs until SIGTERM,
// SIGINT or SHUTDOWN.

#include <pthread.h>
#include <signal.h>

#include <cstdio>
#include <random>
#include <thread>

#include "weft/base/clock.h"
#include "weft/base/logging.h"
#include "weft/membership/etcd_registry.h"
#include "weft/server/cluster.h"
#include "weft/server/command_table.h"
#include "weft/server/config.h"
#include "weft/server/server.h"
#include "weft/server/server_state.h"

#include <spdlog/sinks/stdout_color_sinks.h>

namespace {

void ConfigureLogging(const std::string& level) {
  auto logger = spdlog::stderr_color_mt("weftd");
  spdlog::set_default_logger(logger);
  spdlog::set_pattern("%Y-%m-%d %H:%M:%S.%e %^%L%$ [%t] %v");
  spdlog::set_level(spdlog::level::from_str(level == "warning" ? "warn" : level));
}

uint64_t DrawSeed(uint64_t configured) {
  if (configured != 0)
    return configured;
  std::random_device device;
  return (static_cast<uint64_t>(device()) << 32) ^ device();
}

weft::StatusOr<std::unique_ptr<weft::membership::Registry>> MakeEtcdRegistry(
    const weft::server::ServerConfig& config) {
  WEFT_ASSIGN_OR_RETURN(std::string endpoint, weft::membership::ParseEtcdUrl(config.registry));
  weft::membership::EtcdRegistryOptions options;
  options.endpoint = std::move(endpoint);
  options.cluster = config.cluster;
  options.lease_ttl_s = config.lease_ttl_seconds;
  WEFT_ASSIGN_OR_RETURN(std::unique_ptr<weft::membership::EtcdRegistry> registry,
                        weft::membership::EtcdRegistry::Create(std::move(options)));
  return std::unique_ptr<weft::membership::Registry>(std::move(registry));
}

}  // namespace

int main(int argc, char** argv) {
  int exit_code = 0;
  weft::StatusOr<weft::server::ServerConfig> config =
      weft::server::ParseCommandLine(argc, argv, &exit_code);
  if (!config.ok()) {
    std::fprintf(exit_code == 0 ? stdout : stderr, "%s\n",
                 std::string(config.status().message()).c_str());
    return exit_code == 0 ? 0 : 2;
  }
  ConfigureLogging(config->loglevel);

  // Signals are taken synchronously by one waiter thread; every other thread blocks them, so
  // no I/O thread is ever interrupted mid-command.
  sigset_t stop_signals;
  sigemptyset(&stop_signals);
  sigaddset(&stop_signals, SIGINT);
  sigaddset(&stop_signals, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &stop_signals, nullptr);
  signal(SIGPIPE, SIG_IGN);

  const uint64_t seed = DrawSeed(config->seed);
  std::mt19937_64 seeded(seed);
  const uint64_t member_id = seeded();
  WEFT_LOG_INFO("weftd starting: seed={} member_id={:016x}", seed, member_id);

  weft::SystemClock clock;
  weft::server::ServerState state(*config, clock, member_id, seed);
  weft::server::Server server(state, weft::server::GlobalCommandTable());
  if (weft::Status status = server.Start(); !status.ok()) {
    WEFT_LOG_ERROR("{}", status.ToString());
    return 1;
  }

  // A member with a registry joins its cluster: starting is joining (DESIGN §8). Clients are
  // already served; regions answer -LOADING until their join completes.
  std::unique_ptr<weft::membership::Registry> registry;
  std::unique_ptr<weft::server::Cluster> cluster;
  if (!config->registry.empty()) {
    if (config->registry == "inprocess") {
      WEFT_LOG_ERROR("--registry inprocess is only for members in one process (weft demo)");
      server.Stop();
      server.Wait();
      return 2;
    }
    weft::StatusOr<std::unique_ptr<weft::membership::Registry>> etcd = MakeEtcdRegistry(*config);
    if (!etcd.ok()) {
      WEFT_LOG_ERROR("registry: {}", etcd.status().ToString());
      server.Stop();
      server.Wait();
      return 1;
    }
    registry = *std::move(etcd);
    cluster = std::make_unique<weft::server::Cluster>(state, *registry);
    if (weft::Status status = cluster->Start(); !status.ok()) {
      WEFT_LOG_ERROR("cannot join the cluster: {}", status.ToString());
      cluster->Stop();
      server.Stop();
      server.Wait();
      return 1;
    }
  }

  std::thread signal_waiter([&] {
    int signal_number = 0;
    sigwait(&stop_signals, &signal_number);
    if (signal_number != 0)
      WEFT_LOG_INFO("received signal {}", signal_number);
    server.Stop();
  });
  server.Wait();
  if (cluster != nullptr)
    cluster->Stop();
  // If SHUTDOWN ended the server, wake the waiter so it can finish.
  pthread_kill(signal_waiter.native_handle(), SIGTERM);
  signal_waiter.join();
  WEFT_LOG_INFO("weftd stopped");
  return 0;
}
