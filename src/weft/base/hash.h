// Hashing helpers over xxHash (XXH3), used for shard selection, hash tables and digests.
//
// Thread safety: pure functions.
#pragma once

#include <xxhash.h>

#include <cstdint>
#include <string_view>

namespace weft {

inline uint64_t Hash64(std::string_view bytes, uint64_t seed = 0) {
  return XXH3_64bits_withSeed(bytes.data(), bytes.size(), seed);
}

}  // namespace weft
