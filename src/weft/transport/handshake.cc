#include "weft/transport/handshake.h"

#include "weft/base/check.h"
#include "weft/base/strings.h"
#include "weft/transport/frame.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>

namespace weft::transport {
namespace {

constexpr size_t kMacBytes = 32;
constexpr size_t kNameBytesMax = 256;

// Minimal checked encoding for the handshake's few fields.
void PutU64(std::string* out, uint64_t value) {
  for (int i = 0; i < 8; ++i) {
    out->push_back(static_cast<char>(value >> (8 * i)));
  }
}
void PutString(std::string* out, std::string_view text) {
  out->push_back(static_cast<char>(text.size() & 0xff));
  out->push_back(static_cast<char>(text.size() >> 8));
  out->append(text);
}

class Reader {
 public:
  explicit Reader(std::string_view in) : in_(in) {}
  bool ok() const { return ok_ && in_.empty(); }
  uint8_t U8() { return static_cast<uint8_t>(Take(1)[0]); }
  uint16_t U16() {
    const std::string_view bytes = Take(2);
    return static_cast<uint16_t>(static_cast<uint8_t>(bytes[0]) |
                                 (static_cast<uint8_t>(bytes[1]) << 8));
  }
  uint64_t U64() {
    const std::string_view bytes = Take(8);
    uint64_t value = 0;
    for (int i = 0; i < 8; ++i) {
      value |= uint64_t{static_cast<uint8_t>(bytes[i])} << (8 * i);
    }
    return value;
  }
  std::string String() {
    const uint16_t size = U16();
    if (size > kNameBytesMax) {
      ok_ = false;
      return {};
    }
    return std::string(Take(size));
  }
  std::string Fixed(size_t size) { return std::string(Take(size)); }

 private:
  std::string_view Take(size_t size) {
    static const char kZeros[kNonceBytes] = {};
    if (!ok_ || in_.size() < size) {
      ok_ = false;
      return std::string_view(kZeros, std::min(size, sizeof(kZeros)));
    }
    std::string_view bytes = in_.substr(0, size);
    in_.remove_prefix(size);
    return bytes;
  }

