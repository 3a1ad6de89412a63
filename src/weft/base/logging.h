// Logging glue: weft logs through spdlog's default logger. server/ configures it (level,
// format); libraries only call these macros so that tests can silence or capture them.
//
// Thread safety: spdlog's default logger is thread-safe.
#pragma once

#include <spdlog/spdlog.h>

#define WEFT_LOG_DEBUG(...) SPDLOG_DEBUG(__VA_ARGS__)
#define WEFT_LOG_INFO(...) SPDLOG_INFO(__VA_ARGS__)
#define WEFT_LOG_WARN(...) SPDLOG_WARN(__VA_ARGS__)
#define WEFT_LOG_ERROR(...) SPDLOG_ERROR(__VA_ARGS__)
