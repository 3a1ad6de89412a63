// Redis-compatible glob matching (the rules of Redis's stringmatchlen): `*` any run, `?` any
// byte, `[abc]`, `[^abc]`, `[a-z]` classes, and `\` escaping the next byte. Used by KEYS,
// SCAN MATCH, CONFIG GET and CLIENT commands so patterns mean what Redis users expect.
//
// Thread safety: pure function.
#pragma once

#include <string_view>

namespace weft {

bool GlobMatch(std::string_view pattern, std::string_view text, bool ignore_case = false);

}  // namespace weft