  std::string_view in_;
  bool ok_ = true;
};

std::string Transcript(std::string_view cluster, uint64_t dialer, uint64_t acceptor,
                       ChannelInfo channel, std::string_view nonce_d, std::string_view nonce_a) {
  std::string transcript;
  transcript.push_back(static_cast<char>(kProtocolVersion));
  PutString(&transcript, cluster);
  PutU64(&transcript, dialer);
  PutU64(&transcript, acceptor);
  transcript.push_back(static_cast<char>(channel.kind));
  PutU64(&transcript, channel.lane);
  transcript.append(nonce_d);
  transcript.append(nonce_a);
  return transcript;
}

std::string Mac(std::string_view secret, std::string_view label, std::string_view transcript) {
  std::string data(label);
  data.append(transcript);
  unsigned char out[EVP_MAX_MD_SIZE];
  unsigned int size = 0;
  WEFT_CHECK(HMAC(EVP_sha256(), secret.data(), static_cast<int>(secret.size()),
                  reinterpret_cast<const unsigned char*>(data.data()), data.size(), out,
                  &size) != nullptr);
  return std::string(reinterpret_cast<const char*>(out), size);
}

bool SameMac(std::string_view a, std::string_view b) {
  return a.size() == b.size() && CRYPTO_memcmp(a.data(), b.data(), a.size()) == 0;
}

std::string Frame(HandshakeType type, std::string_view payload) {
  std::string frame;
  AppendFrame(&frame, static_cast<uint8_t>(type), payload);
  return frame;
}

HandshakeStep Refuse(std::string reason) {
  HandshakeStep step;
  step.status = absl::PermissionDeniedError(std::move(reason));
  return step;
}

}  // namespace

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
      nonce_(std::move(nonce)) {}

std::string DialerHandshake::Hello() const {
  std::string payload;
  payload.push_back(static_cast<char>(kProtocolVersion));
  PutString(&payload, self_.cluster);
  PutU64(&payload, self_.member_id);
  PutString(&payload, self_.member_name);
  payload.push_back(static_cast<char>(channel_.kind));
  payload.push_back(static_cast<char>(channel_.lane & 0xff));
  payload.push_back(static_cast<char>(channel_.lane >> 8));
  payload.append(nonce_);
  return Frame(HandshakeType::kHello, payload);
}

HandshakeStep DialerHandshake::OnFrame(uint8_t type, std::string_view payload) {
  if (state_ == State::kAwaitChallenge && type == static_cast<uint8_t>(HandshakeType::kChallenge)) {
    Reader reader(payload);
    peer_.cluster = self_.cluster;
    peer_.member_id = reader.U64();
    peer_.member_name = reader.String();
    const std::string nonce_a = reader.Fixed(kNonceBytes);
    const std::string proof_a = reader.Fixed(kMacBytes);
    if (!reader.ok()) {
      state_ = State::kFailed;
      return Refuse("malformed Challenge");
    }
    const std::string transcript =
        Transcript(self_.cluster, self_.member_id, peer_.member_id, channel_, nonce_, nonce_a);
    if (!SameMac(proof_a, Mac(secret_, "weft-accept", transcript))) {
      state_ = State::kFailed;
      return Refuse("the acceptor does not know the cluster secret");
    }
    state_ = State::kAwaitWelcome;
    HandshakeStep step;
    step.reply = Frame(HandshakeType::kProof, Mac(secret_, "weft-dial", transcript));
    return step;
  }
  if (state_ == State::kAwaitWelcome && type == static_cast<uint8_t>(HandshakeType::kWelcome) &&
      payload.empty()) {
    state_ = State::kDone;
    HandshakeStep step;
    step.established = true;
    return step;
  }
  state_ = State::kFailed;
  return Refuse(StrCat("unexpected frame type ", type, " during the handshake"));
}

AcceptorHandshake::AcceptorHandshake(PeerIdentity self, std::string secret, std::string nonce)
    : self_(std::move(self)), secret_(std::move(secret)), nonce_(std::move(nonce)) {}

HandshakeStep AcceptorHandshake::OnFrame(uint8_t type, std::string_view payload) {
  if (state_ == State::kAwaitHello && type == static_cast<uint8_t>(HandshakeType::kHello)) {
    state_ = State::kFailed;  // until proven otherwise
    Reader reader(payload);
    const uint8_t version = reader.U8();
    peer_.cluster = reader.String();
    peer_.member_id = reader.U64();
    peer_.member_name = reader.String();
    channel_.kind = reader.U8();
    channel_.lane = reader.U16();
    peer_nonce_ = reader.Fixed(kNonceBytes);
    if (!reader.ok()) {
      return Refuse("malformed Hello");
    }
    if (version != kProtocolVersion) {
      return Refuse(StrCat("peer speaks protocol version ", version));
    }
    if (peer_.cluster != self_.cluster) {
      return Refuse(
          StrCat("peer belongs to cluster '", peer_.cluster, "', this is '", self_.cluster, "'"));
    }
    if (peer_.member_id == self_.member_id) {
      return Refuse("a connection from this member to itself");
    }
    const std::string transcript =
        Transcript(self_.cluster, peer_.member_id, self_.member_id, channel_, peer_nonce_, nonce_);
    std::string challenge;
    PutU64(&challenge, self_.member_id);
    PutString(&challenge, self_.member_name);
    challenge.append(nonce_);
    challenge.append(Mac(secret_, "weft-accept", transcript));
    state_ = State::kAwaitProof;
    HandshakeStep step;
    step.reply = Frame(HandshakeType::kChallenge, challenge);
    return step;
  }
  if (state_ == State::kAwaitProof && type == static_cast<uint8_t>(HandshakeType::kProof)) {
    state_ = State::kFailed;
    const std::string transcript =
        Transcript(self_.cluster, peer_.member_id, self_.member_id, channel_, peer_nonce_, nonce_);
    if (!SameMac(payload, Mac(secret_, "weft-dial", transcript))) {
      return Refuse("the dialer does not know the cluster secret");
    }
    state_ = State::kDone;
    HandshakeStep step;
    step.reply = Frame(HandshakeType::kWelcome, "");
    step.established = true;
    return step;
  }
  state_ = State::kFailed;
  return Refuse(StrCat("unexpected frame type ", type, " during the handshake"));
}

}  // namespace weft::transport
