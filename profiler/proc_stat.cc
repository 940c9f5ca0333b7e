#include "profiler/proc_stat.h"

#include <fcntl.h>
#include <unistd.h>

#include <cstdint>
#include <cstdio>
#include <cstring>

namespace pyprofd {

namespace {

// PID, COMM (at most 64 bytes, for kernel threads), state and PPID fit with room to spare.
constexpr size_t kHeadBytes = 256;

bool read_stat_file(const char* path, ProcStat* out) {
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return false;
  char buf[kHeadBytes];
  ssize_t n = read(fd, buf, sizeof buf);
  close(fd);
  return n > 0 && parse_proc_stat(buf, static_cast<size_t>(n), out);
}

}  // namespace

bool parse_proc_stat(const char* text, size_t len, ProcStat* out) {
  const void* p = memrchr(text, ')', len);
  if (!p) return false;
  size_t at = static_cast<size_t>(static_cast<const char*>(p) - text) + 2;  // ") S PPID"
  if (at >= len) return false;
  out->state = text[at];
  int64_t ppid = 0;
  for (size_t i = at + 2; i < len && text[i] >= '0' && text[i] <= '9'; ++i) {
    ppid = ppid * 10 + (text[i] - '0');
    if (ppid > INT32_MAX) return false;  // no kernel writes this: garbage, not an overflow (fuzz_proc)
  }
  out->ppid = static_cast<pid_t>(ppid);
  return true;
}

bool read_proc_stat(pid_t pid, ProcStat* out) {
  char path[64];
  std::snprintf(path, sizeof path, "/proc/%d/stat", pid);
  return read_stat_file(path, out);
}

bool read_task_stat(pid_t pid, uint64_t tid, ProcStat* out) {
  char path[64];
  std::snprintf(path, sizeof path, "/proc/%d/task/%llu/stat", pid, static_cast<unsigned long long>(tid));
  return read_stat_file(path, out);
}

}  // namespace pyprofd
