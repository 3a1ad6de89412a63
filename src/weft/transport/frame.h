// Frames: the unit every peer connection carries (docs/design/peer-protocol.md). Pure code,
// no I/O: the encoder appends to a string, the decoder is fed bytes and hands out frames.
//
//   offset size field
//   0      1    protocol version (kProtocolVersion)
//   1      1    type (0-15: the transport's handshake; 16+: replication, messages.h)
//   2      2    flags (0; anything else is refused)
//   4      4    payload length, little-endian
//   8      4    checksum: low 32 bits of XXH3_64bits_withSeed(payload, seed = type), LE
//   12     n    payload
//
// The checksum catches a broken sender or a desynchronised stream, not an attacker (the
// handshake authenticates a connection's start; see peer-protocol.md, "What it does not do").
//
// Thread safety: values; a FrameDecoder or FrameBuilder belongs to one thread at a time.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>

#include "weft/base/status.h"

namespace weft::transport {

inline constexpr uint8_t kProtocolVersion = 1;
inline constexpr size_t kFrameHeaderBytes = 12;
// Types below this belong to the transport's handshake; the rest to its users.
inline constexpr uint8_t kFirstUserFrameType = 16;
// A 512 MiB value (Redis's proto-max-bulk-len) plus its key and record headers.
inline constexpr size_t kFramePayloadMax = size_t{600} << 20;

// Appends one whole frame to *out. REQUIRES: payload.size() fits the 32-bit length (checked:
// a truncated length would desynchronise the stream). The receiver enforces its own limit
// (kFramePayloadMax by default) and closes the connection on a bigger frame.
void AppendFrame(std::string* out, uint8_t type, std::string_view payload);

// Builds one frame in place at the end of a string, so a large payload is written once: the
// constructor reserves the header, the caller appends the payload to out(), and Finish()
// fills in length and checksum. Nothing else may be appended to the string meanwhile.
//
//   FrameBuilder frame(&batch, kLaneItems);
//   EncodeRecords(frame.out());
//   frame.Finish();
class FrameBuilder {
 public:
  FrameBuilder(std::string* out, uint8_t type);
  // DCHECKs that the frame was finished or abandoned: a half-built frame would desynchronise
  // the stream.
  ~FrameBuilder();
  FrameBuilder(const FrameBuilder&) = delete;
  FrameBuilder& operator=(const FrameBuilder&) = delete;

  // The string to append the payload to (the one passed to the constructor).
  std::string* out() const { return out_; }
  size_t payload_bytes() const { return out_->size() - header_offset_ - kFrameHeaderBytes; }

  // Fills in the header. REQUIRES: not yet finished or abandoned.
  void Finish();
  // Removes the header and whatever payload was appended, leaving *out as it was.
  void Abandon();

 private:
  std::string* const out_;
  const size_t header_offset_;
  const uint8_t type_;
  bool done_ = false;
};

// Returns how many whole frames `bytes` holds if it is exactly a sequence of whole frames (as
// far as headers go: lengths are followed, contents are not checked), otherwise nullopt.
std::optional<size_t> CountWholeFrames(std::string_view bytes);

struct Frame {
  uint8_t type = 0;
  std::string_view payload;
};

// Incremental decoder for one connection's byte stream.
//
// Invariants: the buffer holds only bytes that arrived, never space for an announced length
// (a peer announcing 600 MiB and sending 12 bytes costs 12 bytes and the initial buffer); its
// capacity is at most about twice the bytes buffered plus the largest append requested;
// consumed bytes are reclaimed (moved or dropped) only when appending, so every byte is
// copied O(1) times amortised. An error is final: every later Next() returns it again.
class FrameDecoder {
 public:
  enum class Result { kFrame, kNeedMore, kError };

  explicit FrameDecoder(size_t max_payload_bytes = kFramePayloadMax);

  // Appends received bytes (a copy). Invalidates payloads returned by Next().
  void Feed(const char* data, size_t size);

  // For reading straight from a socket into the buffer: returns writable space of at least
  // min_bytes (often more) at the end of the buffered bytes; write into it, then CommitAppend
  // how much was written. Invalidates payloads returned by Next().
  std::span<char> PrepareAppend(size_t min_bytes);
  // REQUIRES: bytes <= the size of the span PrepareAppend last returned.
  void CommitAppend(size_t bytes);

  // The next complete frame. kFrame fills *frame; its payload stays valid until the next
  // Feed/PrepareAppend/Next. kNeedMore: wait for more bytes. kError: the stream is broken,
  // error() says why (bad version, nonzero flags, payload over the limit, checksum mismatch);
  // a header is judged as soon as its 12 bytes are in, before its payload arrives.
  Result Next(Frame* frame);

  const Status& error() const { return error_; }
  // Bytes received and not yet returned as frames.
  size_t buffered_bytes() const { return end_ - begin_; }
  size_t capacity_bytes() const { return capacity_; }

  size_t max_payload_bytes() const { return max_payload_bytes_; }
  // Applies to frames whose header has not been judged yet (the handshake uses a small limit
  // until the peer is authenticated).
  void set_max_payload_bytes(size_t bytes) { max_payload_bytes_ = bytes; }

  // Drops every buffered byte (a closing connection discarding what still arrives).
  void DiscardBuffered() { begin_ = end_ = 0; }

 private:
  size_t max_payload_bytes_;
  std::unique_ptr<char[]> data_;
  size_t capacity_ = 0;
  size_t begin_ = 0;     // first byte not yet returned as a frame
  size_t end_ = 0;       // one past the last received byte
  size_t prepared_ = 0;  // size of the span PrepareAppend returned last
  Status error_;
};

}  // namespace weft::transport
