#include "tests/sim/sim_network.h"

#include <algorithm>

namespace weft::sim {
namespace {

// Bytes a direction may have in flight before its sender stops pulling (a socket buffer).
constexpr size_t kWindowBytes = 256 * 1024;
// Dialing across a cut gives up after this long (a SYN that is never answered).
constexpr int64_t kConnectTimeoutUs = 1'000'000;

}  // namespace

class SimNetwork::Connection : public std::enable_shared_from_this<Connection> {
 public:
  class End final : public replication::Channel {
   public:
    End(Connection& connection, int side) : connection_(connection), side_(side) {}
    void Send(uint8_t type, std::string_view payload) override {
      connection_.Enqueue(side_, type, std::string(payload));
    }
    void Wake() override { connection_.WakeEnd(side_); }
    void Close() override { connection_.CloseFrom(side_); }

    std::shared_ptr<replication::ChannelSession> session() const {
      if (closed) {
        return nullptr;
      }
      return accepted != nullptr ? accepted : dialed.lock();
    }

    std::weak_ptr<replication::ChannelSession> dialed;
    std::shared_ptr<replication::ChannelSession> accepted;
    bool closed = false;  // closed by its session, or told OnClosed: nothing more reaches it
    bool wake_pending = false;
    bool wants_pull = false;

   private:
    Connection& connection_;
    const int side_;
  };

  Connection(SimNetwork& network, uint64_t id, uint64_t dialer, uint64_t acceptor,
             replication::ChannelKind kind)
      : network_(network),
        id_(id),
        members_{dialer, acceptor},
        kind_(kind),
        ends_{End(*this, 0), End(*this, 1)} {}

  uint64_t id() const { return id_; }
  uint64_t member(int side) const { return members_[side]; }
  replication::ChannelKind kind() const { return kind_; }
  End& end(int side) { return ends_[side]; }

  void Enqueue(int side, uint8_t type, std::string payload) {
    if (!sending_[side]) {
      return;
    }
    EventLoop& loop = network_.loop_;
    const int64_t arrival =
        std::max(last_arrival_us_[side], loop.now_us() + network_.Latency(payload.size()));
    last_arrival_us_[side] = arrival;
    in_flight_bytes_[side] += payload.size();
    queue_[side].push_back(Frame{type, std::move(payload), arrival});
    ScheduleDelivery(side);
  }

  void WakeEnd(int side) {
    End& end = ends_[side];
    if (end.wake_pending || !sending_[side]) {
      return;
    }
    end.wake_pending = true;
    std::weak_ptr<Connection> weak = weak_from_this();
    network_.loop_.At(static_cast<int64_t>(network_.random_.Uniform(20)), 0, "net.pump",
                      [weak, side] {
                        if (auto connection = weak.lock()) {
                          connection->Pump(side);
                        }
                      });
  }

  // A session closed its end: what it already sent still arrives, then the other end hears
  // the close; nothing more reaches the closing end.
  void CloseFrom(int side) {
    if (ends_[side].closed) {
      return;
    }
    ends_[side].closed = true;
    sending_[side] = false;
    sending_[1 - side] = false;
    queue_[1 - side].clear();
    in_flight_bytes_[1 - side] = 0;
    const int64_t after = std::max(last_arrival_us_[side], network_.loop_.now_us()) -
                          network_.loop_.now_us() + network_.Latency(0);
    std::weak_ptr<Connection> weak = weak_from_this();
    network_.loop_.At(after, 0, "net.closed", [weak, side] {
      if (auto connection = weak.lock()) {
        connection->Notify(1 - side, absl::UnavailableError("closed by the peer"));
      }
    });
  }

  // A reset, or one end's member crashed (`silent_side`: that end hears nothing).
  void Reset(int silent_side, const Status& reason) {
    sending_[0] = sending_[1] = false;
    queue_[0].clear();
    queue_[1].clear();
    in_flight_bytes_[0] = in_flight_bytes_[1] = 0;
    if (silent_side >= 0) {
      ends_[silent_side].closed = true;
      ends_[silent_side].accepted.reset();
    }
    std::weak_ptr<Connection> weak = weak_from_this();
    for (int side = 0; side < 2; ++side) {
      if (!ends_[side].closed) {
        network_.loop_.At(network_.Latency(0), 0, "net.reset", [weak, side, reason] {
          if (auto connection = weak.lock()) {
            connection->Notify(side, reason);
          }
        });
      }
    }
    MaybeForget();
  }

  // A cut ended early: deliveries scheduled for its end may go now.
  void Kick() {
    for (int side = 0; side < 2; ++side) {
      if (delivering_[side]) {
        delivering_[side] = false;
        ScheduleDelivery(side);
      }
    }
  }

