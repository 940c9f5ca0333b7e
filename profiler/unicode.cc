#include "profiler/unicode.h"

#include <cstring>

namespace pyprofd {

namespace {

void put_utf8(uint32_t cp, std::string* out) {
  if ((cp >= 0xD800 && cp <= 0xDFFF) || cp > 0x10FFFF) cp = 0xFFFD;  // not encodable
  append_utf8(out, cp);
}

}  // namespace

bool decode_unicode(int kind, const uint8_t* data, size_t length, std::string* utf8_out) {
  if (kind != 1 && kind != 2 && kind != 4) return false;
  if (utf8_out == nullptr || (length > 0 && data == nullptr)) return false;
  if (length > SIZE_MAX / 4 / static_cast<size_t>(kind)) return false;  // size math must not wrap
  std::string out;
  out.reserve(length * kind);
  for (size_t i = 0; i < length; ++i) {
    uint32_t cp;
    if (kind == 1) {
      cp = data[i];
    } else if (kind == 2) {
      uint16_t u;
      std::memcpy(&u, data + 2 * i, 2);  // memcpy: the buffer may be unaligned
      cp = u;
    } else {
      std::memcpy(&cp, data + 4 * i, 4);
    }
    put_utf8(cp, &out);
  }
  utf8_out->swap(out);
  return true;
}

UnicodeState parse_unicode_state(uint32_t bits, bool has_ready_bit) {
  UnicodeState st;
  if (has_ready_bit && !((bits >> 7) & 1)) return st;  // not ready: its text is in wstr only
  int kind = static_cast<int>((bits >> 2) & 7);
  bool ascii = (bits >> 6) & 1;
  if ((kind != 1 && kind != 2 && kind != 4) || (ascii && kind != 1)) return st;
  st.kind = kind;
  st.compact = (bits >> 5) & 1;
  st.ascii = ascii;
  return st;
}

}  // namespace pyprofd
