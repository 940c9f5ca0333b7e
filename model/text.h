// The model's text is UTF-8. Names come from the target and may be invalid, so
// the profiler encodes and every exporter decodes through these two functions.
#pragma once
#include <cstddef>
#include <string>
#include <string_view>

namespace pyprofd {

// Appends cp encoded as UTF-8 (cp must be at most U+10FFFF). Header-only: the profiler
// decodes target strings with it, the writers re-encode sanitized text.
inline void append_utf8(std::string* out, char32_t cp) {
  if (cp < 0x80) {
    out->push_back(static_cast<char>(cp));
  } else if (cp < 0x800) {
    out->push_back(static_cast<char>(0xC0 | (cp >> 6)));
    out->push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  } else if (cp < 0x10000) {
    out->push_back(static_cast<char>(0xE0 | (cp >> 12)));
    out->push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
    out->push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  } else {
    out->push_back(static_cast<char>(0xF0 | (cp >> 18)));
    out->push_back(static_cast<char>(0x80 | ((cp >> 12) & 0x3F)));
    out->push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
    out->push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  }
}

// Decodes the code point at s[*i] and advances *i past it. On an invalid or
// truncated sequence, an overlong form or a value past U+10FFFF, returns false and
// advances one byte. Surrogates encoded in UTF-8 are returned as they are.
bool next_code_point(std::string_view s, size_t* i, char32_t* cp);

}  // namespace pyprofd
