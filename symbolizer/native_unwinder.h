// Native (C) stacks from a copy: registers and the top of a thread's user stack, as a perf
// sample or a short ptrace stop hands them over, unwound with elfutils' libdwfl (CFI from
// .eh_frame/.debug_frame, frame pointers where there is none) and symbolized from
// .symtab/.dynsym, DWARF and separate debug info under /usr/lib/debug/.build-id.
// Reads files only (through the /proc/PID/root prefix it is given), never process memory.
#pragma once
#include <cstdint>
#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

#include "symbolizer/cfi_rules.h"

typedef struct Dwfl Dwfl;  // <elfutils/libdwfl.h>, kept out of this header

namespace pyprofd {

// x86-64 registers in DWARF numbering: rax rdx rcx rbx rsi rdi rbp rsp r8..r15, then rip (16).
constexpr int kDwarfRegs = 17;
constexpr int kDwarfSp = 7, kDwarfBp = 6, kDwarfIp = 16;

struct NativeRegs {
  uint64_t r[kDwarfRegs] = {};
  uint32_t known = 0;  // bit i: r[i] holds the thread's value
};

// A copy of the user stack from `addr` (the stack pointer) upwards.
struct StackCopy {
  uint64_t addr = 0;
  std::vector<uint8_t> bytes;
};

// A mapping of a file (one line of /proc/PID/maps, executable ones are enough).
struct NativeMapping {
  uint64_t start = 0, end = 0, offset = 0;
  std::string path;  // as the target sees it
};

struct NativeSymbol {
  std::string function;  // demangled; "" when no symbol covers the address
  std::string library;   // file name of the module ("libz.so.1"); "" outside any module
  std::string file;      // source file from DWARF, "" if unknown
  int line = 0;
  uint64_t offset = 0;   // of the address from the module's start (names frames without a symbol)
};

struct NativeUnwind {
  std::vector<uint64_t> pcs;  // innermost first; return addresses as they are (not minus one)
  std::vector<uint64_t> sps;  // each frame's stack pointer (0 if unknown): frame i's locals lie in [sps[i], sps[i+1])
  bool complete = false;      // reached the outermost frame (else cut: copy too short, no CFI, ...)
};

class NativeUnwinder {
 public:
  // root: prefix for opening the target's files ("/proc/PID/root"; "" for the host's view).
  NativeUnwinder(int pid, std::string root);
  ~NativeUnwinder();
  NativeUnwinder(const NativeUnwinder&) = delete;
  NativeUnwinder& operator=(const NativeUnwinder&) = delete;

  // (Re)declares the mapped files. Cheap when nothing changed since the last call.
  void set_mappings(const std::vector<NativeMapping>& maps);

  // Unwinds one thread from its registers and stack copy, up to max_depth frames. Without
  // a frame pointer (a thread read through /proc gives only its stack and instruction
  // pointers), an unwind that stops at a frame-pointer function is tried again from the
  // first frame record ([saved rbp, return address]) above where it stopped; the caller
  // checks the result (the merge pairs it with the Python frames or calls it torn).
  NativeUnwind unwind(const NativeRegs& regs, const StackCopy& stack, size_t max_depth = 512);

  // Function, library, file:line of a pc (a return address when !exact). Cached by
  // build-id and offset, across every unwinder of this process.
  const NativeSymbol& symbolize(uint64_t pc, bool exact);

  // Tests: off, every stack goes through libdwfl's unwinder (the cached rules' oracle).
  void set_cached_rules(bool on) { use_rules_ = on; }
  // Unwinds done from the cached rules alone, and by libdwfl (for tests and benchmarks).
  size_t by_rules() const { return by_rules_; }
  size_t by_libdwfl() const { return by_libdwfl_; }

  // For the callbacks libdwfl calls back into.
  struct Current;

 private:
  NativeUnwind unwind_once(const NativeRegs& regs, const StackCopy& stack, size_t max_depth);
  bool unwind_by_rules(const NativeRegs& regs, const StackCopy& stack, size_t max_depth, NativeUnwind* out);
  bool executable(uint64_t addr) const;

  int pid_;
  std::string root_;
  Dwfl* dwfl_ = nullptr;
  bool attached_ = false;
  std::unique_ptr<Current> cur_;
  std::vector<NativeMapping> maps_;
  NativeSymbol none_;
  // pc (as looked up) -> its entry in the shared cache; valid while the mappings stay.
  std::unordered_map<uint64_t, const NativeSymbol*> by_pc_;
  CfiRules rules_;  // valid while the mappings stay, as by_pc_
  bool use_rules_ = true;
  size_t by_rules_ = 0, by_libdwfl_ = 0;
};

}  // namespace pyprofd
