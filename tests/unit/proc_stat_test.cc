// parse_proc_stat on real and hostile /proc/PID/stat texts.
#include <gtest/gtest.h>

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

}  // namespace
}  // namespace pyprofd
