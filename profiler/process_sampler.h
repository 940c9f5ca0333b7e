// Samples one attached Python process into the shared profile: lists its threads,
// keeps the ones the mode wants (CPU used since the last tick, GIL holder), walks
// them and resolves frames through the code-object cache.
#pragma once
#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

#include "profiler/attach.h"
#include "profiler/profile.h"
#include "profiler/thread_cpu.h"
#include "profiler/thread_reader.h"
#include "symbolizer/code_cache.h"

namespace pyprofd {

struct SamplingOptions {
  ProfileMode mode = ProfileMode::kCpu;
  bool idle = false;  // cpu mode: keep threads that used no CPU since the last tick
  bool gil = false;   // keep only the GIL holder
};

struct SamplingStats {
  uint64_t samples = 0;   // thread stacks added to the profile
  uint64_t invalid = 0;   // torn or unreadable stacks, dropped
  uint64_t errors = 0;    // failed reads of a process
};

class ProcessSampler {
 public:
  ProcessSampler(std::unique_ptr<PythonProcess> proc, const SamplingOptions& options, Profile* profile);

  // One tick: wall_ns is the real time since the previous tick. False when the
  // interpreter can no longer be read (the process exited or exec'd).
  bool sample(uint64_t wall_ns, SamplingStats* stats);

  pid_t pid() const { return proc_->pid; }
  const PythonProcess& process() const { return *proc_; }
  size_t threads_seen() const { return threads_seen_.size(); }

 private:
  const std::string& thread_name(uint64_t thread_id);
  bool resolve(const ThreadSample& t);

  std::unique_ptr<PythonProcess> proc_;
  SamplingOptions options_;
  Profile* profile_;
  ThreadReader reader_;
  CodeCache codes_;
  ThreadCpu cpu_;
  std::vector<ThreadSample> threads_;
  std::vector<StackFrame> stack_;
  SampleLabels labels_;
  std::unordered_map<uint64_t, std::string> names_;
  int64_t names_read_at_ = 0;  // CLOCK_MONOTONIC ns of the last read of threading's names
  std::unordered_map<uint64_t, bool> threads_seen_;
  uint64_t ticks_ = 0;
  bool ever_read_ = false;
};

}  // namespace pyprofd
