#include "profiler/whole_file.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <cerrno>
#include <fstream>
#include <iterator>

namespace pyprofd {
namespace {

// A read that fails after the open (here EISDIR; for a /proc file of a process that has
// just exited, ESRCH): the stream reading it throws, the whole-file reader says so.
TEST(WholeFile, AFailedReadIsAnErrorNotAThrow) {
  EXPECT_THROW(
      {
        std::ifstream in("/proc/self/task", std::ios::binary);
        std::string s((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
      },
      std::ios_base::failure);
  std::string text = "stale";
  EXPECT_EQ(read_whole_file("/proc/self/task", &text), EISDIR);
  EXPECT_EQ(text, "");
  EXPECT_EQ(whole_file_text("/proc/self/task"), "");
  EXPECT_EQ(read_whole_file("/proc/no-such-file", &text), ENOENT);
}

TEST(WholeFile, ReadsWholeAndBounded) {
  std::string text;
  ASSERT_EQ(read_whole_file("/proc/self/status", &text), 0);
  EXPECT_NE(text.find("\nPid:\t"), std::string::npos);
  ASSERT_EQ(read_whole_file("/proc/self/status", &text, 10), 0);
  EXPECT_EQ(text.size(), 10u);
  EXPECT_EQ(text.compare(0, 5, "Name:"), 0);
}

// This process's command line (NULs as spaces, none trailing) and name; "" once gone.
TEST(WholeFile, CommandLineAndName) {
  std::string cmd = proc_command_line(getpid());
  EXPECT_NE(cmd.find("unit_tests"), std::string::npos) << cmd;
  EXPECT_EQ(cmd.find('\0'), std::string::npos);
  EXPECT_NE(cmd.back(), ' ');
  EXPECT_EQ(proc_comm(getpid()), "unit_tests");
  EXPECT_EQ(proc_command_line(0x3fffffff), "");  // above pid_max: no such process
  EXPECT_EQ(proc_comm(0x3fffffff), "");
}

}  // namespace
}  // namespace pyprofd
