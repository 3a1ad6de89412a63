// Invariant checks that stay on in production builds.
//
// WEFT_CHECK guards invariants whose failure would corrupt data: it logs the failed condition
// with its source location and aborts. WEFT_DCHECK is for costly checks and compiles away in
// NDEBUG builds. Bad input from a client or a peer is never a CHECK; it is an error reply.
//
// Thread safety: callable from any thread.
#pragma once

#include <cstdio>
#include <cstdlib>

namespace weft::internal {

[[noreturn]] inline void CheckFailed(const char* condition, const char* file, int line) {
  std::fprintf(stderr, "weft: CHECK failed at %s:%d: %s\n", file, line, condition);
  std::fflush(stderr);
  std::abort();
}

}  // namespace weft::internal

#define WEFT_CHECK(condition)                                        \
  do {                                                               \
    if (!(condition)) [[unlikely]] {                                 \
      ::weft::internal::CheckFailed(#condition, __FILE__, __LINE__); \
    }                                                                \
  } while (false)

#ifdef NDEBUG
#define WEFT_DCHECK(condition) \
  do {                         \
  } while (false && (condition))
#else
#define WEFT_DCHECK(condition) WEFT_CHECK(condition)
#endif
