// The 3.14/3.15 asyncio table (profiler/asyncio_layout.cc) against what the interpreter
// itself publishes (and how the reader applies a section that differs from the table): the 13 uint64 of the .AsyncioDebug section (Modules/_asynciomodule.c's
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

#include "profiler/asyncio_debug.h"
#include "profiler/asyncio_layout.h"

namespace pyprofd {
namespace {

using AsyncioDebug = AsyncioDebugSection;  // read here from the file, not the process

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
  EXPECT_EQ(d.task_awaited_by, al->task_awaited_by);
  EXPECT_EQ(d.task_awaited_by_is_set, al->task_awaited_by_is_set);
  EXPECT_EQ(d.ts_running_loop, al->ts_running_loop);
  EXPECT_EQ(d.task_node, al->task_node);
  EXPECT_EQ(d.interp_tasks_head, al->interp_tasks_head);
  EXPECT_EQ(d.ts_running_task, al->tstate_running_task);
  EXPECT_EQ(d.ts_tasks_head, al->tstate_tasks_head);
  // fut_state (not in the section) lies just before the is_task flag, as in FutureObj.
  EXPECT_EQ(d.task_is_task, al->fut_state + 4u);
  // Applied to the table, the section changes nothing.
  AsyncioLayout copy = *al;
  std::string why, changed;
  ASSERT_TRUE(apply_asyncio_debug(d, &copy, &why, &changed)) << why;
  EXPECT_EQ(changed, "");
  EXPECT_EQ(copy.task_fut_waiter, al->task_fut_waiter);
  EXPECT_EQ(copy.fut_state, al->fut_state);
}

// The 3.14 section's values as a base for the tests below.
AsyncioDebug section_314() {
  return AsyncioDebug{168, 136, 96, 108, 109, 128, 152, 225864, 10880, 936, 864, 872, 880};
}

// A release whose TaskObj gained a field before awaited_by and whose thread state grew:
// every offset comes from the section, and fut_state / fut_waiter move with their neighbours.
TEST(AsyncioDebugApply, MovedFieldsComeFromTheSection) {
  AsyncioDebug d = section_314();
  for (uint64_t* f : {&d.task_size, &d.task_name, &d.task_awaited_by, &d.task_is_task, &d.task_awaited_by_is_set,
                      &d.task_coro, &d.task_node})
    *f += 8;
  d.ts_size += 16, d.ts_running_loop += 16, d.ts_running_task += 16, d.ts_tasks_head += 16;
  d.interp_tasks_head -= 24;
  AsyncioLayout al = *asyncio_layout(14);
  std::string why, changed;
  ASSERT_TRUE(apply_asyncio_debug(d, &al, &why, &changed)) << why;
  EXPECT_EQ(al.task_size, 176u);
  EXPECT_EQ(al.task_name, 144u);
  EXPECT_EQ(al.task_coro, 136u);
  EXPECT_EQ(al.task_fut_waiter, 128u);
  EXPECT_EQ(al.fut_state, 112u);
  EXPECT_EQ(al.task_awaited_by, 104u);
  EXPECT_EQ(al.task_node, 160u);
  EXPECT_EQ(al.ts_running_loop, 880u);
  EXPECT_EQ(al.tstate_running_task, 888u);
  EXPECT_EQ(al.tstate_tasks_head, 896u);
  EXPECT_EQ(al.interp_tasks_head, 10856u);
  EXPECT_NE(changed.find("task_coro 128->136"), std::string::npos) << changed;
  EXPECT_NE(changed.find("ts_tasks_head 880->896"), std::string::npos) << changed;
}

// Values that do not describe the structs we know are refused and the table kept.
TEST(AsyncioDebugApply, ImplausibleSectionsAreRefused) {
  const AsyncioLayout table = *asyncio_layout(14);
  auto refused = [&](void (*edit)(AsyncioDebug*)) {
    AsyncioDebug d = section_314();
    edit(&d);
    AsyncioLayout al = table;
    std::string why, changed;
    bool ok = apply_asyncio_debug(d, &al, &why, &changed);
    EXPECT_EQ(al.task_coro, table.task_coro);
    EXPECT_EQ(al.tstate_tasks_head, table.tstate_tasks_head);
    return !ok && !why.empty();
  };
  EXPECT_TRUE(refused([](AsyncioDebug* d) { d->task_size = 0; }));
  EXPECT_TRUE(refused([](AsyncioDebug* d) { d->task_size = 1 << 20; }));
  EXPECT_TRUE(refused([](AsyncioDebug* d) { d->task_coro = 400; }));       // past the object
  EXPECT_TRUE(refused([](AsyncioDebug* d) { d->task_name = 137; }));       // not a pointer slot
  EXPECT_TRUE(refused([](AsyncioDebug* d) { d->task_node = 160; }));       // a node is 16 bytes
  EXPECT_TRUE(refused([](AsyncioDebug* d) { d->task_is_task = 112; }));    // fut_state no longer beside it
  EXPECT_TRUE(refused([](AsyncioDebug* d) { d->ts_tasks_head = 930; }));
  EXPECT_TRUE(refused([](AsyncioDebug* d) { d->ts_size = 0; }));
  EXPECT_TRUE(refused([](AsyncioDebug* d) { d->interp_tasks_head = d->interp_size; }));
  EXPECT_TRUE(refused([](AsyncioDebug* d) { *d = AsyncioDebug{}; }));     // zeroed (not initialised)
}

INSTANTIATE_TEST_SUITE_P(Sid, AsyncioDebugSection, ::testing::Values(14, 15),
                         [](const ::testing::TestParamInfo<int>& p) { return "sid3_" + std::to_string(p.param); });

}  // namespace
}  // namespace pyprofd
