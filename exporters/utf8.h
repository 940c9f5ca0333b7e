// UTF-8 for writers: names come from the target and may be invalid, so every
// exporter decodes them through one strict decoder.
#pragma once
#include <cstddef>
#include <string>
#include <string_view>

#include "symbolizer/unicode.h"  // append_utf8

namespace pyprofd {

// Decodes the code point at s[*i] and advances *i past it. On an invalid or
// truncated sequence, an overlong form or a value past U+10FFFF, returns false and
// advances one byte. Surrogates encoded in UTF-8 are returned as they are.
bool next_code_point(std::string_view s, size_t* i, char32_t* cp);

}  // namespace pyprofd
