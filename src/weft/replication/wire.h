// Byte-level encoding shared by every replication message: little-endian fixed-width integers,
// LEB128 varints and length-prefixed byte strings.
//
// The reader never trusts a length it reads: every read is checked against the bytes left, and
// a short or malformed input turns the reader into a failed state (ok() == false) instead of
// reading past the end. Decoders check ok() once at the end of a message, which keeps them
// short without giving up safety (a failed reader returns zeros and empty strings).
#pragma once

#include <cstdint>
#include <cstring>
#include <string>
#include <string_view>

namespace weft::replication {

class ByteWriter {
 public:
  explicit ByteWriter(std::string* out) : out_(out) {}

  void U8(uint8_t value) { out_->push_back(static_cast<char>(value)); }
  void U64(uint64_t value) {
    char bytes[8];
    for (int i = 0; i < 8; ++i) {
      bytes[i] = static_cast<char>(value >> (8 * i));
    }
    out_->append(bytes, 8);
  }
  void Varint(uint64_t value) {
    while (value >= 0x80) {
      out_->push_back(static_cast<char>((value & 0x7f) | 0x80));
      value >>= 7;
    }
    out_->push_back(static_cast<char>(value));
  }
  void Bytes(std::string_view bytes) {
    Varint(bytes.size());
    out_->append(bytes.data(), bytes.size());
  }

 private:
  std::string* out_;
};

class ByteReader {
 public:
  explicit ByteReader(std::string_view in) : in_(in) {}

  bool ok() const { return ok_; }
  bool empty() const { return in_.empty(); }
  size_t remaining() const { return in_.size(); }

  uint8_t U8() {
    if (!Need(1)) {
      return 0;
    }
    const auto value = static_cast<uint8_t>(in_[0]);
    in_.remove_prefix(1);
    return value;
  }
  uint64_t U64() {
    if (!Need(8)) {
      return 0;
    }
    uint64_t value = 0;
    for (int i = 0; i < 8; ++i) {
      value |= uint64_t{static_cast<uint8_t>(in_[i])} << (8 * i);
    }
    in_.remove_prefix(8);
    return value;
  }
  uint64_t Varint() {
    uint64_t value = 0;
    for (int shift = 0; shift < 64; shift += 7) {
      if (!Need(1)) {
        return 0;
      }
      const auto byte = static_cast<uint8_t>(in_[0]);
      in_.remove_prefix(1);
      value |= uint64_t{byte & 0x7fu} << shift;
      if ((byte & 0x80) == 0) {
        return value;
      }
    }
    ok_ = false;  // more than ten bytes: not a varint we wrote
    return 0;
  }
  // A view into the input, valid as long as the input is.
  std::string_view Bytes() {
    const uint64_t size = Varint();
    if (!Need(size)) {
      return {};
    }
    std::string_view bytes = in_.substr(0, size);
    in_.remove_prefix(size);
    return bytes;
  }
  void Fail() { ok_ = false; }

 private:
  bool Need(uint64_t bytes) {
    if (!ok_ || in_.size() < bytes) {
      ok_ = false;
      return false;
    }
    return true;
  }

  std::string_view in_;
  bool ok_ = true;
};

}  // namespace weft::replication
