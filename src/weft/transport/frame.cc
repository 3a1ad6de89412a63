#include "weft/transport/frame.h"

#include <xxhash.h>

#include "weft/base/strings.h"

namespace weft::transport {
namespace {

uint32_t Checksum(uint8_t type, std::string_view payload) {
  return static_cast<uint32_t>(XXH3_64bits_withSeed(payload.data(), payload.size(), type));
}

void PutU32(char* out, uint32_t value) {
  for (int i = 0; i < 4; ++i) {
    out[i] = static_cast<char>(value >> (8 * i));
  }
}

uint32_t GetU32(const char* in) {
  uint32_t value = 0;
  for (int i = 0; i < 4; ++i) {
    value |= uint32_t{static_cast<uint8_t>(in[i])} << (8 * i);
  }
  return value;
}

}  // namespace

void AppendFrame(std::string* out, uint8_t type, std::string_view payload) {
  char header[kFrameHeaderBytes] = {};
  header[0] = static_cast<char>(kProtocolVersion);
  header[1] = static_cast<char>(type);
  PutU32(header + 4, static_cast<uint32_t>(payload.size()));
  PutU32(header + 8, Checksum(type, payload));
  out->append(header, kFrameHeaderBytes);
  out->append(payload.data(), payload.size());
}

void FrameDecoder::Feed(const char* data, size_t size) {
  if (consumed_ > 0 && consumed_ >= buffer_.size() / 2) {
    buffer_.erase(0, consumed_);  // compact: amortised O(1) per byte
    consumed_ = 0;
  }
  buffer_.append(data, size);
}

FrameDecoder::Result FrameDecoder::Next(uint8_t* type, std::string_view* payload) {
  if (!error_.ok()) {
    return Result::kError;
  }
  const size_t available = buffer_.size() - consumed_;
  if (available < kFrameHeaderBytes) {
    return Result::kNeedMore;
  }
  const char* header = buffer_.data() + consumed_;
  const auto version = static_cast<uint8_t>(header[0]);
  if (version != kProtocolVersion) {
    error_ = absl::InvalidArgumentError(
        StrCat("frame of protocol version ", version, ", this member speaks ", kProtocolVersion));
    return Result::kError;
  }
  if (header[2] != 0 || header[3] != 0) {
    error_ = absl::InvalidArgumentError("frame with unknown flags");
    return Result::kError;
  }
  const uint32_t length = GetU32(header + 4);
  if (length > max_payload_bytes_) {
    error_ = absl::InvalidArgumentError(
        StrCat("frame payload of ", length, " bytes exceeds the limit of ", max_payload_bytes_));
    return Result::kError;
  }
  if (available < kFrameHeaderBytes + length) {
    return Result::kNeedMore;
  }
  *type = static_cast<uint8_t>(header[1]);
  *payload = std::string_view(header + kFrameHeaderBytes, length);
  if (Checksum(*type, *payload) != GetU32(header + 8)) {
    error_ = absl::DataLossError(
        StrCat("frame checksum mismatch (type ", *type, ", ", length, " bytes)"));
    return Result::kError;
  }
  consumed_ += kFrameHeaderBytes + length;
  return Result::kFrame;
}

}  // namespace weft::transport
