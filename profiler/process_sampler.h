// Samples one attached Python process into the session's sink: lists its threads,
// keeps the ones the mode wants (on a CPU this tick, GIL holder), walks
// them and resolves frames through the code-object cache.
#pragma once
#include <memory>
#include <string>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "profiler/asyncio_tasks.h"
#include "profiler/attach.h"
#include "model/sample_sink.h"
#include "profiler/thread_run_state.h"
#include "profiler/thread_reader.h"
#include "profiler/code_cache.h"
#include "profiler/native_stacks.h"
#include "profiler/on_cpu.h"

namespace pyprofd {

struct SamplingOptions {
  ProfileMode mode = ProfileMode::kCpu;
  bool idle = false;  // cpu mode: keep threads that are not on a CPU too
  bool gil = false;   // keep only the GIL holder
  bool async_tasks = false;  // asyncio: one stack per task, await chains nested (--async)
  NativeOptions native;      // --native: native frames merged into each thread's stack
  uint64_t interval_ns = 10 * 1000 * 1000;  // the tick period (perf copies stacks at this CPU-time period)
};

struct SamplingStats {
  uint64_t samples = 0;   // thread stacks added to the profile
  uint64_t invalid = 0;   // torn or unreadable stacks, dropped (the sum of the reasons below)
  uint64_t errors = 0;    // failed reads of a process
  uint64_t invalid_walks[kWalkStatusCount] = {};  // by the last walk's status (kOk: its code was unreadable)
  uint64_t invalid_tasks = 0;  // asyncio tasks or task stacks that did not decode
  uint64_t unreadable_task_names = 0;  // task names not read cleanly, shown as "<task ?>" (samples kept)
  uint64_t idle_skips = 0;  // cpu mode: process-ticks skipped, nothing of the process on a CPU
  uint64_t idle_skips_by_records = 0;  // ... of them known from context-switch records (not /proc)
  NativeStats native;     // --native: merged, torn, unavailable (the last two dropped, not in `invalid`), pauses

  // "changing 12, freed frame 3": the non-zero reasons, "" if none.
  std::string invalid_reasons() const;
};

class ProcessSampler {
 public:
  ProcessSampler(std::unique_ptr<PythonProcess> proc, const SamplingOptions& options, SampleSink* sink);

  // One tick: wall_ns is the real time since the previous tick. False when the
  // interpreter can no longer be read (the process exited or exec'd).
  bool sample(uint64_t wall_ns, SamplingStats* stats);

  pid_t pid() const { return proc_->pid; }
  const PythonProcess& process() const { return *proc_; }
  size_t threads_seen() const { return threads_seen_.size(); }
  // The tick period changed (set_rate): --native's perf copies follow it.
  void set_interval(uint64_t interval_ns);
  // cpu mode: the session's context-switch tracker, drained each tick before sampling
  // (nullptr or not open: the idle check reads /proc).
  void set_on_cpu(const OnCpu* on_cpu) { on_cpu_ = on_cpu; }

 private:
  const std::string& thread_name(uint64_t thread_id);
  bool resolve(ThreadSample& t);
  StackFrame python_frame(CodeInfo* code, int32_t byte_offset);
  const std::vector<StackFrame>* resolve_cached(ThreadSample& t);
  bool walk_and_resolve(ThreadSample& t);
  bool resolve_async(const AsyncStack& s);
  // --native: t's stack merged with its native frames into stack_; false (counted) if not.
  bool resolve_native(ThreadSample& t, SamplingStats* stats);
  uint32_t native_function(const MergedFrame& f);
  // --async --native: the native frames below the innermost Python frame of thread
  // native_id (root-first), the leaf tail of the task running on it; merged once a tick.
  // nullptr (counted in stats) when its stacks did not pair.
  const std::vector<StackFrame>* native_tail(uint64_t native_id, SamplingStats* stats);
  // Samples the asyncio tasks; marks in covered_ (cleared by the caller) the threads whose stack a running task replaced.
  void sample_tasks(uint64_t wall_ns, const std::unordered_map<uint64_t, uint64_t>& cpu_of, SamplingStats* stats);
  RunState run_state(uint64_t native_id, bool quick = false);  // quick: ThreadRunState::quick_state
  uint64_t pthread_of(uint64_t native_id) const;
  bool nothing_on_cpu();
  bool threads_bound();
  void add_sample(uint64_t native_id, uint64_t thread_id, const std::string& task, uint64_t weight,
                  SamplingStats* stats, const std::vector<StackFrame>& stack);

  std::unique_ptr<PythonProcess> proc_;
  SamplingOptions options_;
  const OnCpu* on_cpu_ = nullptr;
  bool skip_by_records_ = false;  // the last nothing_on_cpu answered from on_cpu_
  SampleSink* sink_;
  ThreadReader reader_;
  CodeCache codes_;
  ThreadRunState states_;
  std::vector<ThreadSample> threads_;
  std::vector<StackFrame> stack_;
  // Per thread state: the raw frames last resolved and their stack. An unchanged walk
  // (an idle thread) of the same frames takes the stack as it is: no lookups, no line tables.
  struct Resolved {
    std::vector<RawFrame> frames;
    std::vector<StackFrame> stack;
  };
  std::unordered_map<uint64_t, Resolved> resolved_;
  SampleLabels labels_;
  std::unordered_map<uint64_t, std::string> names_;
  int64_t names_read_at_ = 0;  // CLOCK_MONOTONIC ns of the last read of threading's names
  int64_t names_refresh_ns_ = 200 * 1000 * 1000;  // kNamesRefreshNs, backing off while names are missing
  static constexpr size_t kMaxUnnamed = 1024;
  std::unordered_set<uint64_t> unnamed_;           // threads looked for and not found
  std::unordered_map<uint64_t, bool> threads_seen_;
  std::unique_ptr<AsyncioReader> asyncio_;
  std::vector<TaskInfo> tasks_;
  std::vector<AsyncStack> async_stacks_;
  std::unordered_map<uint64_t, uint64_t> cpu_of_;      // native thread id -> weight of a thread on a CPU this tick (cpu mode)
  std::vector<uint64_t> covered_;                       // threads sampled through their running task
  std::unique_ptr<NativeStacks> native_;
  std::vector<MergedFrame> merged_;
  std::vector<pid_t> native_tids_;
  std::unordered_map<const NativeSymbol*, uint32_t> native_ids_;  // symbols are never freed
  std::string native_why_;
  struct NativeTail {
    bool ok = false;
    std::vector<StackFrame> frames;
  };
  std::unordered_map<uint64_t, NativeTail> tails_;  // this tick's, by native thread id
  uint64_t ticks_ = 0;
  // cpu mode: run states read this tick (native id, state), and what the last full read saw.
  std::vector<std::pair<uint64_t, RunState>> tick_states_;
  int64_t full_read_ns_ = 0;  // monotonic time of the last read in cpu mode
  int64_t os_threads_ = -1;  // the process's thread count before the last full read
  bool threads_bound_ = false;  // threads_bound() at the last full read
  std::vector<uint64_t> bound_ids_;
  bool ever_read_ = false;
  int64_t revalidated_at_ = 0;
};

}  // namespace pyprofd
