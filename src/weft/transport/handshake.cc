#include "weft/transport/handshake.h"

#include <algorithm>
#include <utility>

#include "weft/base/check.h"
#include "weft/base/strings.h"
#include "weft/transport/frame.h"

#include <fmt/format.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>

namespace weft::transport {
namespace {

// Little-endian fields; strings carry a one-byte length (names are at most 255 bytes).
void PutU8(std::string* out, uint8_t value) {
  out->push_back(static_cast<char>(value));
}
void PutU16(std::string* out, uint16_t value) {
  PutU8(out, static_cast<uint8_t>(value));
  PutU8(out, static_cast<uint8_t>(value >> 8));
}
void PutU64(std::string* out, uint64_t value) {
  for (int i = 0; i < 8; ++i) {
    PutU8(out, static_cast<uint8_t>(value >> (8 * i)));
  }
}
void PutString(std::string* out, std::string_view text) {
  WEFT_CHECK(text.size() <= kHandshakeNameBytesMax);  // ValidateHandshakeConfig's promise
  PutU8(out, static_cast<uint8_t>(text.size()));
  out->append(text);
}

// Reads fields in order; any shortfall or leftover makes the message malformed.
class Reader {
 public:
  explicit Reader(std::string_view in) : in_(in) {}

  // True if every read succeeded and nothing is left over.
  bool Done() const { return ok_ && in_.empty(); }

  uint8_t U8() {
    const std::string_view bytes = Take(1);
    return bytes.empty() ? 0 : static_cast<uint8_t>(bytes[0]);
  }
  uint16_t U16() {
    const uint16_t low = U8();
    return static_cast<uint16_t>(low | (U8() << 8));
  }
  uint64_t U64() {
    uint64_t value = 0;
    for (int i = 0; i < 8; ++i) {
      value |= uint64_t{U8()} << (8 * i);
    }
    return value;
  }
  std::string String() { return std::string(Take(U8())); }
  std::string Bytes(size_t size) { return std::string(Take(size)); }

 private:
  std::string_view Take(size_t size) {
    if (!ok_ || in_.size() < size) {
      ok_ = false;
      return {};
    }
    const std::string_view bytes = in_.substr(0, size);
    in_.remove_prefix(size);
    return bytes;
  }

