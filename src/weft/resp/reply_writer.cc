#include "weft/resp/reply_writer.h"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstring>

#include "weft/base/check.h"

namespace weft::resp {
namespace {

// Room for a prefix, 20 digits, a sign and "\r\n".
constexpr size_t kHeaderBytesMax = 32;

// Pairs of decimal digits, so formatting takes one division per two digits.
constexpr char kDigitPairs[] =
    "00010203040506070809"
    "10111213141516171819"
    "20212223242526272829"
    "30313233343536373839"
    "40414243444546474849"
    "50515253545556575859"
    "60616263646566676869"
    "70717273747576777879"
    "80818283848586878889"
    "90919293949596979899";

// Writes the decimal digits of `v` so that they end just before `end`; returns their start.
char* FormatDigitsBackward(uint64_t v, char* end) {
  char* p = end;
  while (v >= 100) {
    const size_t pair = static_cast<size_t>(v % 100) * 2;
    v /= 100;
    *--p = kDigitPairs[pair + 1];
    *--p = kDigitPairs[pair];
  }
  if (v >= 10) {
    const size_t pair = static_cast<size_t>(v) * 2;
    *--p = kDigitPairs[pair + 1];
    *--p = kDigitPairs[pair];
  } else {
    *--p = static_cast<char>('0' + v);
  }
  return p;
}

}  // namespace

ReplyWriter::ReplyWriter(std::string* out, int protocol) : out_(out), resp3_(protocol == 3) {
  WEFT_CHECK(out != nullptr);
  WEFT_DCHECK(protocol == 2 || protocol == 3);
}

void ReplyWriter::set_protocol(int protocol) {
  WEFT_DCHECK(protocol == 2 || protocol == 3);
  resp3_ = protocol == 3;
}

void ReplyWriter::Header(char prefix, uint64_t n) {
  char buffer[kHeaderBytesMax];
  char* end = buffer + sizeof(buffer);
  *--end = '\n';
  *--end = '\r';
  char* start = FormatDigitsBackward(n, end);
  *--start = prefix;
  out_->append(start, static_cast<size_t>(buffer + sizeof(buffer) - start));
}

void ReplyWriter::AppendLine(std::string_view s) {
  const size_t old_size = out_->size();
  out_->append(s);
  // Almost every line is clean; look before touching the bytes.
  if (s.find_first_of("\r\n") == std::string_view::npos) {
    out_->append("\r\n", 2);
    return;
  }
  for (size_t i = old_size; i < out_->size(); ++i) {
    char& c = (*out_)[i];
    if (c == '\r' || c == '\n')
      c = ' ';
  }
  out_->append("\r\n", 2);
}

void ReplyWriter::SimpleString(std::string_view s) {
  out_->push_back('+');
  AppendLine(s);
}

void ReplyWriter::Error(std::string_view message) {
  out_->push_back('-');
  AppendLine(message);
}

void ReplyWriter::Integer(int64_t v) {
  char buffer[kHeaderBytesMax];
  char* end = buffer + sizeof(buffer);
  *--end = '\n';
  *--end = '\r';
  // Negate in unsigned arithmetic so INT64_MIN has a magnitude too.
  const uint64_t magnitude = v < 0 ? ~static_cast<uint64_t>(v) + 1 : static_cast<uint64_t>(v);
  char* start = FormatDigitsBackward(magnitude, end);
  if (v < 0)
    *--start = '-';
  *--start = ':';
  out_->append(start, static_cast<size_t>(buffer + sizeof(buffer) - start));
}

void ReplyWriter::Bulk(std::string_view s) {
  Header('$', s.size());
  out_->append(s);
  out_->append("\r\n", 2);
}

void ReplyWriter::Null() {
  if (resp3_) {
    out_->append("_\r\n", 3);
  } else {
    out_->append("$-1\r\n", 5);
  }
}

void ReplyWriter::NullArray() {
  if (resp3_) {
    out_->append("_\r\n", 3);
  } else {
    out_->append("*-1\r\n", 5);
  }
}

void ReplyWriter::ArrayHeader(size_t n) {
  Header('*', n);
}

void ReplyWriter::MapHeader(size_t n) {
  if (resp3_) {
    Header('%', n);
  } else {
    Header('*', 2 * static_cast<uint64_t>(n));
  }
}

void ReplyWriter::SetHeader(size_t n) {
  Header(resp3_ ? '~' : '*', n);
}

void ReplyWriter::PushHeader(size_t n) {
  Header(resp3_ ? '>' : '*', n);
}

void ReplyWriter::Double(double v) {
  // "%.17g" of the largest finite double needs 23 bytes; a 32-byte buffer holds any of them.
  char buffer[kHeaderBytesMax];
  std::string_view text;
  if (std::isnan(v)) {
    // printf prints "-nan" for a NaN with its sign bit set; RESP3 knows only "nan".
    text = "nan";
  } else if (std::isinf(v)) {
    text = v > 0 ? "inf" : "-inf";
  } else {
    // to_chars with a precision is specified as printf's "%.*g" in the C locale.
    const std::to_chars_result result =
        std::to_chars(buffer, buffer + sizeof(buffer), v, std::chars_format::general, 17);
    WEFT_CHECK(result.ec == std::errc());
    text = std::string_view(buffer, static_cast<size_t>(result.ptr - buffer));
  }
  if (resp3_) {
    out_->push_back(',');
    out_->append(text);
    out_->append("\r\n", 2);
  } else {
    Bulk(text);
  }
}

void ReplyWriter::Boolean(bool v) {
  if (resp3_) {
    out_->append(v ? "#t\r\n" : "#f\r\n", 4);
  } else {
    out_->append(v ? ":1\r\n" : ":0\r\n", 4);
  }
}

void ReplyWriter::Verbatim(std::string_view format3, std::string_view text) {
  if (!resp3_) {
    Bulk(text);
    return;
  }
  Header('=', static_cast<uint64_t>(text.size()) + 4);
  char format[4] = {' ', ' ', ' ', ':'};
  if (!format3.empty())
    std::memcpy(format, format3.data(), std::min<size_t>(format3.size(), 3));
  out_->append(format, sizeof(format));
  out_->append(text);
  out_->append("\r\n", 2);
}

void ReplyWriter::Ok() {
  out_->append("+OK\r\n", 5);
}

}  // namespace weft::resp
