// Which processes have a thread on a CPU, or preempted and waiting to go back, from the
// kernel's context-switch records (perf_event_open with context_switch, one ring per CPU,
// read without a system call). cpu mode asks it whether an idle process can be skipped
// this tick instead of reading /proc for each of its threads: at host scale those reads
// were most of the daemon's CPU.
#pragma once
#include <sys/types.h>

#include <cstdint>
#include <thread>
#include <vector>

#include "profiler/perf_ring.h"

namespace pyprofd {

class OnCpu {
 public:
  // Opens a ring on every online CPU and makes each CPU switch once (a thread of its own
  // visits them), so that what runs there is known. 0, or the errno of the first failure
  // (EACCES, EPERM: perf events are not allowed here), with nothing kept open.
  int open();
  bool is_open() const { return !rings_.empty(); }
  size_t cpus() const { return rings_.size(); }  // CPUs watched (those online at open)
  void close();
  ~OnCpu() { close(); }

  // Reads the records since the last call, in time order (once a tick, before the
  // processes are asked).
  void drain(int64_t now_ns);

  // Whether a thread of process pid is on a CPU or preempted, as of the last drain.
  // kUnknown: not open, a CPU not seen switching yet, or records lost in the last second.
  enum class State { kIdle, kBusy, kUnknown };
  State state(pid_t pid) const;
  bool surely_idle(pid_t pid) const { return state(pid) == State::kIdle; }

  static constexpr int64_t kDistrustNs = 1000 * 1000 * 1000;  // after lost records
  static constexpr size_t kMaxPreempted = 4096;

 private:
  struct Switch {
    uint64_t time;
    uint32_t cpu;
    pid_t out_pid, out_tid;  // a switch-out's leaving thread (-1 for a switch-in)
    pid_t in_pid, in_tid;    // the thread on the CPU after the switch
    bool preempted;          // the leaving thread is still runnable
  };
  struct Task {
    pid_t pid = -1, tid = -1;  // -1: not known yet
  };
  void collect(uint32_t cpu, const perf_event_header& h, const uint8_t* rec);
  void apply(const Switch& s);
  void forget_preempted(pid_t tid);
  static void visit_every_cpu(std::vector<uint32_t> cpus);

  std::vector<PerfRing> rings_;
  std::thread visitor_;
  std::vector<uint32_t> ring_cpu_;
  std::vector<Task> current_;                       // per CPU: what runs there
  std::vector<std::pair<pid_t, pid_t>> preempted_;  // (tid, pid) preempted and not back yet
  std::vector<Switch> batch_;                       // this drain's records, sorted by time
  int64_t distrust_until_ns_ = 0;
  bool lost_ = false;
  int64_t now_ns_ = 0;
};

}  // namespace pyprofd
