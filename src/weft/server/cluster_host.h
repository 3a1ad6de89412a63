// ClusterHost: the replication protocol's Host (replication/host.h) over asio, TCP and a
// registry worker — the production adapter. It makes no protocol decision: it runs what the
// protocol asks for on the right thread and reports back.
//
// Threads:
//  - the protocol thread ("weft-peer"): one io_context thread that runs every peer connection's
//    handlers, every timer, every posted callback, and so every protocol object;
//  - the image worker ("weft-image", nice 10): Offload's work — encoding and applying image
//    chunks — one piece at a time; its `done` is posted back to the protocol thread;
//  - the registry worker ("weft-registry"): blocking Registry calls; answers are posted back.
// Client threads only Post (a writer reporting a drained epoch).
//
// TcpChannel adapts an authenticated transport::PeerConnection to a protocol session: frames in
// go to the session, the session's frames are pulled when the socket can take more.
//
// Thread safety: Post from any thread; everything else on the protocol thread (or, for
// Start/Stop, the controlling thread while the protocol thread is not running).
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "weft/membership/registry_worker.h"
#include "weft/replication/host.h"
#include "weft/transport/peer_link.h"

#include <asio.hpp>

namespace weft::server {

class TcpChannel;

class ClusterHost final : public replication::Host {
 public:
  // `registry` must outlive the host. `secret` and `self` authenticate dialed connections.
  ClusterHost(membership::Registry& registry, transport::PeerIdentity self, std::string secret);
  ~ClusterHost() override;

  asio::io_context& protocol_io() { return protocol_io_; }

  // Starts the protocol thread and the image worker.
  void StartThreads();
  // Stops the registry worker and both threads; queued callbacks are dropped. Idempotent.
  void Stop();

  // Hands an accepted connection to `session` (owned by the channel from now on).
  static void Serve(
      std::shared_ptr<transport::PeerConnection> connection,
      const std::function<std::shared_ptr<replication::ChannelSession>(replication::Channel&)>&
          make_session);

  // replication::Host.
  void After(int64_t delay_us, std::function<void()> fn) override;
  void Post(std::function<void()> fn) override;
  void Open(const membership::MemberInfo& peer, replication::ChannelKind kind, uint16_t index,
            std::weak_ptr<replication::ChannelSession> session) override;
  void Offload(std::function<void()> work, std::function<void()> done) override;
  void Registry(replication::RegistryRequest request,
                std::function<void(replication::RegistryReply)> done) override;

 private:
  const transport::PeerIdentity self_;
  const std::string secret_;
  asio::io_context protocol_io_{1};
  asio::io_context image_io_{1};
  membership::RegistryWorker registry_worker_;
  std::vector<std::thread> threads_;
  bool stopped_ = false;
};

// A PeerConnection as a protocol Channel. Lives while its connection does (the connection's
// handlers own it).
class TcpChannel final : public replication::Channel,
                         public transport::FrameSource,
                         public std::enable_shared_from_this<TcpChannel> {
 public:
  explicit TcpChannel(std::shared_ptr<transport::PeerConnection> connection);

  // Starts delivering to a session the protocol owns (dialed) or that this channel owns
  // (accepted). Exactly one of the two is non-null.
  void Start(std::weak_ptr<replication::ChannelSession> dialed,
             std::shared_ptr<replication::ChannelSession> accepted);

  transport::PeerConnection& connection() { return *connection_; }

  // replication::Channel.
  void Send(uint8_t type, std::string_view payload) override;
  void Wake() override;
  void Close() override;

  // transport::FrameSource.
  bool Fill(std::string* out, size_t max_bytes) override;

 private:
  std::shared_ptr<replication::ChannelSession> session() const;

  const std::shared_ptr<transport::PeerConnection> connection_;
  std::weak_ptr<replication::ChannelSession> dialed_;
  std::shared_ptr<replication::ChannelSession> accepted_;
  bool closed_by_session_ = false;
  replication::OutFrame frame_;  // reused between pulls
};

}  // namespace weft::server
