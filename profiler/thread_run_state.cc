#include "profiler/thread_run_state.h"

#include <fcntl.h>
#include <unistd.h>

#include <cstdio>
#include <cstring>

#include "profiler/proc_stat.h"

namespace pyprofd {

RunState parse_stat_state(const char* text, size_t len) {
  ProcStat stat;
  if (!parse_proc_stat(text, len, &stat)) return RunState::kGone;
  return stat.state == 'R' ? RunState::kRunning : RunState::kIdle;
}

// num_threads: the 18th field after the state (fields 3 and 20 of proc(5)).
int64_t parse_stat_threads(const char* text, size_t len) {
  const void* p = memrchr(text, ')', len);
  if (!p) return -1;
  size_t i = static_cast<size_t>(static_cast<const char*>(p) - text) + 1;
  for (int field = 0; field < 17; ++field) {  // skip to the 18th space-separated field
    while (i < len && text[i] == ' ') ++i;
    while (i < len && text[i] != ' ') ++i;
  }
  while (i < len && text[i] == ' ') ++i;
  int64_t n = 0;
  size_t start = i;
  for (; i < len && text[i] >= '0' && text[i] <= '9' && n < (int64_t{1} << 32); ++i) n = n * 10 + (text[i] - '0');
  return i > start && i < len ? n : -1;
}

ThreadRunState::~ThreadRunState() {
  if (proc_fd_ >= 0) close(proc_fd_);
  for (auto& [tid, e] : threads_)
    if (e.fd >= 0) close(e.fd);
}

RunState ThreadRunState::state(uint64_t tid) {
  auto it = threads_.find(tid);
  if (it == threads_.end()) {
    char path[64];
    std::snprintf(path, sizeof path, "/proc/%d/task/%llu/stat", pid_, static_cast<unsigned long long>(tid));
    Entry e;
    e.fd = open(path, O_RDONLY | O_CLOEXEC);
    if (e.fd < 0) return RunState::kGone;
    it = threads_.emplace(tid, e).first;
  }
  it->second.used = true;
  // The state sits within the first 64 bytes unless COMM (at most 64 bytes for
  // kernel threads, 16 for others) is long: read enough for any COMM.
  char buf[160];
  ssize_t n = pread(it->second.fd, buf, sizeof buf, 0);
  if (n <= 0) return RunState::kGone;
  return parse_stat_state(buf, static_cast<size_t>(n));
}

int64_t ThreadRunState::process_threads() {
  if (proc_fd_ < 0) {
    char path[64];
    std::snprintf(path, sizeof path, "/proc/%d/stat", pid_);
    proc_fd_ = open(path, O_RDONLY | O_CLOEXEC);
    if (proc_fd_ < 0) return -1;
  }
  // COMM is at most 64 bytes; the fields up to num_threads take ~150 more.
  char buf[512];
  ssize_t n = pread(proc_fd_, buf, sizeof buf, 0);
  return n > 0 ? parse_stat_threads(buf, static_cast<size_t>(n)) : -1;
}

void ThreadRunState::sweep() {
  for (auto it = threads_.begin(); it != threads_.end();) {
    if (!it->second.used) {
      if (it->second.fd >= 0) close(it->second.fd);
      it = threads_.erase(it);
    } else {
      it->second.used = false;
      ++it;
    }
  }
}

}  // namespace pyprofd
