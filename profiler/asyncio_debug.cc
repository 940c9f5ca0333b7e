#include "profiler/asyncio_debug.h"

#include <map>
#include <vector>

#include "profiler/proc_maps.h"
#include "symbolizer/elf_image.h"

namespace pyprofd {
namespace {

constexpr uint64_t kMaxTaskSize = 4096;
constexpr uint64_t kMaxStateSize = uint64_t{1} << 24;  // PyInterpreterState is ~220 KiB

std::string base_name(const std::string& path) {
  auto slash = path.rfind('/');
  return slash == std::string::npos ? path : path.substr(slash + 1);
}

// Files that may carry the section: _asyncio's extension, libpython, the executable.
bool may_hold_section(const std::string& path) {
  std::string b = base_name(path);
  return b.rfind("_asyncio.", 0) == 0 || b.rfind("libpython", 0) == 0 || b.rfind("python", 0) == 0;
}

// A pointer-sized field at off that lies inside an object of size bytes.
bool pointer_in(uint64_t off, uint64_t size, uint64_t len = 8) { return off % 8 == 0 && off >= 16 && off + len <= size; }

}  // namespace

std::optional<AsyncioDebugSection> read_asyncio_debug(pid_t pid, RemoteMemory& mem, std::string* where) {
  std::vector<MapEntry> maps;
  if (pid <= 0 || !read_maps(pid, &maps, nullptr)) return std::nullopt;
  std::map<std::string, const MapEntry*> lowest;  // file -> its mapping with the lowest file offset
  for (const MapEntry& m : maps) {
    if (m.path.empty() || m.path[0] != '/' || !may_hold_section(m.path)) continue;
    auto it = lowest.find(m.path);
    if (it == lowest.end() || m.offset < it->second->offset) lowest[m.path] = &m;
  }
  for (const auto& [path, first] : lowest) {
    auto image = ElfImage::open(proc_root_path(pid, path), nullptr);
    auto sec = image ? image->section(".AsyncioDebug") : std::nullopt;
    if (!sec || sec->size < sizeof(AsyncioDebugSection)) continue;
    auto bias = image->load_bias(first->start, first->offset);
    AsyncioDebugSection s{};
    if (!bias || !mem.read(sec->vaddr + *bias, &s, sizeof s)) continue;
    if (where) *where = path;
    return s;
  }
  return std::nullopt;
}

bool apply_asyncio_debug(const AsyncioDebugSection& s, AsyncioLayout* al, std::string* why, std::string* changed) {
  const uint64_t ts = s.task_size;
  if (ts < 64 || ts > kMaxTaskSize) return *why = "TaskObj size " + std::to_string(ts), false;
  if (!pointer_in(s.task_name, ts) || !pointer_in(s.task_coro, ts) || !pointer_in(s.task_node, ts, 16) ||
      !pointer_in(s.task_awaited_by, ts, 16) || s.task_coro < 24)
    return *why = "a TaskObj field outside the object", false;
  // FutureObj: awaited_by, then fut_state (an int), then the is_task flag.
  if (s.task_is_task != s.task_awaited_by + 12 || s.task_awaited_by_is_set != s.task_is_task + 1)
    return *why = "FutureObj's fields around fut_state are not where 3.14/3.15 declare them", false;
  if (s.ts_size < 64 || s.ts_size > kMaxStateSize || !pointer_in(s.ts_running_loop, s.ts_size) ||
      !pointer_in(s.ts_running_task, s.ts_size) || !pointer_in(s.ts_tasks_head, s.ts_size, 16))
    return *why = "a _PyThreadStateImpl field outside the object", false;
  if (s.interp_size > kMaxStateSize || !pointer_in(s.interp_tasks_head, s.interp_size, 16))
    return *why = "PyInterpreterState.asyncio_tasks_head outside the object", false;
  AsyncioLayout n = *al;
  n.task_size = static_cast<uint32_t>(ts);
  n.task_name = static_cast<uint32_t>(s.task_name);
  n.task_coro = static_cast<uint32_t>(s.task_coro);
  n.task_fut_waiter = static_cast<uint32_t>(s.task_coro - 8);  // TaskObj: task_fut_waiter; task_coro
  n.fut_state = static_cast<uint32_t>(s.task_awaited_by + 8);
  n.task_awaited_by = static_cast<uint32_t>(s.task_awaited_by);
  n.task_awaited_by_is_set = static_cast<uint32_t>(s.task_awaited_by_is_set);
  n.task_node = static_cast<uint32_t>(s.task_node);
  n.ts_running_loop = static_cast<uint32_t>(s.ts_running_loop);
  n.tstate_running_task = static_cast<uint32_t>(s.ts_running_task);
  n.tstate_tasks_head = static_cast<uint32_t>(s.ts_tasks_head);
  n.interp_tasks_head = static_cast<uint32_t>(s.interp_tasks_head);
  changed->clear();
  auto diff = [&](const char* name, uint32_t was, uint32_t now) {
    if (was == now) return;
    if (!changed->empty()) *changed += ", ";
    *changed += std::string(name) + " " + std::to_string(was) + "->" + std::to_string(now);
  };
  diff("task_size", al->task_size, n.task_size);
  diff("task_name", al->task_name, n.task_name);
  diff("task_coro", al->task_coro, n.task_coro);
  diff("task_fut_waiter", al->task_fut_waiter, n.task_fut_waiter);
  diff("fut_state", al->fut_state, n.fut_state);
  diff("task_awaited_by", al->task_awaited_by, n.task_awaited_by);
  diff("task_node", al->task_node, n.task_node);
  diff("ts_running_loop", al->ts_running_loop, n.ts_running_loop);
  diff("ts_running_task", al->tstate_running_task, n.tstate_running_task);
  diff("ts_tasks_head", al->tstate_tasks_head, n.tstate_tasks_head);
  diff("interp_tasks_head", al->interp_tasks_head, n.interp_tasks_head);
  *al = n;
  return true;
}

}  // namespace pyprofd
