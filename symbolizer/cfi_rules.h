// The unwind rules of one instruction address, from a module's .eh_frame through libdw,
// kept per address: the common x86-64 shapes only (the caller's stack pointer, the CFA,
// at a fixed offset from rsp or rbp; the return address and rbp saved at fixed offsets
// from it, or rbp unchanged). Anything else (an expression, another base register, a
// signal frame, no CFI) has no rule here and the caller unwinds that stack with libdwfl.
// Interpreting CFI anew for every frame of every sample (libdwfl's unwinder, and its
// allocation of each frame's state) was most of --native's cost on 3.8–3.10, where each
// Python call is a C call: ~150 native frames at depth 50.
#pragma once
#include <cstddef>
#include <cstdint>
#include <unordered_map>

typedef struct Dwfl Dwfl;

namespace pyprofd {

struct CfiRule {
  enum Saved : uint8_t { kUndefined, kSame, kAtCfa };
  uint8_t cfa_reg = 0;      // DWARF register number: 7 (rsp) or 6 (rbp)
  int64_t cfa_offset = 0;
  Saved ra = kUndefined;    // kUndefined: the outermost frame
  int64_t ra_offset = 0;    // from the CFA
  Saved bp = kSame;
  int64_t bp_offset = 0;
};

class CfiRules {
 public:
  static constexpr size_t kMaxRules = 1 << 16;

  // The rule at pc (a frame's own pc: callers look up return address - 1), or nullptr
  // when there is none of the shapes above. Cached, misses included.
  const CfiRule* at(Dwfl* dwfl, uint64_t pc);
  void clear() { rules_.clear(); }

 private:
  struct Entry {
    bool ok = false;
    CfiRule rule;
  };
  static bool compute(Dwfl* dwfl, uint64_t pc, CfiRule* out);
  std::unordered_map<uint64_t, Entry> rules_;
};

}  // namespace pyprofd
