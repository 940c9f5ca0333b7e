// Finding a process's children while recording, from /proc/PID/task/TID/children
// (every thread's, since any thread may fork); a full /proc scan where the kernel
// lacks that file.
#pragma once
#include <sys/types.h>

#include <vector>

namespace pyprofd {

// Direct children of pid (all its threads), appended to out.
void children_of(pid_t pid, std::vector<pid_t>* out);

}  // namespace pyprofd