  std::string_view in_;
  bool ok_ = true;
};

// Peer-chosen text goes into log lines: escape anything that is not printable ASCII.
std::string Printable(std::string_view text) {
  std::string out;
  for (const char c : text) {
    if (c >= 0x20 && c < 0x7f && c != '\\') {
      out.push_back(c);
    } else {
      out += fmt::format("\\x{:02x}", static_cast<uint8_t>(c));
    }
  }
  return out;
}

std::string Transcript(std::string_view cluster, const PeerIdentity& dialer,
                       const PeerIdentity& acceptor, ChannelInfo channel, std::string_view nonce_d,
                       std::string_view nonce_a) {
  std::string transcript;
  PutU8(&transcript, kProtocolVersion);
  PutString(&transcript, cluster);
  PutU64(&transcript, dialer.member_id);
  PutString(&transcript, dialer.member_name);
  PutU64(&transcript, acceptor.member_id);
  PutString(&transcript, acceptor.member_name);
  PutU8(&transcript, channel.kind);
  PutU16(&transcript, channel.lane);
  transcript.append(nonce_d);
  transcript.append(nonce_a);
  return transcript;
}

constexpr std::string_view kAcceptLabel = "weft-accept";
constexpr std::string_view kDialLabel = "weft-dial";

std::string Proof(std::string_view secret, std::string_view label, std::string_view transcript) {
  std::string data(label);
  data.append(transcript);
  unsigned char mac[EVP_MAX_MD_SIZE];
  unsigned int size = 0;
  WEFT_CHECK(HMAC(EVP_sha256(), secret.data(), static_cast<int>(secret.size()),
                  reinterpret_cast<const unsigned char*>(data.data()), data.size(), mac,
                  &size) != nullptr);
  WEFT_CHECK(size == kProofBytes);
  return std::string(reinterpret_cast<const char*>(mac), size);
}

// Constant time, so a peer cannot find a valid proof byte by byte from response times.
bool SameProof(std::string_view a, std::string_view b) {
  return a.size() == b.size() && CRYPTO_memcmp(a.data(), b.data(), a.size()) == 0;
}

std::string MakeFrame(HandshakeType type, std::string_view payload) {
  std::string frame;
  AppendFrame(&frame, static_cast<uint8_t>(type), payload);
  return frame;
}

HandshakeStep Refuse(std::string reason) {
  HandshakeStep step;
  step.status = absl::PermissionDeniedError(std::move(reason));
  return step;
}

HandshakeStep Unexpected(uint8_t type, const char* expected) {
  if (type >= kFirstUserFrameType) {
    return Refuse(StrCat("a data frame (type ", type, ") before the handshake completed"));
  }
  return Refuse(
      StrCat("unexpected frame type ", type, " during the handshake (expected ", expected, ")"));
}

std::string MemberId(uint64_t id) {
  return fmt::format("{:016x}", id);
}

}  // namespace

Status ValidateHandshakeConfig(const PeerIdentity& self, std::string_view secret) {
  if (secret.empty()) {
    return absl::InvalidArgumentError("the cluster secret is empty");
  }
  if (self.cluster.size() > kHandshakeNameBytesMax) {
    return absl::InvalidArgumentError(
        StrCat("the cluster name is longer than ", kHandshakeNameBytesMax, " bytes"));
  }
  if (self.member_name.size() > kHandshakeNameBytesMax) {
    return absl::InvalidArgumentError(
        StrCat("the member name is longer than ", kHandshakeNameBytesMax, " bytes"));
  }
  return absl::OkStatus();
}

std::string NewNonce() {
  std::string nonce(kNonceBytes, '\0');
  WEFT_CHECK(RAND_bytes(reinterpret_cast<unsigned char*>(nonce.data()),
                        static_cast<int>(nonce.size())) == 1);
  return nonce;
}

DialerHandshake::DialerHandshake(PeerIdentity self, std::string secret, ChannelInfo channel,
                                 std::string nonce)
    : self_(std::move(self)),
      secret_(std::move(secret)),
      channel_(channel),
      nonce_(std::move(nonce)) {
  WEFT_CHECK(ValidateHandshakeConfig(self_, secret_).ok());
  WEFT_CHECK(nonce_.size() == kNonceBytes);
  peer_.cluster = self_.cluster;
}

std::string DialerHandshake::Hello() const {
  std::string payload;
  PutU8(&payload, kProtocolVersion);
  PutString(&payload, self_.cluster);
  PutU64(&payload, self_.member_id);
  PutString(&payload, self_.member_name);
  PutU8(&payload, channel_.kind);
  PutU16(&payload, channel_.lane);
  payload.append(nonce_);
  return MakeFrame(HandshakeType::kHello, payload);
}

const char* DialerHandshake::waiting_for() const {
  switch (state_) {
    case State::kAwaitChallenge:
      return "Challenge";
    case State::kAwaitWelcome:
      return "Welcome";
    case State::kEstablished:
    case State::kFailed:
      break;
  }
  return "nothing";
}

HandshakeStep DialerHandshake::OnFrame(uint8_t type, std::string_view payload) {
  const State state = state_;
  state_ = State::kFailed;  // until this frame proves otherwise
  switch (state) {
    case State::kAwaitChallenge:
      if (type != static_cast<uint8_t>(HandshakeType::kChallenge)) {
        return Unexpected(type, "Challenge");
      }
      return OnChallenge(payload);
    case State::kAwaitWelcome: {
      if (type != static_cast<uint8_t>(HandshakeType::kWelcome)) {
        return Unexpected(type, "Welcome");
      }
      if (!payload.empty()) {
        return Refuse(StrCat("malformed Welcome (", payload.size(), " bytes, expected 0)"));
      }
      state_ = State::kEstablished;
      HandshakeStep step;
      step.established = true;
      return step;
    }
    case State::kEstablished:
      return Refuse(StrCat("handshake frame type ", type, " after the handshake completed"));
    case State::kFailed:
      break;
  }
  return Refuse("the handshake already failed");
}

HandshakeStep DialerHandshake::OnChallenge(std::string_view payload) {
  Reader reader(payload);
  PeerIdentity acceptor;
  acceptor.cluster = self_.cluster;
  acceptor.member_id = reader.U64();
  acceptor.member_name = reader.String();
  const std::string nonce_a = reader.Bytes(kNonceBytes);
  const std::string proof_a = reader.Bytes(kProofBytes);
  if (!reader.Done()) {
    return Refuse(StrCat("malformed Challenge (", payload.size(), " bytes)"));
  }
  if (acceptor.member_id == self_.member_id) {
    return Refuse(StrCat("the acceptor has this member's own id ", MemberId(self_.member_id),
                         ": a connection to itself"));
  }
  const std::string transcript =
      Transcript(self_.cluster, self_, acceptor, channel_, nonce_, nonce_a);
  if (!SameProof(proof_a, Proof(secret_, kAcceptLabel, transcript))) {
    return Refuse(StrCat("the acceptor ", Printable(acceptor.member_name), " (",
                         MemberId(acceptor.member_id),
                         ") failed to prove it knows the cluster secret"));
  }
  peer_ = std::move(acceptor);
  state_ = State::kAwaitWelcome;
  HandshakeStep step;
  step.reply = MakeFrame(HandshakeType::kProof, Proof(secret_, kDialLabel, transcript));
  return step;
}

AcceptorHandshake::AcceptorHandshake(PeerIdentity self, std::string secret, std::string nonce)
    : self_(std::move(self)), secret_(std::move(secret)), nonce_(std::move(nonce)) {
  WEFT_CHECK(ValidateHandshakeConfig(self_, secret_).ok());
  WEFT_CHECK(nonce_.size() == kNonceBytes);
}

const char* AcceptorHandshake::waiting_for() const {
  switch (state_) {
    case State::kAwaitHello:
      return "Hello";
    case State::kAwaitProof:
      return "Proof";
    case State::kEstablished:
    case State::kFailed:
      break;
  }
  return "nothing";
}

HandshakeStep AcceptorHandshake::OnFrame(uint8_t type, std::string_view payload) {
  const State state = state_;
  state_ = State::kFailed;  // until this frame proves otherwise
  switch (state) {
    case State::kAwaitHello:
      if (type != static_cast<uint8_t>(HandshakeType::kHello)) {
        return Unexpected(type, "Hello");
      }
      return OnHello(payload);
    case State::kAwaitProof:
      if (type != static_cast<uint8_t>(HandshakeType::kProof)) {
        return Unexpected(type, "Proof");
      }
      return OnProof(payload);
    case State::kEstablished:
      return Refuse(StrCat("handshake frame type ", type, " after the handshake completed"));
    case State::kFailed:
      break;
  }
  return Refuse("the handshake already failed");
}

HandshakeStep AcceptorHandshake::OnHello(std::string_view payload) {
  // The version comes first and alone decides how to read the rest, so a newer dialer gets a
  // clear "version" refusal instead of "malformed".
  Reader reader(payload);
  const uint8_t version = reader.U8();
  if (payload.empty()) {
    return Refuse("malformed Hello (empty)");
  }
  if (version != kProtocolVersion) {
    return Refuse(StrCat("the dialer speaks protocol version ", version, "; this member speaks ",
                         kProtocolVersion));
  }
  PeerIdentity dialer;
  dialer.cluster = reader.String();
  dialer.member_id = reader.U64();
  dialer.member_name = reader.String();
  ChannelInfo channel;
  channel.kind = reader.U8();
  channel.lane = reader.U16();
  const std::string nonce_d = reader.Bytes(kNonceBytes);
  if (!reader.Done()) {
    return Refuse(StrCat("malformed Hello (", payload.size(), " bytes)"));
  }
  if (dialer.cluster != self_.cluster) {
    return Refuse(StrCat("the dialer ", Printable(dialer.member_name), " belongs to cluster '",
                         Printable(dialer.cluster), "'; this member to '", Printable(self_.cluster),
                         "'"));
  }
  if (dialer.member_id == self_.member_id) {
    return Refuse(StrCat("the dialer has this member's own id ", MemberId(self_.member_id),
                         ": a connection to itself"));
  }
  transcript_ = Transcript(self_.cluster, dialer, self_, channel, nonce_d, nonce_);
  peer_ = std::move(dialer);
  channel_ = channel;
  std::string challenge;
  PutU64(&challenge, self_.member_id);
  PutString(&challenge, self_.member_name);
  challenge.append(nonce_);
  challenge.append(Proof(secret_, kAcceptLabel, transcript_));
  state_ = State::kAwaitProof;
  HandshakeStep step;
  step.reply = MakeFrame(HandshakeType::kChallenge, challenge);
  return step;
}

HandshakeStep AcceptorHandshake::OnProof(std::string_view payload) {
  if (payload.size() != kProofBytes) {
    return Refuse(
        StrCat("malformed Proof (", payload.size(), " bytes, expected ", kProofBytes, ")"));
  }
  if (!SameProof(payload, Proof(secret_, kDialLabel, transcript_))) {
    return Refuse(StrCat("the dialer ", Printable(peer_.member_name), " (",
                         MemberId(peer_.member_id),
                         ") failed to prove it knows the cluster secret"));
  }
  state_ = State::kEstablished;
  HandshakeStep step;
  step.reply = MakeFrame(HandshakeType::kWelcome, "");
  step.established = true;
  return step;
}

}  // namespace weft::transport
