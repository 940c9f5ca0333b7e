// 3.14+: the offsets _asyncio publishes about itself in the `.AsyncioDebug` section
// (Modules/_asynciomodule.c's Py_AsyncioModuleDebugOffsets: 13 uint64), so that a patch
// release whose TaskObj or thread state moved is read right without a new table. The
// section is in _asyncio's .so on 3.14 (mapped only once asyncio is imported) and in
// the executable or libpython on 3.15; its symbol is not exported, so it is found by
// section name in the files the target maps, and read from the target's memory.
#pragma once
#include <sys/types.h>

#include <cstdint>
#include <optional>
#include <string>

#include "profiler/asyncio_layout.h"
#include "profiler/remote_memory.h"

namespace pyprofd {

// Field order of Py_AsyncioModuleDebugOffsets (docs/cpython-3.14-3.15/asyncio_debug_3.1x.txt).
struct AsyncioDebugSection {
  uint64_t task_size, task_name, task_awaited_by, task_is_task, task_awaited_by_is_set, task_coro, task_node;
  uint64_t interp_size, interp_tasks_head;
  uint64_t ts_size, ts_running_loop, ts_running_task, ts_tasks_head;
};
static_assert(sizeof(AsyncioDebugSection) == 104, "13 uint64");

// Reads the section of the first file pid maps that has one (its path in *where).
// nullopt if none does (3.14 before `import asyncio`, a build without the section).
std::optional<AsyncioDebugSection> read_asyncio_debug(pid_t pid, RemoteMemory& mem, std::string* where);

// Puts the section's values into al, with the TaskObj fields that the struct declares
// next to them (fut_state right after awaited_by, fut_waiter right before coro). False,
// with al untouched and the reason in *why, if the values do not fit together.
// *changed lists the fields whose value differs from al's ("task_coro 128->136, ...").
bool apply_asyncio_debug(const AsyncioDebugSection& s, AsyncioLayout* al, std::string* why, std::string* changed);

}  // namespace pyprofd
