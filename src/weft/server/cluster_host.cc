#include "weft/server/cluster_host.h"

#include <unistd.h>

#include <chrono>
#include <utility>

#include "weft/base/logging.h"
#include "weft/base/strings.h"
#include "weft/base/thread_name.h"
#include "weft/transport/frame.h"

#include <sys/resource.h>

namespace weft::server {
namespace {

// "host:port" -> (host, port); the port after the last colon.
bool SplitAddress(const std::string& address, std::string* host, uint16_t* port) {
  const size_t colon = address.rfind(':');
  if (colon == std::string::npos) {
    return false;
  }
  *host = address.substr(0, colon);
  const int value = std::atoi(address.c_str() + colon + 1);
  if (value <= 0 || value > 65535) {
    return false;
  }
  *port = static_cast<uint16_t>(value);
  return true;
}

// The image worker runs at a lower priority (nice 10): on a busy machine the join slows down
// instead of the writers (DESIGN §5 Phase D), yet it still gets about a tenth of a core when
// everything else is saturated, so it always finishes. (SCHED_IDLE, tried first, starved the
// join entirely under a saturating load.) Its lock holds are a few entries long.
void LowerThreadPriority() {
  constexpr int kImageThreadNice = 10;
  if (setpriority(PRIO_PROCESS, static_cast<id_t>(gettid()), kImageThreadNice) != 0) {
    WEFT_LOG_WARN("could not lower the image thread's priority; the image competes with writers");
  }
}

}  // namespace

ClusterHost::ClusterHost(membership::Registry& registry, transport::PeerIdentity self,
                         std::string secret)
    : self_(std::move(self)), secret_(std::move(secret)), registry_worker_(registry) {}

ClusterHost::~ClusterHost() {
  Stop();
}

void ClusterHost::StartThreads() {
  threads_.emplace_back([this] {
    SetThreadName("weft-peer");
    auto guard = asio::make_work_guard(protocol_io_);
    protocol_io_.run();
  });
  threads_.emplace_back([this] {
    SetThreadName("weft-image");
    LowerThreadPriority();
    auto guard = asio::make_work_guard(image_io_);
    image_io_.run();
  });
}

void ClusterHost::Stop() {
  if (stopped_) {
    return;
  }
  stopped_ = true;
  registry_worker_.Stop();
  protocol_io_.stop();
  image_io_.stop();
  for (std::thread& thread : threads_) {
    thread.join();
  }
  threads_.clear();
}

void ClusterHost::After(int64_t delay_us, std::function<void()> fn) {
  if (delay_us <= 0) {
    asio::post(protocol_io_, std::move(fn));
    return;
  }
  auto timer = std::make_shared<asio::steady_timer>(protocol_io_);
  timer->expires_after(std::chrono::microseconds(delay_us));
  timer->async_wait([timer, fn = std::move(fn)](const std::error_code& error) {
    if (!error) {
      fn();
    }
  });
}

void ClusterHost::Post(std::function<void()> fn) {
  asio::post(protocol_io_, std::move(fn));
}

void ClusterHost::Open(const membership::MemberInfo& peer, replication::ChannelKind kind,
                       uint16_t index, std::weak_ptr<replication::ChannelSession> session) {
  std::string host;
  uint16_t port = 0;
  if (!SplitAddress(peer.peer_address, &host, &port)) {
    Post([session, address = peer.peer_address] {
      if (auto target = session.lock()) {
        target->OnOpenFailed(
            absl::InvalidArgumentError(StrCat("no usable peer address '", address, "'")));
      }
    });
    return;
  }
  transport::PeerConnection::Dial(
      protocol_io_, host, port, self_, secret_,
      transport::ChannelInfo{static_cast<uint8_t>(kind), index},
      [session,
       expected = peer.member_id](StatusOr<std::shared_ptr<transport::PeerConnection>> dialed) {
        std::shared_ptr<replication::ChannelSession> target = session.lock();
        if (target == nullptr) {
          if (dialed.ok()) {
            (*dialed)->Close();
          }
          return;
        }
        if (dialed.ok() && (*dialed)->peer().member_id != expected) {
          (*dialed)->Close();
          dialed = absl::FailedPreconditionError(StrCat("another member answers at that address (",
                                                        (*dialed)->peer().member_name, ")"));
        }
        if (!dialed.ok()) {
          target->OnOpenFailed(dialed.status());
          return;
        }
        auto channel = std::make_shared<TcpChannel>(*std::move(dialed));
        channel->Start(session, nullptr);
        target->OnOpened(*channel);
      });
}

void ClusterHost::Offload(std::function<void()> work, std::function<void()> done) {
  asio::post(image_io_, [this, work = std::move(work), done = std::move(done)]() mutable {
    work();
    asio::post(protocol_io_, std::move(done));
  });
}

void ClusterHost::Registry(replication::RegistryRequest request,
                           std::function<void(replication::RegistryReply)> done) {
  registry_worker_.Submit(
      std::move(request), [this, done = std::move(done)](replication::RegistryReply reply) {
        asio::post(protocol_io_, [done, reply = std::move(reply)] { done(reply); });
      });
}

void ClusterHost::Serve(
    std::shared_ptr<transport::PeerConnection> connection,
    const std::function<std::shared_ptr<replication::ChannelSession>(replication::Channel&)>&
        make_session) {
  auto channel = std::make_shared<TcpChannel>(std::move(connection));
  std::shared_ptr<replication::ChannelSession> session = make_session(*channel);
  channel->Start({}, std::move(session));
}

TcpChannel::TcpChannel(std::shared_ptr<transport::PeerConnection> connection)
    : connection_(std::move(connection)) {}

std::shared_ptr<replication::ChannelSession> TcpChannel::session() const {
  if (closed_by_session_) {
    return nullptr;
  }
  return accepted_ != nullptr ? accepted_ : dialed_.lock();
}

void TcpChannel::Start(std::weak_ptr<replication::ChannelSession> dialed,
                       std::shared_ptr<replication::ChannelSession> accepted) {
  dialed_ = std::move(dialed);
  accepted_ = std::move(accepted);
  // The handlers own the channel until the connection closes.
  std::shared_ptr<TcpChannel> self = shared_from_this();
  connection_->Start(
      [self](uint8_t type, std::string_view payload) {
        if (std::shared_ptr<replication::ChannelSession> session = self->session()) {
          session->OnFrame(type, payload);
        } else {
          self->connection_->Close();  // the protocol let go of this channel
        }
      },
      [self](const Status& reason) {
        self->connection_->SetSource(nullptr);
        if (std::shared_ptr<replication::ChannelSession> session = self->session()) {
          session->OnClosed(reason.ok() ? absl::UnavailableError("closed by the peer") : reason);
        }
        self->accepted_.reset();
      });
  connection_->SetSource(this);
}

void TcpChannel::Send(uint8_t type, std::string_view payload) {
  std::string frame;
  transport::AppendFrame(&frame, type, payload);
  connection_->Send(std::move(frame));
}

void TcpChannel::Wake() {
  connection_->Wake();
}

void TcpChannel::Close() {
  closed_by_session_ = true;
  connection_->Close();
}

bool TcpChannel::Fill(std::string* out, size_t max_bytes) {
  std::shared_ptr<replication::ChannelSession> session = this->session();
  if (session == nullptr) {
    return false;
  }
  const size_t start = out->size();
  while (out->size() - start < max_bytes &&
         session->Pull(&frame_, max_bytes - (out->size() - start))) {
    transport::AppendFrame(out, frame_.type, frame_.payload);
  }
  return out->size() > start;
}

}  // namespace weft::server
