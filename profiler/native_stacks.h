// --native for one process: captures each sampled thread's native stack (perf samples or,
// for a thread blocked in the kernel, its /proc syscall pointers: the target is not
// stopped; or a short ptrace stop where perf events are not allowed or --native-pause
// always), unwinds and symbolizes it and merges it with the thread's Python frames.
#pragma once
#include <sys/types.h>

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

#include "profiler/native_capture.h"
#include "profiler/native_merge.h"
#include "profiler/perf_stacks.h"
#include "symbolizer/native_unwinder.h"

namespace pyprofd {

enum class NativePause { kNever, kAuto, kAlways };

struct NativeOptions {
  bool enabled = false;  // --native
  bool all = false;      // --native-all: keep the interpreter's call machinery
  NativePause pause = NativePause::kAuto;
};

struct NativeStats {
  uint64_t merged = 0;       // stacks merged
  uint64_t torn = 0;         // native and Python stacks that did not pair (dropped)
  uint64_t unavailable = 0;  // no native copy of a thread this tick (dropped)
  uint64_t pauses = 0;       // threads stopped to read them
};

class NativeStacks {
 public:
  // period_ns: how often perf copies a running thread's stack (per CPU time).
  NativeStacks(pid_t pid, const NativeOptions& options, uint64_t period_ns);
  ~NativeStacks();
  NativeStacks(const NativeStacks&) = delete;
  NativeStacks& operator=(const NativeStacks&) = delete;

  // Once per tick before the threads are merged: perf events for new threads, rings read,
  // the mapped files re-read now and then.
  void begin_tick(const std::vector<pid_t>& tids);

  // t's native stack merged with its Python frames (innermost first, into *out). rewalk()
  // re-reads the Python frames; called while the thread is stopped in pause mode. False
  // (counted in stats) when there is no native copy or the two do not pair; why in *why.
  bool merge(pid_t tid, const std::vector<RawFrame>& python, const std::function<void()>& rewalk,
             std::vector<MergedFrame>* out, std::string* why, NativeStats* stats);

  bool pausing() const { return pausing_; }
  // The tick period changed (the daemon's CPU budget): perf copies follow it. A ring holds
  // ten copies and drops newer ones when full, so copies must not outpace the ticks.
  void set_tick(uint64_t period_ns);
  // "libz.so.1!deflate", "python3.11+0x1234" without a symbol.
  static std::string frame_name(const MergedFrame& f);

 private:
  bool capture(pid_t tid, const std::function<void()>& rewalk, NativeCapture** cap, std::string* why,
               NativeStats* stats);
  void refresh_maps();
  NativeUnwind unwind(const NativeCapture& cap);  // into frames_, named

  pid_t pid_;
  NativeOptions options_;
  NativeUnwinder unwinder_;
  PerfStacks perf_;
  bool pausing_ = false;
  bool perf_failed_ = false;
  int64_t maps_read_at_ = 0;
  NativeCapture scratch_;
  std::vector<NativeFrameRef> frames_;
  std::unordered_map<pid_t, int> syscall_fds_;  // tid -> its /proc syscall file, kept open
};

}  // namespace pyprofd