  void Notify(int side, const Status& reason) {
    End& end = ends_[side];
    if (!end.closed) {
      std::shared_ptr<replication::ChannelSession> session = end.session();
      end.closed = true;
      sending_[side] = false;
      if (session != nullptr) {
        session->OnClosed(reason);
      }
      end.accepted.reset();
    }
    MaybeForget();
  }

 private:
  struct Frame {
    uint8_t type;
    std::string payload;
    int64_t arrival_us;
  };

  void MaybeForget() {
    if (ends_[0].closed && ends_[1].closed && queue_[0].empty() && queue_[1].empty()) {
      network_.Forget(id_);
    }
  }

  void ScheduleDelivery(int side) {
    if (delivering_[side] || queue_[side].empty()) {
      return;
    }
    delivering_[side] = true;
    const int64_t at = std::max(queue_[side].front().arrival_us,
                                network_.BlockedUntil(members_[side], members_[1 - side], kind_));
    std::weak_ptr<Connection> weak = weak_from_this();
    const uint64_t generation = ++delivery_generation_[side];
    network_.loop_.At(at - network_.loop_.now_us(), 0, "net.deliver", [weak, side, generation] {
      auto connection = weak.lock();
      if (connection != nullptr && connection->delivery_generation_[side] == generation) {
        connection->Deliver(side);
      }
    });
  }

  void Deliver(int side) {
    delivering_[side] = false;
    if (queue_[side].empty()) {
      return;
    }
    EventLoop& loop = network_.loop_;
    if (network_.BlockedUntil(members_[side], members_[1 - side], kind_) > loop.now_us()) {
      ScheduleDelivery(side);  // cut or clogged meanwhile: wait
      return;
    }
    Frame frame = std::move(queue_[side].front());
    queue_[side].pop_front();
    in_flight_bytes_[side] -= frame.payload.size();
    ++network_.frames_delivered_;
    std::shared_ptr<Connection> self = shared_from_this();  // the session may reset us
    if (std::shared_ptr<replication::ChannelSession> session = ends_[1 - side].session()) {
      session->OnFrame(frame.type, frame.payload);
    }
    if (ends_[side].wants_pull) {
      ends_[side].wants_pull = false;
      WakeEnd(side);
    }
    ScheduleDelivery(side);
    MaybeForget();
  }

  void Pump(int side) {
    End& end = ends_[side];
    end.wake_pending = false;
    if (const int64_t stalled = network_.loop_.StalledUntil(members_[side]);
        stalled > network_.loop_.now_us()) {
      // A stopped process writes nothing; look again when it runs.
      end.wake_pending = true;
      std::weak_ptr<Connection> weak = weak_from_this();
      network_.loop_.At(stalled - network_.loop_.now_us(), 0, "net.pump", [weak, side] {
        if (auto connection = weak.lock()) {
          connection->Pump(side);
        }
      });
      return;
    }
    std::shared_ptr<replication::ChannelSession> session = end.session();
    if (session == nullptr || !sending_[side]) {
      return;
    }
    std::shared_ptr<Connection> self = shared_from_this();
    replication::OutFrame frame;
    while (sending_[side]) {
      if (in_flight_bytes_[side] >= kWindowBytes) {
        end.wants_pull = true;
        return;
      }
      if (!session->Pull(&frame, kWindowBytes - in_flight_bytes_[side])) {
        return;
      }
      Enqueue(side, frame.type, std::move(frame.payload));
    }
  }

