// The members' mutual authentication, as sans-I/O state machines (docs/design/peer-protocol.md,
// "Handshake"). Feed each received handshake frame to OnFrame; send the reply it returns; stop
// at the first error. The same objects run under the TCP transport (peer_link.h), the fuzzer
// and any simulator: nonces come in through the constructors.
//
//   dialer   -> acceptor  Hello{version, cluster, member id, name, channel kind, lane, nonce_d}
//   acceptor -> dialer    Challenge{member id, name, nonce_a, proof_a}
//   dialer   -> acceptor  Proof{proof_d}
//   acceptor -> dialer    Welcome{}
//
//   proof_a = HMAC-SHA256(secret, "weft-accept" | transcript)
//   proof_d = HMAC-SHA256(secret, "weft-dial" | transcript)
//   transcript = version, cluster, dialer id, dialer name, acceptor id, acceptor name,
//                channel kind, lane, nonce_d, nonce_a
//
// Each side proves it knows the secret over a nonce it did not choose, so a recorded exchange
// replays nowhere; the acceptor proves itself first, so a dialer never sends a data frame to an
// impostor, and the acceptor accepts no data frame before the dialer's proof. The labels differ,
// so an acceptor's proof can never serve as a dialer's.
//
// Thread safety: a handshake object belongs to one connection (one thread at a time).
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "weft/base/status.h"

namespace weft::transport {

// Handshake frame types (the transport's range, 0..15).
enum class HandshakeType : uint8_t { kHello = 1, kChallenge = 2, kProof = 3, kWelcome = 4 };

// Who a member is, as the handshake states and proves it.
struct PeerIdentity {
  std::string cluster;
  uint64_t member_id = 0;
  std::string member_name;
};

// What a connection is for. The transport carries it but gives it no meaning (replication:
// kind 0 = a lane, 1 = an image channel).
struct ChannelInfo {
  uint8_t kind = 0;
  uint16_t lane = 0;
};

inline constexpr size_t kNonceBytes = 32;
inline constexpr size_t kProofBytes = 32;  // HMAC-SHA256
inline constexpr size_t kHandshakeNameBytesMax = 255;
// Every handshake frame is far smaller. Until a peer has proved itself, a connection refuses
// bigger frames, so an unauthenticated peer cannot make a member buffer much.
inline constexpr size_t kHandshakePayloadMax = 1024;

// Returns an error unless the handshake can state `self` (cluster and member names of at most
// kHandshakeNameBytesMax bytes) and `secret` is not empty.
Status ValidateHandshakeConfig(const PeerIdentity& self, std::string_view secret);

// kNonceBytes of cryptographic randomness (OpenSSL RAND_bytes; CHECK-fails if it has none).
std::string NewNonce();

// What to do after a frame: send `reply` (a whole frame, possibly empty), and if `status` is
// not ok close the connection without sending anything else, logging the reason.
struct [[nodiscard]] HandshakeStep {
  Status status;
  std::string reply;
  bool established = false;  // authenticated: data frames may flow after `reply`
};

// The connecting side.
class DialerHandshake {
 public:
  // REQUIRES: ValidateHandshakeConfig(self, secret).ok(); nonce.size() == kNonceBytes.
  DialerHandshake(PeerIdentity self, std::string secret, ChannelInfo channel, std::string nonce);

  // The first frame to send.
  std::string Hello() const;
  HandshakeStep OnFrame(uint8_t type, std::string_view payload);

  bool established() const { return state_ == State::kEstablished; }
  // The frame this side waits for ("Challenge", "Welcome"), or "nothing" once done or failed.
  const char* waiting_for() const;
  // The acceptor, as its Challenge stated it (proved once established).
  const PeerIdentity& peer() const { return peer_; }
  ChannelInfo channel() const { return channel_; }

 private:
  enum class State { kAwaitChallenge, kAwaitWelcome, kEstablished, kFailed };

  HandshakeStep OnChallenge(std::string_view payload);

  const PeerIdentity self_;
  const std::string secret_;
  const ChannelInfo channel_;
  const std::string nonce_;
  PeerIdentity peer_;
  State state_ = State::kAwaitChallenge;
};

// The accepting side.
class AcceptorHandshake {
 public:
  // REQUIRES: ValidateHandshakeConfig(self, secret).ok(); nonce.size() == kNonceBytes.
  AcceptorHandshake(PeerIdentity self, std::string secret, std::string nonce);

  HandshakeStep OnFrame(uint8_t type, std::string_view payload);

  bool established() const { return state_ == State::kEstablished; }
  // The frame this side waits for ("Hello", "Proof"), or "nothing" once done or failed.
  const char* waiting_for() const;
  // The dialer and its channel, as its Hello stated them (proved once established).
  const PeerIdentity& peer() const { return peer_; }
  ChannelInfo channel() const { return channel_; }

 private:
  enum class State { kAwaitHello, kAwaitProof, kEstablished, kFailed };

  HandshakeStep OnHello(std::string_view payload);
  HandshakeStep OnProof(std::string_view payload);

  const PeerIdentity self_;
  const std::string secret_;
  const std::string nonce_;
  PeerIdentity peer_;
  ChannelInfo channel_;
  std::string transcript_;  // fixed once the Hello is accepted
  State state_ = State::kAwaitHello;
};

}  // namespace weft::transport
