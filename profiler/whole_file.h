// Small files read whole with read(2), for /proc above all: a /proc file of a process that
// exits while it is read fails with ESRCH, which std::ifstream reports by throwing
// std::ios_failure from its buffer (whatever its exception mask): a daemon ended by a
// target's exit. These never throw.
#pragma once
#include <sys/types.h>

#include <cstddef>
#include <string>

namespace pyprofd {

constexpr size_t kMaxWholeFile = 1 << 20;

// The file's bytes (at most max) into *out; 0, or the errno of the failed open or read
// (*out then holds what was read before it).
int read_whole_file(const std::string& path, std::string* out, size_t max = kMaxWholeFile);

// The file's bytes, "" when it cannot be read.
std::string whole_file_text(const std::string& path, size_t max = kMaxWholeFile);

// A process's argv joined by single spaces, and its name (comm); "" for kernel threads
// and vanished processes.
std::string proc_command_line(pid_t pid);
std::string proc_comm(pid_t pid);

}  // namespace pyprofd