  SimNetwork& network_;
  const uint64_t id_;
  const uint64_t members_[2];
  const replication::ChannelKind kind_;
  End ends_[2];
  std::deque<Frame> queue_[2];  // frames from side i to the other
  size_t in_flight_bytes_[2] = {0, 0};
  int64_t last_arrival_us_[2] = {0, 0};
  bool delivering_[2] = {false, false};
  uint64_t delivery_generation_[2] = {0, 0};  // only the latest scheduled delivery runs
  bool sending_[2] = {true, true};
};

SimNetwork::SimNetwork(EventLoop& loop, Random& random) : loop_(loop), random_(random) {}

SimNetwork::~SimNetwork() = default;

int64_t SimNetwork::Latency(size_t bytes) {
  // 50-450 us on the wire, plus 1 us per KiB (about 1 GB/s).
  return 50 + static_cast<int64_t>(random_.Uniform(400)) + static_cast<int64_t>(bytes >> 10);
}

int64_t SimNetwork::BlockedUntil(uint64_t from, uint64_t to, replication::ChannelKind kind) const {
  // A stopped process reads nothing: its kernel holds what arrives.
  int64_t until = loop_.StalledUntil(to);
  if (kind == replication::ChannelKind::kLane) {
    if (auto cut = lane_cut_until_us_.find({from, to}); cut != lane_cut_until_us_.end()) {
      until = std::max(until, cut->second);
    }
  }
  if (auto cut = cut_until_us_.find({from, to}); cut != cut_until_us_.end()) {
    until = std::max(until, cut->second);
  }
  if (auto clog = clog_until_us_.find({std::min(from, to), std::max(from, to)});
      clog != clog_until_us_.end()) {
    until = std::max(until, clog->second);
  }
  return until;
}

bool SimNetwork::IsCut(uint64_t from, uint64_t to) const {
  auto cut = cut_until_us_.find({from, to});
  return cut != cut_until_us_.end() && cut->second > loop_.now_us();
}

void SimNetwork::Attach(uint64_t member, NetworkNode* node) {
  nodes_[member] = node;
}

void SimNetwork::Detach(uint64_t member) {
  nodes_.erase(member);
  std::vector<std::shared_ptr<Connection>> affected;
  for (const auto& [id, connection] : connections_) {
    if (connection->member(0) == member || connection->member(1) == member) {
      affected.push_back(connection);
    }
  }
  for (const std::shared_ptr<Connection>& connection : affected) {
    connection->Reset(connection->member(0) == member ? 0 : 1,
                      absl::UnavailableError("connection reset by peer"));
  }
}

void SimNetwork::Forget(uint64_t connection_id) {
  // A crashed member's sessions may still point at their ends (they were told nothing), so
  // connections live as long as the network; a closed one only moves out of the way.
  auto it = connections_.find(connection_id);
  if (it != connections_.end()) {
    closed_.push_back(std::move(it->second));
    connections_.erase(it);
  }
}

void SimNetwork::Dial(uint64_t from, uint64_t to, replication::ChannelKind kind,
                      std::weak_ptr<replication::ChannelSession> session) {
  auto fail = [this, session](int64_t after_us, const char* why) {
    loop_.At(after_us, 0, "net.dial-failed", [session, why] {
      if (auto target = session.lock()) {
        target->OnOpenFailed(absl::UnavailableError(why));
      }
    });
  };
  if (IsCut(from, to) || IsCut(to, from)) {
    fail(kConnectTimeoutUs, "connect timed out");
    return;
  }
  auto node = nodes_.find(to);
  if (node == nodes_.end()) {
    fail(2 * Latency(0), "connection refused");
    return;
  }
  auto connection = std::make_shared<Connection>(*this, next_connection_id_++, from, to, kind);
  connections_[connection->id()] = connection;
  connection->end(0).dialed = session;
  // The acceptor's session exists from the handshake on; the dialer hears "opened" a round
  // trip later.
  connection->end(1).accepted = node->second->Accept(from, kind, connection->end(1));
  std::weak_ptr<Connection> weak = connection;
  loop_.At(2 * Latency(0), 0, "net.opened", [weak, session] {
    std::shared_ptr<Connection> connection = weak.lock();
    std::shared_ptr<replication::ChannelSession> target = session.lock();
    if (connection == nullptr || connection->end(0).closed) {
      if (target != nullptr) {
        target->OnOpenFailed(absl::UnavailableError("connection reset during the handshake"));
      }
      return;
    }
    if (target == nullptr) {
      connection->end(0).Close();
      return;
    }
    target->OnOpened(connection->end(0));
  });
}

void SimNetwork::Cut(uint64_t from, uint64_t to, int64_t duration_us) {
  int64_t& until = cut_until_us_[{from, to}];
  until = std::max(until, loop_.now_us() + duration_us);
}

void SimNetwork::CutLanes(uint64_t from, uint64_t to, int64_t duration_us) {
  int64_t& until = lane_cut_until_us_[{from, to}];
  until = std::max(until, loop_.now_us() + duration_us);
}

void SimNetwork::Heal(uint64_t from, uint64_t to) {
  cut_until_us_.erase({from, to});
  lane_cut_until_us_.erase({from, to});
  clog_until_us_.erase({std::min(from, to), std::max(from, to)});
  // Frames that waited are due now; their delivery events look again.
  for (const auto& [id, connection] : connections_) {
    connection->Kick();
  }
}

void SimNetwork::Clog(uint64_t a, uint64_t b, int64_t duration_us) {
  int64_t& until = clog_until_us_[{std::min(a, b), std::max(a, b)}];
  until = std::max(until, loop_.now_us() + duration_us);
}

void SimNetwork::Reset(uint64_t a, uint64_t b, bool lanes, bool images) {
  std::vector<std::shared_ptr<Connection>> affected;
  for (const auto& [id, connection] : connections_) {
    const bool between = (connection->member(0) == a && connection->member(1) == b) ||
                         (connection->member(0) == b && connection->member(1) == a);
    const bool lane = connection->kind() == replication::ChannelKind::kLane;
    if (between && ((lane && lanes) || (!lane && images))) {
      affected.push_back(connection);
    }
  }
  for (const std::shared_ptr<Connection>& connection : affected) {
    connection->Reset(-1, absl::UnavailableError("connection reset"));
  }
}

}  // namespace weft::sim
