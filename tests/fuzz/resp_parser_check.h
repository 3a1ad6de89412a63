// The property the RESP request parser must keep on any input, shared by the libFuzzer target
// (resp_parser_fuzzer) and the corpus replay unit test (resp_parser_corpus_test).
//
// The property: parsing a byte stream gives the same commands and the same final outcome
// (incomplete, or the same protocol error text) whether the bytes arrive whole, one byte at a
// time, or in pieces whose sizes are derived from the input itself; consumed() never exceeds
// the input, a complete request consumes at least one byte, multibulk arguments point into
// the consumed bytes, and bytes_needed_hint() never promises completion too early. It is
// checked under Redis's default limits, under tiny limits (so the fuzzer reaches every limit
// with short inputs), and for an unauthenticated client.
//
// Thread safety: a pure function.
#pragma once

#include <string>
#include <string_view>

namespace weft::fuzz {

// Returns "" when the parser keeps the property on `data`; otherwise a description of the
// first violation, naming the configuration and the arrival pattern.
std::string CheckRequestParser(std::string_view data);

}  // namespace weft::fuzz
