// The one parser of /proc/PID/stat and /proc/PID/task/TID/stat: "PID (COMM) S PPID ...".
// COMM may hold ')' and spaces, so the fields are read after the last ')'.
#pragma once
#include <sys/types.h>

#include <cstddef>
#include <cstdint>

namespace pyprofd {

struct ProcStat {
  char state = 0;  // 'R' running or runnable, 'S' sleeping, 'Z' zombie, ...
  pid_t ppid = 0;  // 0 when the text stops before it
};

// Parses a stat file's text (need not be NUL-terminated). False when it has no state.
bool parse_proc_stat(const char* text, size_t len, ProcStat* out);

// Reads and parses /proc/PID/stat. False when the process is gone or unreadable.
bool read_proc_stat(pid_t pid, ProcStat* out);

// Reads and parses /proc/PID/task/TID/stat (one thread).
bool read_task_stat(pid_t pid, uint64_t tid, ProcStat* out);

}  // namespace pyprofd
