// Status and StatusOr: how weft reports recoverable errors.
//
// weft uses Abseil's types under its own names so that every layer speaks one error vocabulary;
// both are [[nodiscard]]. Errors become RESP error strings only in server/.
//
// Thread safety: values; safe to copy between threads.
#pragma once

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace weft {

using Status = absl::Status;
template <typename T>
using StatusOr = absl::StatusOr<T>;

}  // namespace weft

#define WEFT_STATUS_CONCAT_INNER(a, b) a##b
#define WEFT_STATUS_CONCAT(a, b) WEFT_STATUS_CONCAT_INNER(a, b)

// Returns from the enclosing function when `expr` (a Status) is not OK.
#define WEFT_RETURN_IF_ERROR(expr)        \
  do {                                    \
    ::weft::Status weft_status_ = (expr); \
    if (!weft_status_.ok())               \
      return weft_status_;                \
  } while (false)

// `WEFT_ASSIGN_OR_RETURN(auto x, MakeX());` declares x from a StatusOr or returns its error.
#define WEFT_ASSIGN_OR_RETURN(lhs, expr) \
  WEFT_ASSIGN_OR_RETURN_IMPL(WEFT_STATUS_CONCAT(weft_statusor_, __LINE__), lhs, expr)
#define WEFT_ASSIGN_OR_RETURN_IMPL(tmp, lhs, expr) \
  auto tmp = (expr);                               \
  if (!tmp.ok())                                   \
    return tmp.status();                           \
  lhs = std::move(tmp).value()
