#include "symbolizer/line_table.h"

#include <algorithm>
#include <climits>

namespace pyprofd {

namespace {

enum class Walk { kEnd, kStopped, kInvalid };

bool line_fits(int64_t line) { return line >= INT_MIN && line <= INT_MAX; }

// The walkers below call visit(end, line) for each non-empty range
// [previous end, end) in order, starting at offset 0; visit returns true to
// stop. At the end of the table *tail is the line of offsets past it.

// 3.8/3.9 co_lnotab, as PyCode_Addr2Line walks it: a pair's line delta applies
// from the address reached by its address delta onwards.
template <class Visit>
Walk walk_lnotab(const uint8_t* t, size_t len, int first_line, Visit&& visit, int* tail) {
  int64_t addr = 0, line = first_line;
  for (size_t i = 0; i + 1 < len; i += 2) {
    int64_t next = addr + t[i];
    if (next > addr && visit(next, static_cast<int>(line))) return Walk::kStopped;
    addr = next;
    line += static_cast<int8_t>(t[i + 1]);
    if (!line_fits(line)) return Walk::kInvalid;
  }
  *tail = static_cast<int>(line);
  return Walk::kEnd;
}

// 3.10 co_linetable: (length, line delta) pairs; delta -128 = "no line" and
// leaves the running line unchanged. Past the table there is no line.
template <class Visit>
Walk walk_linetable310(const uint8_t* t, size_t len, int first_line, Visit&& visit, int* tail) {
  int64_t end = 0, computed = first_line;
  for (size_t i = 0; i + 1 < len; i += 2) {
    int64_t start = end;
    end += t[i];
    int8_t delta = static_cast<int8_t>(t[i + 1]);
    int line = -1;
    if (delta != -128) {
      computed += delta;
      if (!line_fits(computed)) return Walk::kInvalid;
      line = static_cast<int>(computed);
    }
    if (end > start && visit(end, line)) return Walk::kStopped;
  }
  *tail = -1;
  return Walk::kEnd;
}

// Unsigned varint of 6-bit chunks, least significant first, bit 6 = more.
bool read_varint(const uint8_t*& p, const uint8_t* e, uint32_t* out) {
  uint64_t val = 0;
  for (int shift = 0; p < e && shift < 32; shift += 6) {
    uint8_t b = *p++;
    val |= static_cast<uint64_t>(b & 63) << shift;
    if (!(b & 64)) {
      if (val > UINT32_MAX) return false;
      *out = static_cast<uint32_t>(val);
      return true;
    }
  }
  return false;  // truncated or too long
}

// 3.11+ location table. Each entry: a byte 1cccclll (code c, length l+1 code
// units of 2 bytes) and then bytes with bit 7 clear. Codes 0-9: same line;
// 10-12: line delta c-10; 13/14: signed varint line delta; 15: no line.
template <class Visit>
Walk walk_locations(const uint8_t* t, size_t len, int first_line, Visit&& visit, int* tail) {
  const uint8_t* p = t;
  const uint8_t* e = t + len;
  int64_t end = 0, computed = first_line;
  while (p < e) {
    uint8_t head = *p;
    if (!(head & 0x80)) return Walk::kInvalid;  // not at an entry start
    int code = (head >> 3) & 15;
    const uint8_t* q = p + 1;
    if (code == 13 || code == 14) {
      uint32_t u;
      if (!read_varint(q, e, &u)) return Walk::kInvalid;
      int64_t mag = u >> 1;
      computed += (u & 1) ? -mag : mag;
    } else if (code >= 10 && code <= 12) {
      computed += code - 10;
    }
    if (!line_fits(computed)) return Walk::kInvalid;
    end += ((head & 7) + 1) * 2;
    int line = code == 15 ? -1 : static_cast<int>(computed);
    // Skip the rest of the entry (column data, long-form varints).
    ++p;
    while (p < e && !(*p & 0x80)) ++p;
    if (visit(end, line)) return Walk::kStopped;
  }
  *tail = -1;
  return Walk::kEnd;
}

template <class Visit>
Walk walk(int minor, const uint8_t* t, size_t len, int first_line, Visit&& visit, int* tail) {
  if (len > 0 && t == nullptr) return Walk::kInvalid;
  if (minor == 8 || minor == 9) return walk_lnotab(t, len, first_line, visit, tail);
  if (minor == 10) return walk_linetable310(t, len, first_line, visit, tail);
  if (minor >= 11 && minor <= 15) return walk_locations(t, len, first_line, visit, tail);
  return Walk::kInvalid;
}

bool supported(int minor) { return minor >= 8 && minor <= 15; }

}  // namespace

int line_for_offset(int minor, const uint8_t* table, size_t len, int first_line, int byte_offset) {
  if (!supported(minor)) return -1;
  if (byte_offset < 0) return first_line;  // a frame that has not started yet
  int found = -1, tail = -1;
  auto visit = [&](int64_t end, int line) {
    if (byte_offset < end) {
      found = line;
      return true;
    }
    return false;
  };
  switch (walk(minor, table, len, first_line, visit, &tail)) {
    case Walk::kStopped: return found;
    case Walk::kEnd: return tail;
    case Walk::kInvalid: break;
  }
  return -1;
}

LineTable::LineTable(int minor, const uint8_t* table, size_t len, int first_line)
    : minor_(minor), first_line_(first_line), table_size_(len) {
  auto visit = [&](int64_t end, int line) {
    if (!ranges_.empty() && ranges_.back().line == line) {
      ranges_.back().end = end;  // merge runs of one line (most 3.11+ entries)
    } else {
      ranges_.push_back({end, line});
    }
    return false;
  };
  int tail = -1;
  if (walk(minor, table, len, first_line, visit, &tail) == Walk::kEnd) tail_line_ = tail;
  ranges_.shrink_to_fit();
}

int LineTable::line(int byte_offset) const {
  if (!supported(minor_)) return -1;
  if (byte_offset < 0) return first_line_;
  int64_t q = byte_offset;
  auto it = std::upper_bound(ranges_.begin(), ranges_.end(), q,
                             [](int64_t off, const Range& r) { return off < r.end; });
  return it == ranges_.end() ? tail_line_ : it->line;
}

}  // namespace pyprofd
