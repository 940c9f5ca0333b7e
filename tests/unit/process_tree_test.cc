// ChildScanner (kept-open /proc children files) against real children of this process:
// it finds what children_of finds, scan after scan, and notices a child that exited.
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <thread>
#include <vector>

#include "profiler/process_tree.h"

namespace pyprofd {
namespace {

pid_t start_sleeper() {
  pid_t pid = fork();
  if (pid == 0) {
    pause();
    _exit(0);
  }
  return pid;
}

bool has(const std::vector<pid_t>& v, pid_t p) { return std::find(v.begin(), v.end(), p) != v.end(); }

TEST(ChildScanner, FindsChildrenScanAfterScan) {
  pid_t a = start_sleeper();
  ASSERT_GT(a, 0);
  ChildScanner scanner;
  std::vector<pid_t> found, plain;
  scanner.children_of(getpid(), &found);
  children_of(getpid(), &plain);
  EXPECT_TRUE(has(found, a));
  std::sort(found.begin(), found.end());
  std::sort(plain.begin(), plain.end());
  EXPECT_EQ(found, plain);

  // A child forked by another thread is found too (every thread's file is read).
  pid_t b = 0;
  std::thread([&b] { b = start_sleeper(); }).join();
  ASSERT_GT(b, 0);
  found.clear();
  scanner.children_of(getpid(), &found);
  EXPECT_TRUE(has(found, a));
  EXPECT_TRUE(has(found, b));

  kill(a, SIGKILL);
  waitpid(a, nullptr, 0);
  found.clear();
  scanner.children_of(getpid(), &found);
  EXPECT_FALSE(has(found, a));
  EXPECT_TRUE(has(found, b));

  kill(b, SIGKILL);
  waitpid(b, nullptr, 0);
  scanner.forget(getpid());
  found.clear();
  scanner.children_of(getpid(), &found);  // opened again after forget
  EXPECT_FALSE(has(found, b));
}

}  // namespace
}  // namespace pyprofd
