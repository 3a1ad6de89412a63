// libFuzzer target for the RESP request parser: any input must keep the property that
// CheckRequestParser describes (chunked parsing equals whole parsing, consumed() in bounds).
// Built only with WEFT_FUZZ=ON under clang; tests/fuzz/CMakeLists.txt runs it as a CTest test.
//
// Thread safety: libFuzzer calls the entry point from one thread.

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>

#include "tests/fuzz/resp_parser_check.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string violation =
      weft::fuzz::CheckRequestParser(std::string_view(reinterpret_cast<const char*>(data), size));
  if (!violation.empty()) {
    std::fprintf(stderr, "resp_parser_fuzzer: %s\n", violation.c_str());
    std::abort();
  }
  return 0;
}
