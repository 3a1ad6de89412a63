// Names the calling thread as `top -H`, `perf` and gdb show it (Linux keeps 15 characters).
#pragma once

#include <pthread.h>

#include <string>
#include <string_view>

namespace weft {

inline void SetThreadName(std::string_view name) {
  constexpr size_t kLinuxNameMax = 15;
  const std::string truncated(name.substr(0, kLinuxNameMax));
  (void)pthread_setname_np(pthread_self(), truncated.c_str());
}

}  // namespace weft
