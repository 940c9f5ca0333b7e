#include "profiler/thread_cpu.h"

#include <fcntl.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <string>

namespace pyprofd {

ThreadCpu::~ThreadCpu() {
  for (auto& [tid, e] : threads_)
    if (e.fd >= 0) close(e.fd);
}

ThreadCpu::Entry* ThreadCpu::entry(uint64_t tid) {
  auto it = threads_.find(tid);
  if (it == threads_.end()) {
    char path[64];
    std::snprintf(path, sizeof path, "/proc/%d/task/%llu/schedstat", pid_, static_cast<unsigned long long>(tid));
    Entry e;
    e.fd = open(path, O_RDONLY | O_CLOEXEC);
    if (e.fd < 0) return nullptr;
    it = threads_.emplace(tid, e).first;
  }
  it->second.used = true;
  return &it->second;
}

int64_t ThreadCpu::total_ns(uint64_t tid) {
  Entry* e = entry(tid);
  if (!e) return -1;
  char buf[96];
  ssize_t n = pread(e->fd, buf, sizeof buf - 1, 0);
  if (n <= 0) return -1;
  buf[n] = '\0';
  char* end = nullptr;
  long long v = std::strtoll(buf, &end, 10);
  if (end == buf || v < 0) return -1;
  return v;
}

int64_t ThreadCpu::delta_ns(uint64_t tid) {
  int64_t now = total_ns(tid);
  if (now < 0) return -1;
  Entry* e = &threads_[tid];
  int64_t d = e->last < 0 ? 0 : now - e->last;
  e->last = now;
  return d < 0 ? 0 : d;
}

void ThreadCpu::sweep() {
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
