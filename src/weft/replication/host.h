// Host: everything the replication protocol asks of the world, and the only way it reaches it
// (DESIGN.md §3: the protocol is sans-I/O). Two hosts exist: server/cluster.cc (asio sockets,
// threads, the etcd registry) and the deterministic simulator in tests/sim (one event queue).
// The protocol objects are the same under both; only the host differs.
//
// The protocol runs on one thread at a time, called "the protocol thread" below: production's
// peer thread, the simulator's only thread. Every Host method only starts something and returns
// at once; what it started reports back later as a call on the protocol thread, never from
// inside the Host call. Only Post may be called from other threads (writers use it to report a
// drained epoch). The host stops running callbacks before the protocol objects are destroyed.
//
// Channels: the host moves frames, (type, payload) pairs, between two members over an ordered,
// reliable stream (TCP, or a simulated link that keeps FIFO order per channel). A protocol
// session sits at each end (ChannelSession); the host authenticates the peer before a session
// sees anything, so a session knows which member is at the other end.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>

#include "weft/base/status.h"
#include "weft/membership/registry.h"
#include "weft/membership/registry_request.h"

namespace weft::replication {

// What a channel carries, as the transport's handshake announces it.
enum class ChannelKind : uint8_t {
  kLane = 0,   // a region's lane: records from the dialer, acknowledgements back
  kImage = 1,  // a joiner's image request, chunks from the acceptor
};

// One frame to send: a replication frame type (messages.h) and its payload.
struct OutFrame {
  uint8_t type = 0;
  std::string payload;
};

// The host's end of one channel, as a session uses it. Valid from OnOpened (or from the
// session's creation, on the accepting side) until the session is told OnClosed or calls
// Close itself; after Close the host delivers nothing more to the session.
class Channel {
 public:
  virtual ~Channel() = default;
  // Queues one frame; frames leave in order, between pulled frames.
  virtual void Send(uint8_t type, std::string_view payload) = 0;
  // The session may have something to pull: the host calls Pull soon (never inside Wake).
  virtual void Wake() = 0;
  virtual void Close() = 0;
};

// A protocol session at one end of one channel. Every call comes on the protocol thread.
class ChannelSession {
 public:
  virtual ~ChannelSession() = default;
  // Dialing side: the channel is established, or could not be.
  virtual void OnOpened(Channel& channel) {}
  virtual void OnOpenFailed(const Status& reason) {}
  virtual void OnFrame(uint8_t type, std::string_view payload) = 0;
  // The channel can take more: fills *frame (payload about max_bytes at most, one record at
  // least) and returns true, or returns false if there is nothing to send now.
  virtual bool Pull(OutFrame* frame, size_t max_bytes) { return false; }
  // The channel closed without the session asking (peer gone, reset, a bad frame).
  virtual void OnClosed(const Status& reason) = 0;
};

using membership::RegistryReply;
using membership::RegistryRequest;

class Host {
 public:
  virtual ~Host() = default;
  // Runs `fn` on the protocol thread after `delay_us` microseconds (0: soon, after what is
  // already queued).
  virtual void After(int64_t delay_us, std::function<void()> fn) = 0;
  // From any thread: runs `fn` on the protocol thread soon.
  virtual void Post(std::function<void()> fn) = 0;
  // Opens a channel of `kind` to `peer`; `session` then hears OnOpened or OnOpenFailed, frames,
  // and OnClosed. The host keeps only a weak reference: a session the protocol dropped is
  // closed.
  virtual void Open(const membership::MemberInfo& peer, ChannelKind kind, uint16_t index,
                    std::weak_ptr<ChannelSession> session) = 0;
  // Runs `work` off the protocol thread (bulk store work: encoding and applying image chunks),
  // one piece at a time in submission order, then `done` on the protocol thread.
  virtual void Offload(std::function<void()> work, std::function<void()> done) = 0;
  // Sends a request to the registry; `done` runs on the protocol thread with its answer (an
  // error if the registry could not be reached; the request may then have taken effect).
  virtual void Registry(RegistryRequest request, std::function<void(RegistryReply)> done) = 0;
};

}  // namespace weft::replication
