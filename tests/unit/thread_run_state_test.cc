#include "profiler/thread_run_state.h"

#include <gtest/gtest.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstring>
#include <thread>

namespace pyprofd {
namespace {

RunState parse(const char* s) { return parse_stat_state(s, std::strlen(s)); }

TEST(ThreadRunState, ParsesTheStateAfterTheLastParenthesis) {
  EXPECT_EQ(parse("123 (python3) R 1 123 123 0 -1"), RunState::kRunning);
  EXPECT_EQ(parse("123 (python3) S 1 123 123 0 -1"), RunState::kIdle);
  EXPECT_EQ(parse("123 (python3) D 1"), RunState::kIdle);
  // COMM is the thread's name: it may hold ") R " itself.
  EXPECT_EQ(parse("77 (a) R (b) S 1 2 3"), RunState::kIdle);
  EXPECT_EQ(parse("77 (x) S) R 1 2 3"), RunState::kRunning);
  EXPECT_EQ(parse("77 (x)"), RunState::kGone);
  EXPECT_EQ(parse("77 (x "), RunState::kGone);
  EXPECT_EQ(parse(""), RunState::kGone);
}

// This process's own count: one more while a thread runs.
TEST(ThreadRunState, CountsTheProcessThreads) {
  ThreadRunState states(getpid());
  int64_t before = states.process_threads();
  ASSERT_GT(before, 0);
  std::atomic<bool> stop{false};
  std::thread t([&] {
    while (!stop) std::this_thread::sleep_for(std::chrono::milliseconds(1));
  });
  EXPECT_EQ(states.process_threads(), before + 1);
  stop = true;
  t.join();
  // The kernel drops the count at the thread's release, shortly after join returns.
  for (int i = 0; i < 1000 && states.process_threads() != before; ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  EXPECT_EQ(states.process_threads(), before);
}

// As root (or the owner) the state comes from the syscall file, the cheaper one.
TEST(ThreadRunState, ReadsTheSyscallFileWhenAllowed) {
  ThreadRunState states(getpid());
  EXPECT_NE(states.state(static_cast<uint64_t>(getpid())), RunState::kGone);
  EXPECT_TRUE(states.reads_syscall());
}

// Another user may not open a process's syscall files (mode 0400): stat, readable by
// all, answers instead. A child gives up root and reads this process's main thread.
TEST(ThreadRunState, FallsBackToStatWhenSyscallIsRefused) {
  if (geteuid() != 0) GTEST_SKIP() << "needs root to drop to another user";
  pid_t parent = getpid();
  pid_t child = fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    if (setgid(65534) != 0 || setuid(65534) != 0) _exit(2);
    ThreadRunState states(parent);
    RunState st = states.state(static_cast<uint64_t>(parent));  // blocked in waitpid: idle
    for (int i = 0; i < 200 && st == RunState::kRunning; ++i) {  // the parent may not be in waitpid yet
      usleep(1000);
      st = states.state(static_cast<uint64_t>(parent));
    }
    _exit(st == RunState::kIdle && !states.reads_syscall() ? 0 : 1);
  }
  int status = 0;
  ASSERT_EQ(waitpid(child, &status, 0), child);
  ASSERT_TRUE(WIFEXITED(status));
  EXPECT_EQ(WEXITSTATUS(status), 0);
}

// This process's own threads: one spinning, one blocked in a sleep.
TEST(ThreadRunState, TellsARunningThreadFromASleepingOne) {
  std::atomic<bool> stop{false};
  std::atomic<long> spin_tid{0}, sleep_tid{0};
  std::thread spinner([&] {
    spin_tid = syscall(SYS_gettid);
    while (!stop) {
    }
  });
  std::thread sleeper([&] {
    sleep_tid = syscall(SYS_gettid);
    while (!stop) std::this_thread::sleep_for(std::chrono::milliseconds(5));
  });
  while (!spin_tid || !sleep_tid) std::this_thread::yield();
  ThreadRunState states(getpid());
  int running = 0, sleeping_running = 0;
  for (int i = 0; i < 50; ++i) {
    running += states.state(spin_tid) == RunState::kRunning;
    sleeping_running += states.state(sleep_tid) == RunState::kRunning;
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  stop = true;
  spinner.join();
  sleeper.join();
  EXPECT_EQ(running, 50);  // running or runnable: a spinning thread never sleeps
  EXPECT_LT(sleeping_running, 10);
  EXPECT_EQ(states.state(spin_tid), RunState::kGone);  // joined: its /proc entry is gone
}

// quick_state: a thread blocked in a read stays idle on schedstat alone, and is
// running again (read from its stat file) once it is switched in to spin.
TEST(ThreadRunState, QuickStateSeesAnIdleThreadWakeUp) {
  int fds[2];
  ASSERT_EQ(pipe(fds), 0);
  std::atomic<bool> stop{false};
  std::atomic<long> tid{0};
  std::thread t([&] {
    tid = syscall(SYS_gettid);
    char c;
    if (read(fds[0], &c, 1) != 1) return;
    while (!stop) {
    }
  });
  while (!tid) std::this_thread::yield();
  ThreadRunState states(getpid());
  RunState first = RunState::kRunning;
  for (int i = 0; i < 1000 && first != RunState::kIdle; ++i) {  // until it blocks in read
    first = states.quick_state(tid);
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  ASSERT_EQ(first, RunState::kIdle);
  states.quick_state(tid);  // reads schedstat, then stat once more
  size_t reads = states.state_reads();
  for (int i = 0; i < 20; ++i) EXPECT_EQ(states.quick_state(tid), RunState::kIdle);
  EXPECT_EQ(states.state_reads(), reads);  // schedstat alone: nothing switched it in
  ASSERT_EQ(write(fds[1], "x", 1), 1);
  int running = 0;
  for (int i = 0; i < 2000 && running < 20; ++i) {
    running += states.quick_state(tid) == RunState::kRunning;
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  stop = true;
  t.join();
  close(fds[0]);
  close(fds[1]);
  EXPECT_EQ(running, 20);
}

}  // namespace
}  // namespace pyprofd
