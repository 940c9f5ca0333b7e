// NativeUnwinder on this test's own thread: registers from getcontext() and a copy of the
// stack, unwound and symbolized as a perf sample of another process would be.
#include "symbolizer/native_unwinder.h"

#include <gtest/gtest.h>
#include <pthread.h>
#include <ucontext.h>
#include <unistd.h>

#include <cstring>

#include "profiler/proc_maps.h"

namespace pyprofd {
namespace {

struct Captured {
  NativeRegs regs;
  StackCopy stack;
};

std::vector<NativeMapping> own_mappings() {
  std::vector<MapEntry> maps;
  EXPECT_TRUE(read_maps(getpid(), &maps, nullptr));
  std::vector<NativeMapping> out;
  for (const auto& m : maps)
    if (m.executable() && !m.path.empty() && m.path[0] == '/') out.push_back({m.start, m.end, m.offset, m.path});
  return out;
}

// Copies the live stack byte by byte, unchecked: a raw copy across frames reads ASan's
// redzones between locals (a stack-buffer-underflow report in `make sanitize`), and a
// memcpy would be checked by ASan's interceptor even here.
__attribute__((no_sanitize_address, noinline)) void copy_stack(uint64_t sp, size_t len, std::vector<uint8_t>* out) {
  out->resize(len);
  const volatile uint8_t* src = reinterpret_cast<const volatile uint8_t*>(sp);
  uint8_t* dst = out->data();
  for (size_t i = 0; i < len; ++i) dst[i] = src[i];
}

// The registers at the getcontext() call, and the stack from there to the stack's end.
__attribute__((noinline)) void capture_here(Captured* c) {
  ucontext_t uc;
  getcontext(&uc);
  const greg_t* g = uc.uc_mcontext.gregs;
  const int map[kDwarfRegs] = {REG_RAX, REG_RDX, REG_RCX, REG_RBX, REG_RSI, REG_RDI, REG_RBP, REG_RSP,
                               REG_R8,  REG_R9,  REG_R10, REG_R11, REG_R12, REG_R13, REG_R14, REG_R15, REG_RIP};
  for (int i = 0; i < kDwarfRegs; ++i) c->regs.r[i] = static_cast<uint64_t>(g[map[i]]);
  c->regs.known = (1u << kDwarfRegs) - 1;
  pthread_attr_t attr;
  void* base = nullptr;
  size_t size = 0;
  pthread_getattr_np(pthread_self(), &attr);
  pthread_attr_getstack(&attr, &base, &size);
  pthread_attr_destroy(&attr);
  uint64_t sp = c->regs.r[kDwarfSp];
  uint64_t end = reinterpret_cast<uint64_t>(base) + size;
  size_t len = std::min<uint64_t>(end - sp, 64 * 1024);
  c->stack.addr = sp;
  copy_stack(sp, len, &c->stack.bytes);
}

__attribute__((noinline)) void middle_frame(Captured* c) {
  capture_here(c);
  asm volatile("" ::: "memory");  // not a tail call
}

__attribute__((noinline)) void outer_frame(Captured* c) {
  middle_frame(c);
  asm volatile("" ::: "memory");
}

std::vector<std::string> names_of(NativeUnwinder& u, const NativeUnwind& w) {
  std::vector<std::string> out;
  for (size_t i = 0; i < w.pcs.size(); ++i) out.push_back(u.symbolize(w.pcs[i], i == 0).function);
  return out;
}

size_t index_of(const std::vector<std::string>& v, const std::string& s) {
  for (size_t i = 0; i < v.size(); ++i)
    if (v[i].find(s) != std::string::npos) return i;
  return v.size();
}

TEST(NativeUnwinder, UnwindsAndNamesItsOwnStackInOrder) {
  Captured c;
  outer_frame(&c);
  NativeUnwinder u(getpid(), "");
  u.set_mappings(own_mappings());
  NativeUnwind w = u.unwind(c.regs, c.stack);
  auto names = names_of(u, w);
  std::string all;
  for (auto& n : names) all += n + " <- ";
  size_t a = index_of(names, "capture_here"), b = index_of(names, "middle_frame"), o = index_of(names, "outer_frame");
  ASSERT_LT(o, names.size()) << all;
  EXPECT_LT(a, b) << all;
  EXPECT_LT(b, o) << all;
  // C++ names come demangled, with DWARF's file and line.
  EXPECT_NE(names[a].find("pyprofd::"), std::string::npos) << names[a];
  const NativeSymbol& s = u.symbolize(w.pcs[b], false);
  EXPECT_NE(s.file.find("native_unwinder_test.cc"), std::string::npos) << s.file;
  EXPECT_GT(s.line, 0);
  EXPECT_EQ(s.library, "unit_tests");
  // Down to the test runner's main and libc's start.
  EXPECT_LT(index_of(names, "main"), names.size()) << all;
}

TEST(NativeUnwinder, AShortCopyStopsTheUnwindWithoutFailing) {
  Captured c;
  outer_frame(&c);
  c.stack.bytes.resize(64);  // too short to reach the callers' return addresses
  NativeUnwinder u(getpid(), "");
  u.set_mappings(own_mappings());
  NativeUnwind w = u.unwind(c.regs, c.stack);
  EXPECT_FALSE(w.complete);
  EXPECT_LE(w.pcs.size(), 3u);
}

// The cached rules must give libdwfl's answer: the same frames, stack pointers and end,
// from all registers, from only the stack and instruction pointers (a /proc read), with
// a depth limit, and on copies cut at every length.
TEST(NativeUnwinder, CachedRulesUnwindAsLibdwfl) {
  Captured c;
  outer_frame(&c);
  NativeUnwinder fast(getpid(), ""), dwfl(getpid(), "");
  fast.set_mappings(own_mappings());
  dwfl.set_mappings(own_mappings());
  dwfl.set_cached_rules(false);
  NativeRegs sp_ip;
  sp_ip.r[kDwarfSp] = c.regs.r[kDwarfSp];
  sp_ip.r[kDwarfIp] = c.regs.r[kDwarfIp];
  sp_ip.known = (1u << kDwarfSp) | (1u << kDwarfIp);
  size_t frames = 0;
  for (const NativeRegs* regs : {&c.regs, &sp_ip}) {
    for (size_t depth : {size_t{512}, size_t{3}}) {
      for (int round = 0; round < 2; ++round) {  // the second from the cache
        NativeUnwind a = fast.unwind(*regs, c.stack, depth), b = dwfl.unwind(*regs, c.stack, depth);
        EXPECT_EQ(a.pcs, b.pcs);
        EXPECT_EQ(a.sps, b.sps);
        EXPECT_EQ(a.complete, b.complete);
        frames = std::max(frames, a.pcs.size());
      }
    }
  }
  EXPECT_GE(frames, 5u);
#ifdef __SANITIZE_ADDRESS__
  // ASan's instrumented frames (make sanitize) have CFI the rules leave to libdwfl: the
  // results above must still agree, and the rules must still do some of the unwinds.
  EXPECT_GT(fast.by_rules(), 0u);
#else
  EXPECT_EQ(fast.by_libdwfl(), 0u);  // every frame of this stack has a rule of the common shape
  EXPECT_EQ(fast.by_rules(), 8u);
#endif
  for (size_t len = 0; len < c.stack.bytes.size() && len < 8192; len += 40) {
    StackCopy cut{c.stack.addr, std::vector<uint8_t>(c.stack.bytes.begin(), c.stack.bytes.begin() + len)};
    NativeUnwind a = fast.unwind(c.regs, cut), b = dwfl.unwind(c.regs, cut);
    EXPECT_EQ(a.pcs, b.pcs) << len;
    EXPECT_EQ(a.complete, b.complete) << len;
  }
}

TEST(NativeUnwinder, WithoutRegistersNothingIsUnwound) {
  NativeUnwinder u(getpid(), "");
  u.set_mappings(own_mappings());
  NativeUnwind w = u.unwind(NativeRegs{}, StackCopy{});
  EXPECT_TRUE(w.pcs.empty());
  EXPECT_FALSE(w.complete);
}

}  // namespace
}  // namespace pyprofd
