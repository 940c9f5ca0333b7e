// parse_maps on synthetic text (odd lines, spaces, deleted files, pseudo-paths) and read_maps
// on a python started by the test.
#include "profiler/proc_maps.h"
#include "tests/unit/test_interpreters.h"

#include <gtest/gtest.h>
#include <poll.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <climits>
#include <cstdlib>

namespace pyprofd {
namespace {

TEST(ProcMaps, ParsesTypicalLines) {
  const std::string text =
      "00400000-0041f000 r--p 00000000 fe:01 1234567                            /usr/bin/python3.11\n"
      "7f0000000000-7f0000021000 rw-p 00000000 00:00 0 \n"
      "01d2e000-01e4f000 rw-p 00000000 00:00 0                                  [heap]\n"
      "7ffd1c0a0000-7ffd1c0c1000 rw-p 00000000 00:00 0                          [stack]\n"
      "7f1000000000-7f1000001000 r-xp 0001a000 08:02 42   /tmp/my dir/lib with spaces.so\n"
      "7f2000000000-7f2000002000 r--p 00002000 08:02 43   /tmp/gone.so (deleted)\n"
      "ffffffffff600000-ffffffffff601000 --xp 00000000 00:00 0                  [vsyscall]";
  auto m = parse_maps(text);
  ASSERT_EQ(m.size(), 7u);
  EXPECT_EQ(m[0].start, 0x400000u);
  EXPECT_EQ(m[0].end, 0x41f000u);
  EXPECT_EQ(m[0].perms, "r--p");
  EXPECT_EQ(m[0].inode, 1234567u);
  EXPECT_EQ(m[0].path, "/usr/bin/python3.11");
  EXPECT_EQ(m[1].path, "");
  EXPECT_EQ(m[1].inode, 0u);
  EXPECT_EQ(m[2].path, "[heap]");
  EXPECT_EQ(m[3].path, "[stack]");
  EXPECT_EQ(m[4].path, "/tmp/my dir/lib with spaces.so");
  EXPECT_EQ(m[4].offset, 0x1a000u);
  EXPECT_TRUE(m[4].executable());
  EXPECT_FALSE(m[4].deleted);
  EXPECT_EQ(m[5].path, "/tmp/gone.so");
  EXPECT_TRUE(m[5].deleted);
  EXPECT_EQ(m[6].start, 0xffffffffff600000u);
  EXPECT_EQ(m[6].path, "[vsyscall]");
}

TEST(ProcMaps, SkipsOddLines) {
  const std::string text =
      "\n"
      "garbage\n"
      "00400000 r--p 00000000 fe:01 1 /a\n"                          // no end
      "00500000-00400000 r--p 00000000 fe:01 1 /b\n"                 // end before start
      "00400000-00401000 r--pp 00000000 fe:01 1 /c\n"                // bad perms
      "00400000-00401000 r--p zz fe:01 1 /d\n"                       // bad offset
      "00400000-00401000 r--p 00000000 fe01 1 /e\n"                  // bad dev
      "00400000-00401000 r--p 00000000 fe:01 x1 /f\n"                // bad inode
      "11112222333344445-11112222333344446 r--p 0 0:0 0 /g\n"        // 17 hex digits
      "00400000-00401000 r--p 00000000 fe:01 99999999999999999999999 /h\n"  // inode overflow
      "00400000-00401000 r--p 00000000 fe:01 7 /ok\r\n"
      "00401000-00402000 r--p";                                      // truncated, no newline
  auto m = parse_maps(text);
  ASSERT_EQ(m.size(), 1u);
  EXPECT_EQ(m[0].path, "/ok");
  EXPECT_EQ(m[0].inode, 7u);
  EXPECT_TRUE(parse_maps("").empty());
  EXPECT_TRUE(parse_maps(std::string(1000, '\0')).empty());
}

TEST(ProcMaps, ProcRootPath) {
  EXPECT_EQ(proc_root_path(42, "/usr/lib/libpython3.9.so"), "/proc/42/root/usr/lib/libpython3.9.so");
  EXPECT_EQ(proc_root_path(7, "rel"), "/proc/7/root/rel");
}

TEST(ProcMaps, ReadMapsMissingProcess) {
  std::vector<MapEntry> m;
  int err = 0;
  // PIDs above pid_max (at most 2^22) never exist.
  EXPECT_FALSE(read_maps(1 << 30, &m, &err));
  EXPECT_EQ(err, ENOENT);
}

bool read_line(int fd, std::string* line, int timeout_ms) {
  line->clear();
  for (;;) {
    pollfd p{fd, POLLIN, 0};
    if (poll(&p, 1, timeout_ms) <= 0) return false;
    char c;
    if (read(fd, &c, 1) != 1) return false;
    if (c == '\n') return true;
    *line += c;
  }
}

TEST(ProcMaps, ReadsLivePython) {
  // pyenv's 3.12 (shared libpython), wherever test_interpreters() found it.
  const std::string py = test_interpreters()[4].path;
  const std::string libpath = py.substr(0, py.rfind("/bin/")) + "/lib/libpython3.12.so.1.0";
  const char* python = py.c_str();
  const char* lib = libpath.c_str();
  if (access(python, X_OK) != 0) GTEST_SKIP() << "interpreter not installed: " << python;
  int ip[2], op[2];
  ASSERT_EQ(pipe(ip), 0);
  ASSERT_EQ(pipe(op), 0);
  pid_t pid = fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    dup2(ip[0], 0);
    dup2(op[1], 1);
    close(ip[0]); close(ip[1]); close(op[0]); close(op[1]);
    // A large allocation makes sure there is anonymous memory; readiness is the printed line.
    execl(python, python, "-c",
          "import sys; b = bytearray(1 << 24); print('ready', flush=True); sys.stdin.read()",
          (char*)nullptr);
    _exit(127);
  }
  close(ip[0]);
  close(op[1]);
  std::string line;
  bool ready = read_line(op[0], &line, 30000);
  std::vector<MapEntry> maps;
  int err = 0;
  bool ok = ready && read_maps(pid, &maps, &err);
  kill(pid, SIGKILL);
  waitpid(pid, nullptr, 0);
  close(ip[1]);
  close(op[0]);
  ASSERT_TRUE(ready) << "no readiness line from " << python;
  ASSERT_TRUE(ok) << err;
  ASSERT_FALSE(maps.empty());

  char real[PATH_MAX];
  ASSERT_TRUE(realpath(lib, real));
  bool lib_exec = false, stack = false, anon = false;
  for (size_t i = 0; i < maps.size(); ++i) {
    EXPECT_LT(maps[i].start, maps[i].end);
    if (i > 0) {
      EXPECT_LE(maps[i - 1].end, maps[i].start);  // sorted, disjoint
    }
    if (maps[i].path == real && maps[i].executable()) {
      lib_exec = true;
      EXPECT_NE(maps[i].inode, 0u);
    }
    stack |= maps[i].path == "[stack]";
    anon |= maps[i].path.empty();
  }
  EXPECT_TRUE(lib_exec) << "no executable mapping of " << real;
  EXPECT_TRUE(stack);
  EXPECT_TRUE(anon);
}

}  // namespace
}  // namespace pyprofd
