#include "exporters/utf8.h"

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

void append_utf8(std::string* out, char32_t cp) {
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

}  // namespace pyprofd
