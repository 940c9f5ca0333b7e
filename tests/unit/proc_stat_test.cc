// parse_proc_stat on real and hostile /proc/PID/stat texts.
#include <gtest/gtest.h>

#include <unistd.h>

#include <string>

#include "profiler/proc_stat.h"

namespace pyprofd {
namespace {

bool parse(const std::string& text, ProcStat* st) { return parse_proc_stat(text.data(), text.size(), st); }

TEST(ProcStat, StateAndParentAfterTheLastParenthesis) {
  ProcStat st;
  ASSERT_TRUE(parse("1234 (a (weird) name) S 77 1234 1234 0 -1\n", &st));
  EXPECT_EQ(st.state, 'S');
  EXPECT_EQ(st.ppid, 77);
}

// Found by fuzz_proc (fuzz/regressions/fuzz_proc/ppid-overflow): a parent pid too long
// for an int was signed overflow (UBSan); it is now refused.
TEST(ProcStat, OverlongParentIsRefusedNotOverflowed) {
  ProcStat st;
  EXPECT_FALSE(parse("8690 (python3) R 0938741409589694567865537723472675350\n", &st));
  ASSERT_TRUE(parse("8690 (python3) R 2147483647 0\n", &st));
  EXPECT_EQ(st.ppid, 2147483647);
  EXPECT_FALSE(parse("8690 (python3) R 2147483648 0\n", &st));
}

// Field 20: the process's thread count, in every thread's stat file; -1 when the text
// is cut before the field ends (a short read must not pass for a smaller count).
TEST(ProcStat, ThreadCountIsField20) {
  const std::string line =
      "4242 (a ) b) S 1 4242 4242 0 -1 4194304 1200 0 3 0 150 40 0 0 20 -5 7 0 99 1000 50 18446744073709551615\n";
  ProcStat st;
  ASSERT_TRUE(parse(line, &st));
  EXPECT_EQ(st.threads, 7);
  size_t at = line.find(" 7 0 99");
  ASSERT_TRUE(parse(line.substr(0, at + 2), &st));  // "... -5 7": the 7 may go on
  EXPECT_EQ(st.threads, -1);
  ASSERT_TRUE(parse(line.substr(0, at + 3), &st));
  EXPECT_EQ(st.threads, 7);
  ASSERT_TRUE(parse("4242 (x) R 1 2 3\n", &st));
  EXPECT_EQ(st.threads, -1);
}

// This process's own stat files: every thread's holds the same count.
TEST(ProcStat, OwnThreadCountMatchesTheTaskDirectory) {
  ProcStat st;
  ASSERT_TRUE(read_proc_stat(getpid(), &st));
  EXPECT_GE(st.threads, 1);
  ProcStat task;
  ASSERT_TRUE(read_task_stat(getpid(), static_cast<uint64_t>(getpid()), &task));
  EXPECT_EQ(task.threads, st.threads);
}

}  // namespace
}  // namespace pyprofd
