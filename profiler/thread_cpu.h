// CPU time of another process's threads, from /proc/PID/task/TID/schedstat (ns on
// CPU). Thread CPU clocks of other processes cannot be read with clock_gettime, so
// each thread's schedstat stays open and is re-read with one pread per tick.
#pragma once
#include <sys/types.h>

#include <cstdint>
#include <unordered_map>

namespace pyprofd {

class ThreadCpu {
 public:
  explicit ThreadCpu(pid_t pid) : pid_(pid) {}
  ~ThreadCpu();
  ThreadCpu(const ThreadCpu&) = delete;
  ThreadCpu& operator=(const ThreadCpu&) = delete;

  // CPU nanoseconds the thread used since the previous call for it (0 on the first
  // call), or -1 if the thread cannot be read (gone).
  int64_t delta_ns(uint64_t tid);
  // Total CPU nanoseconds of the thread so far, or -1.
  int64_t total_ns(uint64_t tid);
  // Closes files of threads not asked about since the previous sweep.
  void sweep();

 private:
  struct Entry {
    int fd = -1;
    int64_t last = -1;
    bool used = false;
  };
  Entry* entry(uint64_t tid);

  pid_t pid_;
  std::unordered_map<uint64_t, Entry> threads_;
};

}  // namespace pyprofd
