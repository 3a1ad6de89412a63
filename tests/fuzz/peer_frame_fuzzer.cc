// libFuzzer target for the peer frame decoder and the handshake state machines: any input must
// keep the property that CheckPeerFrames describes (any chunking decodes alike, frames
// re-encode to their bytes, the buffer stays bounded, handshakes refuse cleanly and finally).
// Built only with WEFT_FUZZ=ON under clang; tests/fuzz/CMakeLists.txt runs it as a CTest test.
//
// Thread safety: libFuzzer calls the entry point from one thread.

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>

#include "tests/fuzz/peer_frame_check.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string violation =
      weft::fuzz::CheckPeerFrames(std::string_view(reinterpret_cast<const char*>(data), size));
  if (!violation.empty()) {
    std::fprintf(stderr, "peer_frame_fuzzer: %s\n", violation.c_str());
    std::abort();
  }
  return 0;
}
