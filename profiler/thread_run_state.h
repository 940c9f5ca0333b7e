// Whether another process's threads are on a CPU right now: running or runnable, the
// state 'R' of /proc/PID/task/TID/stat, as py-spy decides it. Read from the thread's
// syscall file instead ("running" exactly then; about half of stat's cost, which formats
// 52 fields: bench/state_read_cost.c) when this process may trace the target, else from
// stat. (For a thread caught between setting a sleep state and switching out, the kernel
// waits until it is out: the slowest of 20,000 reads of a thread sleeping 0.1 ms in a
// loop matched stat's.)
//
// Not schedstat's CPU time: the kernel advances it only at scheduler ticks and when a
// thread is switched out, so a thread that ran 1 ms and then went to sleep shows its
// CPU on the next tick, when its stack is already the sleeping one. Weighting that
// stack by the delta charged request handlers' CPU to the event loop's select().
// Each thread's file stays open and is re-read with one pread per tick.
//
// quick_state() is the cheap check for threads that were idle: schedstat (3 numbers,
// a third of stat's cost) unchanged since a read that preceded an idle state means the
// thread has not been switched in since (the switch count and the CPU time move on
// every switch), so it is not on a CPU now.
#pragma once
#include <sys/types.h>

#include <cstdint>
#include <unordered_map>

namespace pyprofd {

enum class RunState { kRunning, kIdle, kGone };

// The state from the text of a stat file ("PID (COMM) S ..."; COMM may hold ')' and
// spaces, so the state follows the last ')'). kGone when the text has none.
RunState parse_stat_state(const char* text, size_t len);

class ThreadRunState {
 public:
  explicit ThreadRunState(pid_t pid) : pid_(pid) {}
  ~ThreadRunState();
  ThreadRunState(const ThreadRunState&) = delete;
  ThreadRunState& operator=(const ThreadRunState&) = delete;

  RunState state(uint64_t tid);
  // As state(), but a thread idle at its last read whose schedstat has not changed
  // since is idle without a read of its stat file.
  RunState quick_state(uint64_t tid);
  // The process's thread count (the link count of /proc/PID/task, kept open), -1 if
  // unreadable: a change means threads started or ended.
  int64_t process_threads();
  // Reads of state files so far: a tick that read none decided on schedstat alone.
  size_t state_reads() const { return state_reads_; }
  bool reads_syscall() const { return syscall_; }      // for tests: the state comes from syscall files
  // Closes files of threads not asked about since the previous sweep.
  void sweep();

 private:
  struct SchedStat {
    uint64_t runtime = 0, delay = 0, switches = 0;
    bool operator==(const SchedStat& o) const {
      return runtime == o.runtime && delay == o.delay && switches == o.switches;
    }
  };
  struct Entry {
    int fd = -1, sched_fd = -1;
    bool syscall = true;      // fd is the syscall file, not stat
    bool used = false;
    bool last_idle = false;   // the last state read said idle
    bool have_idle = false;   // idle_at was read before an idle state read
    SchedStat idle_at;
  };

  int open_state(uint64_t tid, bool syscall) const;
  void to_stat(uint64_t tid, Entry* e);
  Entry* entry(uint64_t tid);
  RunState read_state(uint64_t tid, Entry* e);
  bool read_sched(uint64_t tid, Entry* e, SchedStat* out);

  pid_t pid_;
  int proc_fd_ = -1;
  std::unordered_map<uint64_t, Entry> threads_;
  size_t state_reads_ = 0;
  bool syscall_ = true;  // until a syscall file is refused
};

}  // namespace pyprofd
