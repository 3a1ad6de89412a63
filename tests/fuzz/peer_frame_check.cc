#include "tests/fuzz/peer_frame_check.h"

#include <algorithm>
#include <cstring>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "weft/base/hash.h"
#include "weft/base/random.h"
#include "weft/base/strings.h"
#include "weft/transport/frame.h"
#include "weft/transport/handshake.h"

namespace weft::fuzz {
namespace {

using transport::AcceptorHandshake;
using transport::DialerHandshake;
using transport::Frame;
using transport::FrameDecoder;
using transport::HandshakeStep;
using transport::HandshakeType;
using transport::PeerIdentity;

// Inputs up to this size are also fed one byte at a time.
constexpr size_t kByteAtATimeBytesMax = 8192;
// A limit small enough that short inputs reach it.
constexpr size_t kTinyPayloadMax = 64;

constexpr const char* kSecret = "fuzzing-cluster-secret";
const PeerIdentity kDialer{"fuzz", 1, "dialer"};
const PeerIdentity kAcceptor{"fuzz", 2, "acceptor"};

std::string FixedNonce(char fill) {
  return std::string(transport::kNonceBytes, fill);
}

struct Trace {
  std::vector<std::pair<uint8_t, std::string>> frames;
  std::string end;  // "need more" or "error: <text>"
  size_t consumed = 0;
  std::string violation;
};

// Returns the size of the next piece to feed given how many bytes remain (>= 1).
using PieceSizer = std::function<size_t(size_t remaining)>;

Trace Decode(std::string_view data, size_t max_payload_bytes, bool zero_copy,
             const PieceSizer& next_piece) {
  FrameDecoder decoder(max_payload_bytes);
  Trace trace;
  size_t fed = 0;
  size_t largest_piece = 0;
  while (true) {
    Frame frame;
    const FrameDecoder::Result result = decoder.Next(&frame);
    if (result == FrameDecoder::Result::kFrame) {
      trace.frames.emplace_back(frame.type, std::string(frame.payload));
      trace.consumed += transport::kFrameHeaderBytes + frame.payload.size();
      if (frame.payload.size() > max_payload_bytes) {
        trace.violation = "a frame over the limit was returned";
      }
      continue;
    }
    if (result == FrameDecoder::Result::kError) {
      trace.end = StrCat("error: ", decoder.error().message());
      if (decoder.error().ok()) {
        trace.violation = "kError with an ok error()";
      }
      if (decoder.Next(&frame) != FrameDecoder::Result::kError) {
        trace.violation = "an error was not final";
      }
      break;
    }
    if (decoder.buffered_bytes() != fed - trace.consumed) {
      trace.violation = "buffered_bytes() is not what arrived minus what was returned";
    }
    // The capacity bound of frame.h: a few times what is buffered plus the largest append.
    if (decoder.capacity_bytes() >
        std::max<size_t>(4 << 20, 4 * (decoder.buffered_bytes() + largest_piece + 4096))) {
      trace.violation = StrCat("capacity ", decoder.capacity_bytes(), " for ",
                               decoder.buffered_bytes(), " buffered bytes");
    }
    if (fed == data.size()) {
      trace.end = "need more";
      break;
    }
    const size_t take = std::clamp<size_t>(next_piece(data.size() - fed), 1, data.size() - fed);
    largest_piece = std::max(largest_piece, take);
    if (zero_copy) {
      const std::span<char> space = decoder.PrepareAppend(take);
      if (space.size() < take) {
        trace.violation = "PrepareAppend returned less room than asked for";
        break;
      }
      std::memcpy(space.data(), data.data() + fed, take);
      decoder.CommitAppend(take);
    } else {
      decoder.Feed(data.data() + fed, take);
    }
    fed += take;
  }
  return trace;
}

std::string Compare(const Trace& whole, const Trace& other, const char* how) {
  if (!other.violation.empty()) {
    return StrCat(how, ": ", other.violation);
  }
  if (other.frames != whole.frames) {
    return StrCat(how, ": ", other.frames.size(), " frames, whole input: ", whole.frames.size());
  }
  if (other.end != whole.end) {
    return StrCat(how, ": ended '", other.end, "', whole input: '", whole.end, "'");
  }
  return "";
}

std::string CheckDecoder(std::string_view data, size_t max_payload_bytes, Trace* whole_out) {
  const char* limit = max_payload_bytes == kTinyPayloadMax ? "tiny limit" : "default limit";
  const Trace whole = Decode(data, max_payload_bytes, false, [](size_t n) { return n; });
  if (!whole.violation.empty()) {
    return StrCat(limit, ", whole: ", whole.violation);
  }
  // Canonical: the frames re-encode to exactly the bytes they were decoded from.
  std::string encoded;
  for (const auto& [type, payload] : whole.frames) {
    transport::AppendFrame(&encoded, type, payload);
  }
  if (encoded != data.substr(0, whole.consumed)) {
    return StrCat(limit, ": decoded frames do not re-encode to their bytes");
  }
  if (whole.end == "need more" && data.size() - whole.consumed >= transport::kFrameHeaderBytes) {
    const std::string_view rest = data.substr(whole.consumed);
    size_t length = 0;
    for (int i = 0; i < 4; ++i) {
      length |= size_t{static_cast<uint8_t>(rest[4 + i])} << (8 * i);
    }
    if (rest.size() >= transport::kFrameHeaderBytes + length) {
      return StrCat(limit, ": needs more with a whole frame buffered");
    }
  }
  const Random random(Hash64(data, max_payload_bytes));
  for (const bool zero_copy : {false, true}) {
    Random replay = random;  // the same pieces for both paths
    const PieceSizer pieces = [&replay](size_t) {
      return 1 + replay.Uniform(300);
    };
    const std::string violation = Compare(whole, Decode(data, max_payload_bytes, zero_copy, pieces),
                                          zero_copy ? "zero-copy pieces" : "pieces");
    if (!violation.empty()) {
      return StrCat(limit, ", ", violation);
    }
  }
  if (data.size() <= kByteAtATimeBytesMax) {
    const std::string violation = Compare(
        whole, Decode(data, max_payload_bytes, false, [](size_t) { return 1; }), "byte at a time");
    if (!violation.empty()) {
      return StrCat(limit, ", ", violation);
    }
  }
  *whole_out = whole;
  return "";
}

// A reply must be exactly one frame of the expected handshake type.
std::string CheckReply(const std::string& reply, HandshakeType expected) {
  FrameDecoder decoder(transport::kHandshakePayloadMax);
  decoder.Feed(reply.data(), reply.size());
  Frame frame;
  if (decoder.Next(&frame) != FrameDecoder::Result::kFrame ||
      frame.type != static_cast<uint8_t>(expected) || decoder.buffered_bytes() != 0) {
    return "a reply is not one whole frame of the expected type";
  }
  return "";
}

// Feeds frames to a handshake until it refuses; checks the state machine's promises.
template <typename Handshake>
std::string CheckHandshake(Handshake& handshake, bool is_acceptor,
                           const std::vector<std::pair<uint8_t, std::string>>& frames,
                           bool* established_out) {
  bool failed = false;
  bool established = false;
  std::vector<uint8_t> accepted_types;
  for (const auto& [type, payload] : frames) {
    HandshakeStep step = handshake.OnFrame(type, payload);
    if (!step.status.ok()) {
      if (step.status.message().empty()) {
        return "a refusal without a reason";
      }
      if (!step.reply.empty() || step.established) {
        return "a refusal that sends or establishes";
      }
      failed = true;
      continue;
    }
    if (failed) {
      return "a frame accepted after a refusal";
    }
    if (established) {
      return "a frame accepted after the handshake completed";
    }
    accepted_types.push_back(type);
    if (is_acceptor) {
      if (type == static_cast<uint8_t>(HandshakeType::kHello)) {
        if (std::string violation = CheckReply(step.reply, HandshakeType::kChallenge);
            !violation.empty()) {
          return violation;
        }
      } else if (type == static_cast<uint8_t>(HandshakeType::kProof)) {
        if (std::string violation = CheckReply(step.reply, HandshakeType::kWelcome);
            !violation.empty()) {
          return violation;
        }
      } else {
        return StrCat("the acceptor accepted frame type ", type);
      }
    } else if (type == static_cast<uint8_t>(HandshakeType::kChallenge)) {
      if (std::string violation = CheckReply(step.reply, HandshakeType::kProof);
          !violation.empty()) {
        return violation;
      }
    } else if (type != static_cast<uint8_t>(HandshakeType::kWelcome) || !step.reply.empty()) {
      return StrCat("the dialer accepted frame type ", type);
    }
    if (step.established) {
      const std::vector<uint8_t> expected =
          is_acceptor ? std::vector<uint8_t>{1, 3} : std::vector<uint8_t>{2, 4};
      if (accepted_types != expected) {
        return "established out of order";
      }
      established = true;
    }
    if (step.established != handshake.established()) {
      return "established() disagrees with the step";
    }
  }
  *established_out = established;
  return "";
}

}  // namespace

std::string CheckPeerFrames(std::string_view data, PeerFrameReport* report) {
  Trace whole;
  for (const size_t limit : {transport::kFramePayloadMax, kTinyPayloadMax}) {
    Trace trace;
    if (std::string violation = CheckDecoder(data, limit, &trace); !violation.empty()) {
      return violation;
    }
    if (limit == transport::kFramePayloadMax) {
      whole = std::move(trace);
    }
  }
  // A connection refuses big frames until the handshake is done; feed what it would let by.
  std::vector<std::pair<uint8_t, std::string>> handshake_frames;
  for (const auto& frame : whole.frames) {
    if (frame.second.size() > transport::kHandshakePayloadMax) {
      break;
    }
    handshake_frames.push_back(frame);
  }
  AcceptorHandshake acceptor(kAcceptor, kSecret, FixedNonce('a'));
  bool acceptor_established = false;
  if (std::string violation =
          CheckHandshake(acceptor, true, handshake_frames, &acceptor_established);
      !violation.empty()) {
    return StrCat("acceptor: ", violation);
  }
  DialerHandshake dialer(kDialer, kSecret, {1, 2}, FixedNonce('d'));
  bool dialer_established = false;
  if (std::string violation = CheckHandshake(dialer, false, handshake_frames, &dialer_established);
      !violation.empty()) {
    return StrCat("dialer: ", violation);
  }
  if (report != nullptr) {
    report->frames = whole.frames.size();
    report->acceptor_established = acceptor_established;
  }
  return "";
}

std::string ValidDialerBytes() {
  DialerHandshake dialer(kDialer, kSecret, {1, 2}, FixedNonce('d'));
  AcceptorHandshake acceptor(kAcceptor, kSecret, FixedNonce('a'));
  std::string bytes = dialer.Hello();
  auto payload_of = [](const std::string& frame) {
    return std::string_view(frame).substr(transport::kFrameHeaderBytes);
  };
  HandshakeStep challenge = acceptor.OnFrame(1, payload_of(bytes));
  HandshakeStep proof = dialer.OnFrame(2, payload_of(challenge.reply));
  bytes += proof.reply;
  transport::AppendFrame(&bytes, transport::kFirstUserFrameType, "first data frame");
  return bytes;
}

}  // namespace weft::fuzz
