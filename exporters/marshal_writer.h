// Writes the subset of Python's marshal format that pstats files use. Output
// loads with marshal.load on CPython 3.8-3.13 (marshal version 4 type codes,
// no reference flags).
#pragma once
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace pyprofd {

class MarshalWriter {
 public:
  // A dict is `begin_dict`, then alternating key/value objects, then `end_dict`.
  void begin_dict() { out_.push_back('{'); }
  void end_dict() { out_.push_back('0'); }
  // A tuple is `begin_tuple(n)` followed by exactly n objects.
  void begin_tuple(size_t n);
  void write_int(int64_t v);   // int32 `i` when it fits, else arbitrary-size `l`
  void write_uint(uint64_t v); // same, for counts that may exceed int64
  void write_float(double v);  // binary float `g`
  // Python str from UTF-8. ASCII uses the compact `z`/`a` forms; anything else
  // is `u`. Bytes that are not valid UTF-8 become U+FFFD, so the file always loads.
  void write_str(std::string_view utf8);

  const std::string& bytes() const { return out_; }
  std::string take() { return std::move(out_); }

 private:
  void put_u32(uint32_t v);
  void write_long(uint64_t magnitude, bool negative);
  std::string out_;
};

// `s` with invalid UTF-8 sequences replaced by U+FFFD. Surrogate code points
// (ED A0..BF xx) are kept: marshal decodes `u` with "surrogatepass".
std::string sanitize_utf8(std::string_view s);

}  // namespace pyprofd
