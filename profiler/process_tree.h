// Finding a process's children while recording, from /proc/PID/task/TID/children
// (every thread's, since any thread may fork); a full /proc scan where the kernel
// lacks that file.
#pragma once
#include <dirent.h>
#include <sys/types.h>

#include <unordered_map>
#include <vector>

namespace pyprofd {

// Direct children of pid (all its threads), appended to out.
void children_of(pid_t pid, std::vector<pid_t>* out);

// The same for a tree scanned ten times a second: each process's task directory and each
// thread's children file stay open and are re-read (rewinddir, pread), so a scan costs a
// getdents and one pread per thread instead of an open, reads and a close of each file
// (opening /proc files was most of a scan's cost). At most kMaxFiles stay open; beyond
// that files are opened per scan as children_of does.
class ChildScanner {
 public:
  static constexpr size_t kMaxFiles = 256;

  ChildScanner() = default;
  ~ChildScanner();
  ChildScanner(const ChildScanner&) = delete;
  ChildScanner& operator=(const ChildScanner&) = delete;

  void children_of(pid_t pid, std::vector<pid_t>* out);
  // Closes what is open for pid (it exited or left the tree).
  void forget(pid_t pid);

 private:
  struct Proc {
    DIR* dir = nullptr;
    std::unordered_map<long, int> files;  // tid -> fd of its children file
  };
  bool read_tasks(pid_t pid, Proc& p, std::vector<pid_t>* out);

  std::unordered_map<pid_t, Proc> procs_;
  size_t open_files_ = 0;
  std::vector<long> seen_;
};

}  // namespace pyprofd
