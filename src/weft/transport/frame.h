// Frames: the unit every peer connection carries (docs/design/peer-protocol.md).
//
//   offset size field
//   0      1    protocol version (kProtocolVersion)
//   1      1    type (0-15: the transport's handshake; 16+: replication, messages.h)
//   2      2    flags (0; anything else is refused)
//   4      4    payload length, little-endian
//   8      4    checksum: low 32 bits of XXH3_64(payload, seed = type)
//   12     n    payload
//
// The decoder never trusts an announced length: it buffers only what has arrived, so a peer
// announcing 600 MiB and sending 12 bytes costs 12 bytes.
//
// Thread safety: values; a FrameDecoder belongs to one connection.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "weft/base/status.h"

namespace weft::transport {

inline constexpr uint8_t kProtocolVersion = 1;
inline constexpr size_t kFrameHeaderBytes = 12;
// A 512 MiB value (Redis's proto-max-bulk-len) plus its key and record headers.
inline constexpr size_t kFramePayloadMax = size_t{600} << 20;

void AppendFrame(std::string* out, uint8_t type, std::string_view payload);

class FrameDecoder {
 public:
  explicit FrameDecoder(size_t max_payload_bytes = kFramePayloadMax)
      : max_payload_bytes_(max_payload_bytes) {}

  // Appends received bytes.
  void Feed(const char* data, size_t size);

  enum class Result { kFrame, kNeedMore, kError };
  // The next complete frame: type and payload (valid until the next Feed or Next). kError
  // leaves the reason in error() and the decoder unusable.
  Result Next(uint8_t* type, std::string_view* payload);

  const Status& error() const { return error_; }
  size_t buffered() const { return buffer_.size() - consumed_; }

 private:
  const size_t max_payload_bytes_;
  std::string buffer_;
  size_t consumed_ = 0;
  Status error_;
};

}  // namespace weft::transport
