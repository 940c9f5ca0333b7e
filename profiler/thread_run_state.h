// Whether another process's threads are on a CPU right now, from the state field of
// /proc/PID/task/TID/stat ('R': running or runnable), as py-spy decides it.
//
// Not schedstat's CPU time: the kernel advances it only at scheduler ticks and when a
// thread is switched out, so a thread that ran 1 ms and then went to sleep shows its
// CPU on the next tick, when its stack is already the sleeping one. Weighting that
// stack by the delta charged request handlers' CPU to the event loop's select().
// Each thread's stat file stays open and is re-read with one pread per tick.
//
// still_idle() is the cheap check for threads that were idle: schedstat (3 numbers,
// a third of stat's cost) unchanged since a read that preceded an idle stat means the
// thread has not been switched in since (the switch count and the CPU time move on
// every switch), so it is not on a CPU now.
#pragma once
#include <sys/types.h>

#include <cstdint>
#include <unordered_map>

namespace pyprofd {

enum class RunState { kRunning, kIdle, kGone };

// The state from the text of a stat file ("PID (COMM) S ..."; COMM may hold ')' and
// spaces, so the state follows the last ')'). kGone when the text has none. *threads (if
// given) gets the process's thread count, -1 if the text stops before it.
RunState parse_stat_state(const char* text, size_t len, int64_t* threads = nullptr);

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
  // The thread count in the last stat file read since forget_stat_threads(), -1 if none:
  // every thread's stat file holds the process's count, so a tick that read one needs
  // no process_threads().
  int64_t stat_threads() const { return stat_threads_; }
  void forget_stat_threads() { stat_threads_ = -1; }
  size_t stat_reads() const { return stat_reads_; }  // for tests: reads of stat files
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
    bool used = false;
    bool last_idle = false;   // the last stat read said idle
    bool have_idle = false;   // idle_at was read before an idle stat read
    SchedStat idle_at;
  };

  Entry* entry(uint64_t tid);
  RunState read_state(Entry* e);
  bool read_sched(uint64_t tid, Entry* e, SchedStat* out);

  pid_t pid_;
  int proc_fd_ = -1;
  std::unordered_map<uint64_t, Entry> threads_;
  size_t stat_reads_ = 0;
  int64_t stat_threads_ = -1;
};

}  // namespace pyprofd
