#include "exporters/marshal_writer.h"

#include <cstring>

#include "model/text.h"

namespace pyprofd {

void MarshalWriter::put_u32(uint32_t v) {
  for (int i = 0; i < 4; ++i) out_.push_back(static_cast<char>((v >> (8 * i)) & 0xff));
}

void MarshalWriter::begin_tuple(size_t n) {
  if (n < 256) {
    out_.push_back(')');
    out_.push_back(static_cast<char>(n));
  } else {
    out_.push_back('(');
    put_u32(static_cast<uint32_t>(n));
  }
}

void MarshalWriter::write_int(int64_t v) {
  if (v >= INT32_MIN && v <= INT32_MAX) {
    out_.push_back('i');
    put_u32(static_cast<uint32_t>(static_cast<int32_t>(v)));
    return;
  }
  // Magnitude via unsigned arithmetic so INT64_MIN does not overflow.
  uint64_t mag = v < 0 ? 0 - static_cast<uint64_t>(v) : static_cast<uint64_t>(v);
  write_long(mag, v < 0);
}

void MarshalWriter::write_uint(uint64_t v) {
  if (v <= INT32_MAX) {
    write_int(static_cast<int64_t>(v));
    return;
  }
  write_long(v, false);
}

void MarshalWriter::write_long(uint64_t mag, bool negative) {
  // `l`: signed digit count, then 15-bit digits least significant first, 2 bytes each.
  uint16_t digits[5];
  int32_t n = 0;
  for (; mag != 0; mag >>= 15) digits[n++] = static_cast<uint16_t>(mag & 0x7fff);
  out_.push_back('l');
  put_u32(static_cast<uint32_t>(negative ? -n : n));
  for (int32_t i = 0; i < n; ++i) {
    out_.push_back(static_cast<char>(digits[i] & 0xff));
    out_.push_back(static_cast<char>(digits[i] >> 8));
  }
}

void MarshalWriter::write_float(double v) {
  static_assert(sizeof(double) == 8, "IEEE double expected");
  uint64_t bits;
  std::memcpy(&bits, &v, 8);
  out_.push_back('g');
  for (int i = 0; i < 8; ++i) out_.push_back(static_cast<char>((bits >> (8 * i)) & 0xff));
}

void MarshalWriter::write_str(std::string_view utf8) {
  bool ascii = true;
  for (unsigned char c : utf8) ascii = ascii && c < 0x80;
  if (ascii) {
    if (utf8.size() < 256) {
      out_.push_back('z');
      out_.push_back(static_cast<char>(utf8.size()));
    } else {
      out_.push_back('a');
      put_u32(static_cast<uint32_t>(utf8.size()));
    }
    out_.append(utf8);
    return;
  }
  std::string clean = sanitize_utf8(utf8);
  out_.push_back('u');
  put_u32(static_cast<uint32_t>(clean.size()));
  out_.append(clean);
}

std::string sanitize_utf8(std::string_view s) {
  static const char kReplacement[] = "\xEF\xBF\xBD";
  std::string out;
  out.reserve(s.size());
  size_t i = 0;
  while (i < s.size()) {
    size_t start = i;
    char32_t cp;
    if (next_code_point(s, &i, &cp)) {
      out.append(s.substr(start, i - start));
    } else {
      out.append(kReplacement);
    }
  }
  return out;
}

}  // namespace pyprofd
