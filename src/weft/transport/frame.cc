#include "weft/transport/frame.h"

#include <xxhash.h>

#include <algorithm>
#include <cstring>
#include <limits>

#include "weft/base/check.h"
#include "weft/base/strings.h"

#include <fmt/format.h>

namespace weft::transport {
namespace {

// The decoder's first allocation, and what it keeps after draining a bigger buffer: enough for
// the usual frames (lane batches are 256 KiB, image chunks <= 1 MiB) without reallocating,
// while a rare huge value does not pin hundreds of MiB to the connection for its lifetime.
constexpr size_t kInitialBufferBytes = 4 * 1024;
constexpr size_t kRetainedBufferBytes = 4 * 1024 * 1024;

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

void WriteHeader(char* header, uint8_t type, std::string_view payload) {
  WEFT_CHECK(payload.size() <= std::numeric_limits<uint32_t>::max());
  header[0] = static_cast<char>(kProtocolVersion);
  header[1] = static_cast<char>(type);
  header[2] = 0;
  header[3] = 0;
  PutU32(header + 4, static_cast<uint32_t>(payload.size()));
  PutU32(header + 8, Checksum(type, payload));
}

}  // namespace

void AppendFrame(std::string* out, uint8_t type, std::string_view payload) {
  char header[kFrameHeaderBytes];
  WriteHeader(header, type, payload);
  out->reserve(out->size() + kFrameHeaderBytes + payload.size());
  out->append(header, kFrameHeaderBytes);
  out->append(payload.data(), payload.size());
}

FrameBuilder::FrameBuilder(std::string* out, uint8_t type)
    : out_(out), header_offset_(out->size()), type_(type) {
  out_->append(kFrameHeaderBytes, '\0');
}

FrameBuilder::~FrameBuilder() {
  WEFT_DCHECK(done_);
}

void FrameBuilder::Finish() {
  WEFT_CHECK(!done_);
  done_ = true;
  char* header = out_->data() + header_offset_;
  WriteHeader(header, type_,
              std::string_view(header + kFrameHeaderBytes,
                               out_->size() - header_offset_ - kFrameHeaderBytes));
}

void FrameBuilder::Abandon() {
  WEFT_CHECK(!done_);
  done_ = true;
  out_->resize(header_offset_);
}

std::optional<size_t> CountWholeFrames(std::string_view bytes) {
  size_t frames = 0;
  while (!bytes.empty()) {
    if (bytes.size() < kFrameHeaderBytes) {
      return std::nullopt;
    }
    const size_t length = GetU32(bytes.data() + 4);
    if (bytes.size() - kFrameHeaderBytes < length) {
      return std::nullopt;
    }
    bytes.remove_prefix(kFrameHeaderBytes + length);
    ++frames;
  }
  return frames;
}

FrameDecoder::FrameDecoder(size_t max_payload_bytes) : max_payload_bytes_(max_payload_bytes) {}

void FrameDecoder::Feed(const char* data, size_t size) {
  if (size == 0) {
    return;
  }
  std::span<char> space = PrepareAppend(size);
  std::memcpy(space.data(), data, size);
  CommitAppend(size);
}

std::span<char> FrameDecoder::PrepareAppend(size_t min_bytes) {
  const size_t live = end_ - begin_;
  if (live == 0) {
    begin_ = end_ = 0;
    if (capacity_ > kRetainedBufferBytes && min_bytes <= kRetainedBufferBytes) {
      data_.reset();  // a huge frame has drained: give its memory back
      capacity_ = 0;
    }
  }
  if (capacity_ - end_ < min_bytes) {
    if (begin_ >= live && live + min_bytes <= capacity_) {
      // Moving `live` bytes reclaims at least as many consumed ones: O(1) amortised per byte.
      std::memmove(data_.get(), data_.get() + begin_, live);
    } else {
      // Grows geometrically, so each byte is copied O(1) times amortised, and only for bytes
      // that arrived: capacity stays under 4 x (live + min_bytes).
      const size_t capacity = std::max({kInitialBufferBytes, 2 * capacity_, live + min_bytes});
      auto data = std::make_unique_for_overwrite<char[]>(capacity);
      if (live > 0) {
        std::memcpy(data.get(), data_.get() + begin_, live);
      }
      data_ = std::move(data);
      capacity_ = capacity;
    }
    begin_ = 0;
    end_ = live;
  }
  prepared_ = capacity_ - end_;
  return std::span<char>(data_.get() + end_, prepared_);
}

void FrameDecoder::CommitAppend(size_t bytes) {
  WEFT_CHECK(bytes <= prepared_);
  end_ += bytes;
  prepared_ = 0;
}

FrameDecoder::Result FrameDecoder::Next(Frame* frame) {
  if (!error_.ok()) {
    return Result::kError;
  }
  const size_t available = end_ - begin_;
  if (available < kFrameHeaderBytes) {
    return Result::kNeedMore;
  }
  const char* header = data_.get() + begin_;
  const auto version = static_cast<uint8_t>(header[0]);
  const auto type = static_cast<uint8_t>(header[1]);
  if (version != kProtocolVersion) {
    error_ = absl::InvalidArgumentError(
        StrCat("frame of protocol version ", version, "; this member speaks ", kProtocolVersion));
    return Result::kError;
  }
  if (header[2] != 0 || header[3] != 0) {
    const unsigned flags = static_cast<uint8_t>(header[2]) | (static_cast<uint8_t>(header[3]) << 8);
    error_ = absl::InvalidArgumentError(
        StrCat("frame of type ", type, " with unknown flags 0x", fmt::format("{:04x}", flags)));
    return Result::kError;
  }
  const size_t length = GetU32(header + 4);
  if (length > max_payload_bytes_) {
    error_ =
        absl::InvalidArgumentError(StrCat("frame of type ", type, " announces ", length,
                                          " payload bytes; the limit is ", max_payload_bytes_));
    return Result::kError;
  }
  if (available - kFrameHeaderBytes < length) {
    return Result::kNeedMore;
  }
  const std::string_view payload(header + kFrameHeaderBytes, length);
  const uint32_t expected = GetU32(header + 8);
  const uint32_t actual = Checksum(type, payload);
  if (actual != expected) {
    error_ = absl::DataLossError(StrCat("frame of type ", type, " with ", length,
                                        " payload bytes fails its checksum (header ",
                                        fmt::format("{:08x}, payload {:08x})", expected, actual)));
    return Result::kError;
  }
  begin_ += kFrameHeaderBytes + length;
  frame->type = type;
  frame->payload = payload;
  return Result::kFrame;
}

}  // namespace weft::transport
