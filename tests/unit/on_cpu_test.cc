// OnCpu against real processes: a child blocked in read() is surely idle, the same child
// spinning is not, and this process (running the drain) is not.
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstring>

#include "profiler/clock.h"
#include "profiler/on_cpu.h"

namespace pyprofd {
namespace {

// A child that blocks reading cmd; each byte read makes it spin for spin_ms, then block again.
pid_t start_child(int cmd, int other_end, int spin_ms) {
  pid_t pid = fork();
  if (pid == 0) {
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    close(other_end);  // read() ends when the parent closes its end
    char c;
    while (read(cmd, &c, 1) == 1) {
      int64_t end = monotonic_ns() + int64_t{spin_ms} * 1000000;
      while (monotonic_ns() < end) {
      }
    }
    _exit(0);
  }
  return pid;
}

bool idle_after(OnCpu& on_cpu, pid_t pid, int ms) {
  usleep(ms * 1000);
  on_cpu.drain(monotonic_ns());
  return on_cpu.surely_idle(pid);
}

TEST(OnCpu, TellsABlockedProcessFromARunningOne) {
  OnCpu on_cpu;
  int err = on_cpu.open();
  if (err == EACCES || err == EPERM) GTEST_SKIP() << "perf events not allowed here: " << strerror(err);
  ASSERT_EQ(err, 0) << strerror(err);
  int cmd[2];
  ASSERT_EQ(pipe(cmd), 0);
  pid_t child = start_child(cmd[0], cmd[1], 1500);
  ASSERT_GT(child, 0);
  close(cmd[0]);
  EXPECT_TRUE(idle_after(on_cpu, child, 200)) << "blocked in read";
  EXPECT_FALSE(on_cpu.surely_idle(getpid())) << "this process drains: it is on a CPU";
  ASSERT_EQ(write(cmd[1], "s", 1), 1);
  EXPECT_FALSE(idle_after(on_cpu, child, 300)) << "spinning";
  EXPECT_FALSE(idle_after(on_cpu, child, 300)) << "still spinning";
  EXPECT_TRUE(idle_after(on_cpu, child, 1500)) << "blocked again";
  close(cmd[1]);
  waitpid(child, nullptr, 0);
}

TEST(OnCpu, UnsureBeforeOpen) {
  OnCpu on_cpu;
  on_cpu.drain(monotonic_ns());
  EXPECT_FALSE(on_cpu.surely_idle(1));
}

}  // namespace
}  // namespace pyprofd
