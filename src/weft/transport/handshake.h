// The members' mutual authentication, as sans-I/O state machines (docs/design/peer-protocol.md).
//
//   dialer   -> acceptor  Hello{version, cluster, member id, name, channel kind, lane, nonce_d}
//   acceptor -> dialer    Challenge{member id, name, nonce_a, proof_a}
//   dialer   -> acceptor  Proof{proof_d}
//   acceptor -> dialer    Welcome{}
//
// proof_a = HMAC-SHA256(secret, "weft-accept" | transcript), proof_d = HMAC-SHA256(secret,
// "weft-dial" | transcript), transcript = version, cluster, both member ids, channel kind and
// lane, both nonces. Each side proves it knows the secret over nonces it did not choose, so a
// recording replays nowhere, and the acceptor proves itself first, so a dialer never sends a
// data frame to an impostor. No data frame is sent or accepted before Welcome.
//
// Thread safety: a handshake belongs to one connection.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "weft/base/status.h"

namespace weft::transport {

// Handshake frame types (the transport's range, 0..15).
enum class HandshakeType : uint8_t { kHello = 1, kChallenge = 2, kProof = 3, kWelcome = 4 };

struct PeerIdentity {
  std::string cluster;
  uint64_t member_id = 0;
  std::string member_name;
};

struct ChannelInfo {
  uint8_t kind = 0;  // 0: lane, 1: image (the replication layer's meaning)
  uint16_t lane = 0;
};

inline constexpr size_t kNonceBytes = 32;

// What to do after feeding a frame: send `reply` (may be empty), then go on, or stop.
struct HandshakeStep {
  Status status;      // not ok: refuse (log the reason, close, send nothing more)
  std::string reply;  // a complete frame to send
  bool established = false;
};

// Random bytes for nonces (OpenSSL RAND_bytes).
std::string NewNonce();

class DialerHandshake {
 public:
  DialerHandshake(PeerIdentity self, std::string secret, ChannelInfo channel, std::string nonce);
  // The Hello frame to send first.
  std::string Hello() const;
  HandshakeStep OnFrame(uint8_t type, std::string_view payload);
  const PeerIdentity& peer() const { return peer_; }

 private:
  const PeerIdentity self_;
  const std::string secret_;
  const ChannelInfo channel_;
  const std::string nonce_;
  PeerIdentity peer_;
  enum class State {
    kAwaitChallenge,
    kAwaitWelcome,
    kDone,
    kFailed
  } state_ = State::kAwaitChallenge;
};

class AcceptorHandshake {
 public:
  AcceptorHandshake(PeerIdentity self, std::string secret, std::string nonce);
  HandshakeStep OnFrame(uint8_t type, std::string_view payload);
  const PeerIdentity& peer() const { return peer_; }
  ChannelInfo channel() const { return channel_; }

 private:
  const PeerIdentity self_;
  const std::string secret_;
  const std::string nonce_;
  PeerIdentity peer_;
  ChannelInfo channel_;
  std::string peer_nonce_;
  enum class State { kAwaitHello, kAwaitProof, kDone, kFailed } state_ = State::kAwaitHello;
};

}  // namespace weft::transport
