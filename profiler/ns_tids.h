// Thread ids of a process in another pid namespace (a container seen from the host).
// CPython stores the ids its own namespace gives (native_thread_id, glibc's tid), but
// /proc/PID/task/ on the host lists host ids: NSpid in /proc/PID/task/*/status gives
// both. A process in our namespace costs nothing: every id maps to itself.
#pragma once
#include <sys/types.h>

#include <cstdint>
#include <string>
#include <unordered_map>
#include <vector>

namespace pyprofd {

// The NSpid line of a status file's text: ids from the outermost namespace to the
// process's own; empty when it has none (kernels before 4.1).
std::vector<int64_t> parse_nspid(const std::string& status_text);

class NamespaceTids {
 public:
  explicit NamespaceTids(pid_t pid);

  // True when the process's ids are ours (no mapping needed).
  bool same_namespace() const { return same_; }
  // The process's pid in its own namespace (what its threads' structures hold).
  int64_t inner_pid() const { return inner_pid_; }
  // A thread id as the process sees it -> the host's (what /proc/PID/task lists);
  // 0 when unknown. The table is re-read on a miss, at most 10 times a second.
  uint64_t to_host(uint64_t ns_tid) { return same_ ? ns_tid : lookup(ns_tid); }
  // The thread list changed: a reused id may now name another thread, so the next
  // lookup re-reads the table (at most 10 times a second).
  void invalidate() { stale_ = true; }

 private:
  uint64_t lookup(uint64_t ns_tid);
  void reload();

  pid_t pid_;
  bool same_ = true;
  int64_t inner_pid_;
  bool stale_ = false;
  int64_t loaded_at_ = 0;  // CLOCK_MONOTONIC ns of the last reload
  std::unordered_map<uint64_t, uint64_t> host_of_;
};

}  // namespace pyprofd
