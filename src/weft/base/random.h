// Random: the only source of randomness for weft's protocol and storage layers.
//
// A seeded generator (xoshiro256**, seeded through splitmix64) so that a run can be replayed
// from its seed. Production seeds it from the OS once, in server/, and logs the seed.
//
// Thread safety: not thread-safe; give each thread or component its own instance.
#pragma once

#include <cstdint>

namespace weft {

class Random {
 public:
  explicit Random(uint64_t seed) {
    for (uint64_t& word : state_) {
      seed += 0x9e3779b97f4a7c15ULL;
      uint64_t z = seed;
      z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
      z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
      word = z ^ (z >> 31);
    }
  }

  uint64_t Next() {
    const uint64_t result = RotateLeft(state_[1] * 5, 7) * 9;
    const uint64_t t = state_[1] << 17;
    state_[2] ^= state_[0];
    state_[3] ^= state_[1];
    state_[1] ^= state_[2];
    state_[0] ^= state_[3];
    state_[2] ^= t;
    state_[3] = RotateLeft(state_[3], 45);
    return result;
  }

  // Uniform in [0, bound). REQUIRES: bound > 0.
  uint64_t Uniform(uint64_t bound) {
    // Lemire's multiply-shift; the tiny bias is irrelevant for simulation and sampling.
    return static_cast<uint64_t>((static_cast<unsigned __int128>(Next()) * bound) >> 64);
  }

  // True with probability `numerator / denominator`.
  bool OneIn(uint64_t denominator) { return Uniform(denominator) == 0; }

 private:
  static uint64_t RotateLeft(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }

  uint64_t state_[4];
};

}  // namespace weft
