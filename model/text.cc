#include "model/text.h"

namespace pyprofd {

bool next_code_point(std::string_view s, size_t* i, char32_t* cp) {
  unsigned char c = s[*i];
  size_t len = c < 0x80 ? 1 : (c >> 5) == 0x6 ? 2 : (c >> 4) == 0xE ? 3 : (c >> 3) == 0x1E ? 4 : 0;
  bool ok = len != 0 && *i + len <= s.size();
  char32_t v = len == 1 ? c : len == 2 ? c & 0x1f : len == 3 ? c & 0x0f : c & 0x07;
  for (size_t k = 1; ok && k < len; ++k) {
    unsigned char cc = s[*i + k];
    ok = (cc & 0xC0) == 0x80;
    v = (v << 6) | (cc & 0x3f);
  }
  // Overlong forms and values past U+10FFFF are refused (Python refuses them too).
  static const char32_t kMin[5] = {0, 0, 0x80, 0x800, 0x10000};
  ok = ok && v >= kMin[len] && v <= 0x10FFFF;
  *i += ok ? len : 1;
  *cp = v;
  return ok;
}

}  // namespace pyprofd
