// ReplyWriter: appends Redis replies, in RESP2 or RESP3, to a connection's output buffer.
//
// Commands describe their reply with the RESP3 vocabulary (maps, sets, doubles, booleans,
// verbatim strings, nulls); the writer lowers each to what a RESP2 client expects, the way
// Redis 7.0.15's addReply* functions do (docs/design/resp.md has the table). It depends on
// base/ only and knows nothing of commands or sessions. Numbers and lengths are formatted
// without snprintf: this is on the path of every reply redis-benchmark measures.
//
// The writer only appends: it never reads, clears or shrinks the buffer. Bounding the buffer is
// the caller's job (server/ checks the output buffer limits between commands).
//
// Thread safety: not thread-safe; a writer and its buffer belong to one connection's thread.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace weft::resp {

class ReplyWriter {
 public:
  // REQUIRES: out != nullptr and outlives the writer; protocol is 2 or 3.
  ReplyWriter(std::string* out, int protocol);

  // Switches the encoding for the replies that follow (HELLO). REQUIRES: protocol is 2 or 3.
  void set_protocol(int protocol);
  int protocol() const { return resp3_ ? 3 : 2; }

  // +s\r\n. CR and LF inside `s` become spaces so a reply can never break the framing.
  void SimpleString(std::string_view s);
  // -message\r\n. `message` starts with its error code ("ERR syntax error", "WRONGTYPE ...");
  // CR and LF inside become spaces, as Redis does for formatted errors.
  void Error(std::string_view message);
  // :v\r\n
  void Integer(int64_t v);
  // $len\r\n s \r\n
  void Bulk(std::string_view s);
  // A missing value. RESP2 $-1\r\n; RESP3 _\r\n.
  void Null();
  // A missing aggregate. RESP2 *-1\r\n; RESP3 _\r\n.
  void NullArray();
  // *n\r\n; n elements follow.
  void ArrayHeader(size_t n);
  // RESP3 %n\r\n; RESP2 *2n\r\n. n key/value pairs (2n elements) follow.
  void MapHeader(size_t n);
  // RESP3 ~n\r\n; RESP2 *n\r\n.
  void SetHeader(size_t n);
  // RESP3 >n\r\n (out-of-band push); RESP2 *n\r\n.
  void PushHeader(size_t n);
  // RESP3 ,<v>\r\n; RESP2 a bulk string. Finite values are formatted like printf's "%.17g"
  // (Redis 7.0.15), infinities as "inf" / "-inf" and any NaN as "nan".
  void Double(double v);
  // RESP3 #t\r\n / #f\r\n; RESP2 :1\r\n / :0\r\n.
  void Boolean(bool v);
  // RESP3 =<len>\r\n<fmt>:<text>\r\n where <fmt> is the first three bytes of `format3`
  // padded with spaces ("txt", "mkd"); RESP2 a bulk string of `text`.
  void Verbatim(std::string_view format3, std::string_view text);
  // +OK\r\n
  void Ok();

 private:
  // Appends <prefix><n>\r\n.
  void Header(char prefix, uint64_t n);
  // Appends `s`, then replaces CR and LF in the appended bytes with spaces.
  void AppendLine(std::string_view s);

  std::string* out_;
  bool resp3_;
};

}  // namespace weft::resp
