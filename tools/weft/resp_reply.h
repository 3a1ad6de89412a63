// RESP2 on the client side, without I/O: encoding commands and parsing replies.
//
// The weft tools talk to weftd (and, for comparison, redis-server) with this and RespClient
// (resp_client.h). It is deliberately separate from src/weft/resp, which is the server's side of
// the protocol (it parses requests and writes replies); a client needs the opposite pair.
//
// Thread safety: pure functions and values.
#pragma once

#include <cstddef>
#include <cstdint>
#include <initializer_list>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "weft/base/status.h"

namespace weft::tools {

// One RESP2 reply. Only the members that belong to `type` are meaningful.
struct RespReply {
  enum class Type { kSimpleString, kError, kInteger, kBulkString, kNull, kArray };

  Type type = Type::kNull;
  std::string text;                 // kSimpleString, kError (without the '-'), kBulkString
  int64_t integer = 0;              // kInteger
  std::vector<RespReply> elements;  // kArray

  bool is_error() const { return type == Type::kError; }
  bool is_null() const { return type == Type::kNull; }
  // True for +OK.
  bool is_ok() const { return type == Type::kSimpleString && text == "OK"; }

  // A short human-readable rendering for error messages and logs ("+OK", "-ERR x", "$5 hello",
  // "*2 [...]"). Long strings are cut.
  std::string DebugString() const;
};

// Limits that bound what one reply may make a client hold.
struct ReplyLimits {
  // Longest bulk string (Redis's default proto-max-bulk-len).
  int64_t bulk_bytes_max = 512LL * 1024 * 1024;
  // Most elements in one array.
  int64_t array_elements_max = 16 * 1024 * 1024;
  // Deepest nesting of arrays (RESP2 replies weft sends nest at most twice).
  int depth_max = 16;
  // Longest "+...", "-...", ":...", "$n" or "*n" line.
  size_t line_bytes_max = 64 * 1024;
};

// Parses one reply from the start of `input`.
//
// Returns the reply and sets *consumed to its length when `input` holds a complete one;
// returns std::nullopt (and leaves *consumed alone) when more bytes are needed; returns
// DataLossError when the bytes are not RESP2 or break `limits` (the connection cannot be
// resynchronised after that and should be closed). Parsing starts over on every call, which is
// cheap for the small replies the tools read (a few KiB; arrays of at most a few thousand).
StatusOr<std::optional<RespReply>> ParseReply(std::string_view input, size_t* consumed,
                                              const ReplyLimits& limits = {});

// Appends `args` to *out as one RESP2 multibulk request ("*n\r\n$len\r\narg\r\n...").
void AppendCommand(std::string* out, std::initializer_list<std::string_view> args);
void AppendCommand(std::string* out, const std::vector<std::string>& args);

}  // namespace weft::tools
