#include "profiler/thread_run_state.h"

#include <fcntl.h>
#include <sys/stat.h>
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
    std::snprintf(path, sizeof path, "/proc/%d/task", pid_);
    proc_fd_ = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (proc_fd_ < 0) return -1;
  }
  // The task directory's link count is the thread count + 2: an fstat, a quarter of
  // what a read of /proc/PID/stat costs (no text formatted).
  struct stat st;
  if (fstat(proc_fd_, &st) != 0 || st.st_nlink < 2) return -1;
  return static_cast<int64_t>(st.st_nlink) - 2;
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
