// Python-level thread names (threading.Thread.name) of a target interpreter.
#pragma once
#include <cstdint>
#include <string>
#include <unordered_map>

#include "profiler/layout.h"
#include "profiler/remote_memory.h"

namespace pyprofd {

// pthread ident (threading.get_ident() == PyThreadState.thread_id) -> Thread.name, read from
// sys.modules['threading']._active. Empty if threading is not imported or unreadable.
std::unordered_map<uint64_t, std::string> read_thread_names(RemoteMemory& mem, const Layout& layout,
                                                            uint64_t interp_state);

}  // namespace pyprofd
