// RequestParser: turns the bytes a client sends into command argument vectors, exactly as
// Redis 7.0.15 does (networking.c: processMultibulkBuffer, processInlineBuffer, and sds.c's
// sdssplitargs for inline quoting), including its protocol error texts.
//
// It sits at the bottom of the RESP layer and depends on base/ only: it neither reads sockets
// nor owns the query buffer. The caller (server/ Connection) keeps the bytes and calls Parse()
// on them; a request split across reads is resumed where it stopped, so a 1 M-argument MSET
// arriving in small reads costs linear time. Two forms are accepted:
//
//   multibulk  "*<count>\r\n" then <count> times "$<length>\r\n<length bytes>\r\n"
//   inline     a line ended by "\n" (or "\r\n"), split on blanks, with "..." and '...' quoting
//
// The decisions (complete / protocol error) depend only on the bytes, never on how they were
// split across reads: docs/design/resp.md explains how Redis's "too big" checks, which look at
// whatever happens to be buffered, are made independent of read boundaries.
//
// Thread safety: a RequestParser is not thread-safe; each connection owns one.
#pragma once

#include <cstddef>
#include <cstdint>
#include <limits>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace weft::resp {

// Limits that bound what one request may make the server hold. Defaults are Redis 7.0.15's.
struct ParserLimits {
  // Longest bulk argument (Redis's proto-max-bulk-len). Longer: "invalid bulk length".
  int64_t bulk_bytes_max = 512LL * 1024 * 1024;
  // Most arguments in one multibulk request. Redis 7.0.15 rejects counts above INT_MAX
  // ("invalid multibulk length"); the query buffer limit is what really bounds a request.
  int64_t multibulk_args_max = std::numeric_limits<int32_t>::max();
  // Longest inline line, and longest "*<count>" / "$<length>" line (PROTO_INLINE_MAX_SIZE).
  size_t inline_bytes_max = 64 * 1024;
  // While the client is not authenticated (SetAuthenticated(false)) Redis 7.0.15 accepts at
  // most 10 arguments and 16384-byte bulks ("unauthenticated multibulk/bulk length").
  int64_t unauthenticated_multibulk_args_max = 10;
  int64_t unauthenticated_bulk_bytes_max = 16384;
};

// Invariants: between calls the parser holds either nothing (after kComplete or
// kProtocolError, or before the first call) or the progress through one incomplete request,
// recorded as offsets from the start of the request so the caller may move its buffer.
class RequestParser {
 public:
  enum class State { kIncomplete, kComplete, kProtocolError };

  explicit RequestParser(ParserLimits limits = {});

  RequestParser(const RequestParser&) = delete;
  RequestParser& operator=(const RequestParser&) = delete;

  // Parses one request from the start of `input`.
  //
  // REQUIRES: if the previous call returned kIncomplete, `input` starts with the same bytes
  // as then (more may be appended; the buffer may have moved). Parsing resumes without
  // rescanning completed arguments.
  //
  // Returns
  //  kComplete: consumed() bytes form the request (always at least one byte). args() views
  //             point into `input` (or, for quoted inline arguments, into the parser) and are
  //             valid until `input`'s bytes move or the next Parse() call. args() may be empty
  //             (an empty inline line, "*0", "*-1"): the caller just skips the request.
  //  kIncomplete: nothing consumed yet. bytes_needed_hint() says how many more bytes at
  //             least are needed when known (inside a bulk), so the caller can reserve.
  //  kProtocolError: error() is Redis's text without the "-ERR " prefix, e.g.
  //             "Protocol error: invalid multibulk length". The caller replies and closes;
  //             a later Parse() starts a new request.
  State Parse(std::string_view input);

  // The arguments of the request the last kComplete Parse() returned.
  std::span<const std::string_view> args() const { return args_; }
  // Bytes of the request the last kComplete Parse() returned; 0 after other results.
  size_t consumed() const { return consumed_; }
  // After kIncomplete: the least number of bytes to append before the request can complete,
  // or 0 when unknown.
  size_t bytes_needed_hint() const { return bytes_needed_hint_; }
  // After kProtocolError: Redis's error text (without "-ERR "). May contain any byte the
  // client sent in place of '$' (including CR, which ReplyWriter::Error turns into a space).
  std::string_view error() const { return error_; }

  // Applies Redis's unauthenticated limits (ParserLimits::unauthenticated_*) while false.
  // The default is true: a server without a password never sets it.
  void SetAuthenticated(bool authenticated) { authenticated_ = authenticated; }
  bool authenticated() const { return authenticated_; }

  // Forgets any partial request, e.g. when the caller drops its buffered input.
  void Reset();

 private:
  enum class Kind { kNone, kInline, kMultibulk };
  enum class LineScan { kFound, kIncomplete, kTooBig };

  // One argument: `length` bytes at `offset`, from the start of the request or (when `owned`)
  // of inline_storage_.
  struct ArgSpan {
    size_t offset;
    size_t length;
    bool owned;
  };

  State ParseInline(std::string_view input);
  State ParseMultibulk(std::string_view input);
  // Splits an inline line like sdssplitargs. Returns false on unbalanced quotes.
  bool SplitInline(std::string_view line);
  // Looks for `terminator` in the line starting at `line_start`, the way Redis's strchr does
  // (a NUL byte hides everything after it). Sets *found to its offset on kFound.
  LineScan ScanLine(std::string_view input, size_t line_start, char terminator, size_t* found);
  void StartLine(size_t line_start);
  State Complete(std::string_view input, size_t consumed);
  State Fail(std::string_view message);

  ParserLimits limits_;
  bool authenticated_ = true;

  // Progress through the current request.
  Kind kind_ = Kind::kNone;
  size_t input_bytes_seen_ = 0;  // input size at the last kIncomplete, to check the REQUIRES
  size_t position_ = 0;          // start of the next line or bulk not yet consumed
  size_t scanned_to_ = 0;        // bytes of the current line already searched for its terminator
  bool line_has_nul_ = false;    // a NUL precedes the terminator: Redis would never find it
  int64_t args_remaining_ = -1;  // multibulk: arguments still to read; -1 before the count
  int64_t bulk_bytes_ = -1;      // multibulk: length of the bulk being read; -1 before "$"
  std::vector<ArgSpan> spans_;
  std::string inline_storage_;  // unescaped bytes of quoted inline arguments

  // Results.
  std::vector<std::string_view> args_;
  size_t consumed_ = 0;
  size_t bytes_needed_hint_ = 0;
  std::string error_;
};

}  // namespace weft::resp
