// Instruction offset -> source line, for the line tables of CPython 3.8-3.15.
//   3.8/3.9  co_lnotab:    (addr delta u8, line delta s8) pairs (Objects/lnotab_notes.txt).
//   3.10     co_linetable: (range length u8, line delta s8; -128 = no line) pairs.
//   3.11+    co_linetable: the compact location table (InternalDocs/locations.md; same in 3.14/3.15).
// The bytes come from another process: every read is bounded, garbage gives -1.
#pragma once
#include <cstddef>
#include <cstdint>
#include <vector>

namespace pyprofd {

// Line of the instruction at byte_offset (bytes from the start of the code's
// instructions), as PyCode_Addr2Line(code, byte_offset) computes it for 3.minor:
//   - byte_offset < 0 gives first_line (all versions);
//   - 3.8/3.9: an offset past the table gives the last line;
//   - 3.10+: an offset with no line, or past the table, gives -1.
// Returns -1 for a minor outside 8..15 or a table that cannot be decoded there.
int line_for_offset(int minor, const uint8_t* table, size_t len, int first_line, int byte_offset);

// A line table decoded once (for a code-object cache) into sorted ranges; line()
// is a binary search, no allocation. Same answers as line_for_offset().
class LineTable {
 public:
  LineTable() = default;
  LineTable(int minor, const uint8_t* table, size_t len, int first_line);
  LineTable(int minor, const std::vector<uint8_t>& table, int first_line)
      : LineTable(minor, table.data(), table.size(), first_line) {}

  int line(int byte_offset) const;

  int minor() const { return minor_; }
  int first_line() const { return first_line_; }
  size_t table_size() const { return table_size_; }  // length of the source bytes
  size_t range_count() const { return ranges_.size(); }

 private:
  struct Range {
    int64_t end;  // exclusive byte offset; ranges are contiguous from 0
    int line;
  };
  int minor_ = 0;
  int first_line_ = 0;
  size_t table_size_ = 0;
  int tail_line_ = -1;  // line for offsets past the last range
  std::vector<Range> ranges_;
};

}  // namespace pyprofd
