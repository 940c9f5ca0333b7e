// Native copies of a thread of this test, taken as --native takes them from a target: a perf
// sample of a spinning thread, and a thread blocked in read() through /proc; both unwound.
#include <gtest/gtest.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <atomic>
#include <thread>

#include "profiler/clock.h"
#include "profiler/native_capture.h"
#include "profiler/perf_stacks.h"
#include "profiler/proc_maps.h"

namespace pyprofd {
namespace {

std::atomic<bool> g_stop{false};
std::atomic<pid_t> g_tid{0};

__attribute__((noinline)) void spinning_here() {
  g_tid = static_cast<pid_t>(syscall(SYS_gettid));
  volatile uint64_t x = 0;
  while (!g_stop) x = x + 1;
}

__attribute__((noinline)) void blocked_here(int fd) {
  g_tid = static_cast<pid_t>(syscall(SYS_gettid));
  char c;
  (void)!read(fd, &c, 1);
  asm volatile("" ::: "memory");
}

std::vector<std::string> unwound_names(const NativeCapture& c) {
  std::vector<MapEntry> maps;
  EXPECT_TRUE(read_maps(getpid(), &maps, nullptr));
  std::vector<NativeMapping> exec;
  for (const auto& m : maps)
    if (m.executable() && !m.path.empty() && m.path[0] == '/') exec.push_back({m.start, m.end, m.offset, m.path});
  NativeUnwinder u(getpid(), "");
  u.set_mappings(exec);
  NativeUnwind w = u.unwind(c.regs, c.stack);
  std::vector<std::string> names;
  for (size_t i = 0; i < w.pcs.size(); ++i) names.push_back(u.symbolize(w.pcs[i], i == 0).function);
  return names;
}

bool has(const std::vector<std::string>& names, const std::string& part) {
  for (const auto& n : names)
    if (n.find(part) != std::string::npos) return true;
  return false;
}

TEST(NativeCapture, PerfSampleOfASpinningThreadUnwindsToItsFunction) {
  g_stop = false;
  g_tid = 0;
  std::thread t(spinning_here);
  while (!g_tid) usleep(1000);
  PerfStacks perf(1000 * 1000);
  int err = perf.open(g_tid);
  if (err == EACCES || err == EPERM) {
    g_stop = true;
    t.join();
    GTEST_SKIP() << "perf events are not allowed here";
  }
  ASSERT_EQ(err, 0);
  const NativeCapture* c = nullptr;
  for (int i = 0; i < 200 && !c; ++i) {
    usleep(5000);
    perf.drain();
    c = perf.latest(g_tid, UINT64_MAX);
  }
  ASSERT_NE(c, nullptr);
  auto names = unwound_names(*c);
  g_stop = true;
  t.join();
  EXPECT_TRUE(has(names, "spinning_here")) << ::testing::PrintToString(names);
}

TEST(NativeCapture, ABlockedThreadIsReadThroughProcWithoutStoppingIt) {
  int p[2];
  ASSERT_EQ(pipe(p), 0);
  g_tid = 0;
  std::thread t(blocked_here, p[0]);
  while (!g_tid) usleep(1000);
  usleep(50 * 1000);  // into read()
  int fd = open_syscall_file(getpid(), g_tid);
  NativeCapture c;
  bool ok = capture_blocked(getpid(), fd, &c);
  close(fd);
  (void)!write(p[1], "x", 1);
  t.join();
  close(p[0]);
  close(p[1]);
  ASSERT_TRUE(ok);
  EXPECT_EQ(c.regs.known, (1u << kDwarfSp) | (1u << kDwarfIp));
  auto names = unwound_names(c);
  EXPECT_TRUE(has(names, "blocked_here")) << ::testing::PrintToString(names);
}

}  // namespace
}  // namespace pyprofd
