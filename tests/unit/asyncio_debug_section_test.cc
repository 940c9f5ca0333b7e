// The 3.14/3.15 asyncio table (profiler/asyncio_layout.cc) against what the interpreter
// itself publishes: the 13 uint64 of the .AsyncioDebug section (Modules/_asynciomodule.c's
// Py_AsyncioModuleDebugOffsets), in _asyncio's .so on 3.14 and in the executable on 3.15.
#include <fcntl.h>
#include <gelf.h>
#include <gtest/gtest.h>
#include <libelf.h>
#include <unistd.h>

#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <string>

#include "profiler/asyncio_layout.h"

namespace pyprofd {
namespace {

// Field order of Py_AsyncioModuleDebugOffsets (docs/cpython-3.14-3.15/asyncio_debug_3.1x.txt).
struct AsyncioDebug {
  uint64_t task_size, task_name, task_awaited_by, task_is_task, task_awaited_by_is_set, task_coro, task_node;
  uint64_t interp_size, interp_tasks_head;
  uint64_t ts_size, ts_running_loop, ts_running_task, ts_tasks_head;
};
static_assert(sizeof(AsyncioDebug) == 104, "13 uint64");

// The bytes of the section called `name` in the ELF file at path.
bool read_section(const std::string& path, const char* name, void* out, size_t len, std::string* err) {
  elf_version(EV_CURRENT);
  int fd = open(path.c_str(), O_RDONLY);
  if (fd < 0) return *err = "cannot open " + path, false;
  Elf* e = elf_begin(fd, ELF_C_READ, nullptr);
  size_t shstrndx = 0;
  bool ok = false;
  *err = std::string("no section ") + name + " in " + path;
  Elf_Scn* scn = nullptr;
  while (e && elf_getshdrstrndx(e, &shstrndx) == 0 && !ok && (scn = elf_nextscn(e, scn))) {
    GElf_Shdr sh;
    const char* n = gelf_getshdr(scn, &sh) ? elf_strptr(e, shstrndx, sh.sh_name) : nullptr;
    if (!n || std::strcmp(n, name) != 0) continue;
    if (sh.sh_size < len) return *err = "section too short", elf_end(e), close(fd), false;
    ok = pread(fd, out, len, static_cast<off_t>(sh.sh_offset)) == static_cast<ssize_t>(len);
  }
  if (e) elf_end(e);
  close(fd);
  return ok;
}

class AsyncioDebugSection : public ::testing::TestWithParam<int> {};

TEST_P(AsyncioDebugSection, TableMatchesTheSection) {
  const int minor = GetParam();
  const std::string v = "3." + std::to_string(minor);
  const char* home = std::getenv("HOME");
  const std::string root = std::string(home ? home : "/root") + "/.cache/pyprofd/pythons/" + v + "/root";
  const std::string file = minor == 14 ? root + "/usr/lib/python3.14/lib-dynload/_asyncio.cpython-314-x86_64-linux-gnu.so"
                                       : root + "/usr/bin/python" + v;
  if (access(file.c_str(), R_OK) != 0) GTEST_SKIP() << "not installed (tools/install-pythons.sh): " << file;
  AsyncioDebug d{};
  std::string err;
  ASSERT_TRUE(read_section(file, ".AsyncioDebug", &d, sizeof d, &err)) << err;
  const AsyncioLayout* al = asyncio_layout(minor);
  ASSERT_NE(al, nullptr);
  EXPECT_EQ(d.task_size, al->task_size);
  EXPECT_EQ(d.task_name, al->task_name);
  EXPECT_EQ(d.task_coro, al->task_coro);
  EXPECT_EQ(d.task_node, al->task_node);
  EXPECT_EQ(d.interp_tasks_head, al->interp_tasks_head);
  EXPECT_EQ(d.ts_running_task, al->tstate_running_task);
  EXPECT_EQ(d.ts_tasks_head, al->tstate_tasks_head);
  // fut_state (not in the section) lies just before the is_task flag, as in FutureObj.
  EXPECT_EQ(d.task_is_task, al->fut_state + 4u);
}

INSTANTIATE_TEST_SUITE_P(Sid, AsyncioDebugSection, ::testing::Values(14, 15),
                         [](const ::testing::TestParamInfo<int>& p) { return "sid3_" + std::to_string(p.param); });

}  // namespace
}  // namespace pyprofd
