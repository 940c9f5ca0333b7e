// perf_event_open per target thread: the kernel copies the user registers and the top of the
// user stack (PERF_SAMPLE_REGS_USER | PERF_SAMPLE_STACK_USER) every period of the thread's
// CPU time, into a ring buffer we read. The target is never stopped.
#pragma once
#include <sys/types.h>

#include <cstdint>
#include <unordered_map>
#include <vector>

#include "profiler/native_capture.h"
#include "profiler/perf_ring.h"

namespace pyprofd {

class PerfStacks {
 public:
  explicit PerfStacks(uint64_t period_ns) : period_ns_(period_ns) {}
  ~PerfStacks();
  PerfStacks(const PerfStacks&) = delete;
  PerfStacks& operator=(const PerfStacks&) = delete;

  // Starts sampling thread tid: 0, or the errno of perf_event_open/mmap (EACCES and
  // EPERM: perf events are not allowed here).
  int open(pid_t tid);
  bool is_open(pid_t tid) const { return rings_.count(tid) != 0; }
  // Stops sampling threads not in live.
  void retain_only(const std::vector<pid_t>& live);
  // Reads every ring; keeps each thread's newest sample.
  void drain();
  // tid's newest sample if the thread has used at most max_cpu_ns of CPU since, or nullptr.
  const NativeCapture* latest(pid_t tid, uint64_t max_cpu_ns) const;
  uint64_t period_ns() const { return period_ns_; }
  // A new period for every ring (PERF_EVENT_IOC_PERIOD) and the ones opened later.
  void set_period(uint64_t period_ns);

 private:
  struct Ring {
    PerfRing ring;
    NativeCapture last;
    uint64_t last_cpu_ns = 0;  // the thread's CPU time at that sample
    bool has_last = false;
  };
  bool parse_sample(const uint8_t* rec, size_t len, Ring& r);

  uint64_t period_ns_;
  std::unordered_map<pid_t, Ring> rings_;
};

}  // namespace pyprofd
