#include "profiler/thread_run_state.h"

#include <errno.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
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
  for (auto& [tid, e] : threads_) {
    if (e.fd >= 0) close(e.fd);
    if (e.sched_fd >= 0) close(e.sched_fd);
  }
}

int ThreadRunState::open_state(uint64_t tid, bool syscall) const {
  char path[64];
  std::snprintf(path, sizeof path, "/proc/%d/task/%llu/%s", pid_, static_cast<unsigned long long>(tid),
                syscall ? "syscall" : "stat");
  return open(path, O_RDONLY | O_CLOEXEC);
}

// A syscall file refused: this thread, and every thread opened from now on, use stat.
void ThreadRunState::to_stat(uint64_t tid, Entry* e) {
  syscall_ = e->syscall = false;
  if (e->fd >= 0) close(e->fd);
  e->fd = open_state(tid, false);
}

ThreadRunState::Entry* ThreadRunState::entry(uint64_t tid) {
  auto it = threads_.find(tid);
  if (it == threads_.end()) {
    Entry e;
    e.syscall = syscall_;
    e.fd = open_state(tid, e.syscall);
    if (e.fd < 0 && e.syscall && errno == EACCES) to_stat(tid, &e);  // not the owner: stat is world-readable
    if (e.fd < 0) return nullptr;
    it = threads_.emplace(tid, e).first;
  }
  it->second.used = true;
  return &it->second;
}

RunState ThreadRunState::read_state(uint64_t tid, Entry* e) {
  // stat: the state sits within the first 64 bytes unless COMM (at most 64 bytes for
  // kernel threads, 16 for others) is long: read enough for any COMM.
  char buf[160];
  ssize_t n = pread(e->fd, buf, sizeof buf, 0);
  ++state_reads_;
  if (n < 0 && e->syscall && (errno == EPERM || errno == EACCES)) {  // syscall needs ptrace rights
    to_stat(tid, e);
    n = e->fd < 0 ? -1 : pread(e->fd, buf, sizeof buf, 0);
  }
  RunState st = RunState::kGone;
  if (n > 0 && e->syscall) {
    // "running" while the task is runnable (stat's 'R'), else the syscall it sleeps in.
    st = n >= 7 && std::memcmp(buf, "running", 7) == 0 ? RunState::kRunning : RunState::kIdle;
  } else if (n > 0) {
    st = parse_stat_state(buf, static_cast<size_t>(n));
  }
  e->last_idle = st == RunState::kIdle;
  return st;
}

bool ThreadRunState::read_sched(uint64_t tid, Entry* e, SchedStat* out) {
  if (e->sched_fd < 0) {
    char path[64];
    std::snprintf(path, sizeof path, "/proc/%d/task/%llu/schedstat", pid_, static_cast<unsigned long long>(tid));
    e->sched_fd = open(path, O_RDONLY | O_CLOEXEC);
    if (e->sched_fd < 0) return false;
  }
  char buf[96];
  ssize_t n = pread(e->sched_fd, buf, sizeof buf - 1, 0);
  if (n <= 0) return false;
  buf[n] = '\0';
  // "RUNTIME DELAY SWITCHES\n" (sscanf was a tenth of an idle host's CPU)
  char* p = buf;
  uint64_t v[3];
  for (uint64_t& x : v) {
    char* end = nullptr;
    x = std::strtoull(p, &end, 10);
    if (end == p) return false;
    p = end;
  }
  *out = SchedStat{v[0], v[1], v[2]};
  return true;
}

RunState ThreadRunState::state(uint64_t tid) {
  Entry* e = entry(tid);
  if (!e) return RunState::kGone;
  e->have_idle = false;
  return read_state(tid, e);
}

RunState ThreadRunState::quick_state(uint64_t tid) {
  Entry* e = entry(tid);
  if (!e) return RunState::kGone;
  if (!e->last_idle) {
    e->have_idle = false;
    return read_state(tid, e);
  }
  SchedStat now;
  // A kernel without sched_info prints "0 0 0": a thread that ever ran has switched in.
  bool have = read_sched(tid, e, &now) && now.switches > 0;
  if (have && e->have_idle && now == e->idle_at) return RunState::kIdle;
  RunState st = read_state(tid, e);
  e->have_idle = have && st == RunState::kIdle;
  e->idle_at = now;
  return st;
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
      if (it->second.sched_fd >= 0) close(it->second.sched_fd);
      it = threads_.erase(it);
    } else {
      it->second.used = false;
      ++it;
    }
  }
}

}  // namespace pyprofd
