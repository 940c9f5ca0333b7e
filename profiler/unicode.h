// Decoding CPython str objects read from another process.
#pragma once
#include <cstddef>
#include <cstdint>
#include <string>

#include "model/text.h"  // append_utf8

namespace pyprofd {

// kind: 1 = latin-1 (incl. ASCII), 2 = UCS-2, 4 = UCS-4, in host byte order;
// length counts code points, so data must hold length*kind bytes. Replaces
// *utf8_out with UTF-8; surrogates and values above U+10FFFF become U+FFFD.
// False (and *utf8_out untouched) on a bad kind or size.
bool decode_unicode(int kind, const uint8_t* data, size_t length, std::string* utf8_out);

// PyASCIIObject.state, 3.8-3.13 (same low bits in every version, x86-64 GCC
// bit-field order): interned bits 0-1, kind bits 2-4, compact bit 5, ascii bit 6;
// 3.8-3.11 (has_ready_bit, Layout::str_has_ready_bit) also ready bit 7.
// kind is 0 when the state cannot describe a decodable string (kind not 1/2/4,
// ascii with kind != 1, a not-ready wstr string).
struct UnicodeState {
  int kind = 0;
  bool compact = false;
  bool ascii = false;
};
UnicodeState parse_unicode_state(uint32_t state_bits, bool has_ready_bit);

}  // namespace pyprofd
