// libFuzzer target (b): code objects and line tables. Snapshot inputs decode the code
// objects of every walked frame (CodeCache); any other input is a line table:
// u8 minor, i32 first_line, then the table, checked at up to ~100 offsets, and LineTable
// (the cached form) must give the same line as line_for_offset for each.
#include <algorithm>
#include <cstdlib>
#include <cstring>

#include "fuzz/fuzz_snapshot.h"
#include "symbolizer/line_table.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size >= 4 && std::memcmp(data, "PPFZ", 4) == 0) {
    if (auto proc = pyprofd::fuzz::process_from_input(data, size)) {
      pyprofd::fuzz::Reached r;
      pyprofd::fuzz::run_threads(*proc, &r);
    }
    return 0;
  }
  if (size < 5) return 0;
  int minor = 8 + data[0] % 6;
  int32_t first_line;
  std::memcpy(&first_line, data + 1, 4);
  const uint8_t* table = data + 5;
  size_t len = std::min<size_t>(size - 5, 2048);  // line_for_offset is linear: keep each run short
  pyprofd::LineTable cached(minor, table, len, first_line);
  int end = static_cast<int>(len) * 8 + 16, step = std::max(2, end / 96 * 2);
  for (int off = -2; off < end; off += step) {
    int a = pyprofd::line_for_offset(minor, table, len, first_line, off);
    if (cached.line(off) != a) std::abort();  // the two decoders disagree
  }
  return 0;
}
