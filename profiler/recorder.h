// The sampling loop: ticks on absolute deadlines, samples every attached process,
// follows the process tree, and keeps the run's counters for the summary.
#pragma once
#include <signal.h>
#include <sys/types.h>

#include <functional>
#include <map>
#include <memory>
#include <set>
#include <vector>

#include "profiler/attach.h"
#include "profiler/process_sampler.h"
#include "model/profile.h"

namespace pyprofd {

struct RecordOptions {
  double rate_hz = 100;
  double duration_s = 0;      // 0: until stopped
  bool subprocesses = false;  // follow children (and theirs)
  SamplingOptions sampling;
  pid_t launched = 0;         // a child we started: reaped here, its status kept
};

struct RecordSummary {
  int64_t wall_ns = 0;
  uint64_t ticks = 0;
  uint64_t missed_ticks = 0;
  SamplingStats stats;
  std::set<pid_t> pids;       // every Python process sampled
  size_t threads = 0;         // distinct threads seen
  int launched_status = -1;   // wait status of the launched child, -1 if still running
  int64_t own_cpu_ns = 0;     // pyprofd's own CPU (user + system) spent in the sampling loop
  int64_t first_sample_ns = -1;  // from the start of run() to the first stack recorded
};

class Recorder {
 public:
  Recorder(const RecordOptions& options, Profile* profile);

  // Attaches the root target. For a launched child, call until it succeeds.
  bool attach_root(pid_t pid, AttachError* err);

  // Follows pid's tree without sampling pid itself (a non-Python root with --subprocesses).
  void follow_root(pid_t pid) {
    root_ = pid;
    tree_.insert(pid);
  }

  // Samples until *stop becomes non-zero, the duration passes, or every target is gone.
  // on_status is called about 4 times a second.
  void run(const volatile sig_atomic_t* stop, const std::function<void(const RecordSummary&)>& on_status);

  const RecordSummary& summary() const { return summary_; }
  // Reaps the launched child without blocking; true once it has exited.
  bool reap_launched();

 private:
  void scan_children();
  void try_attach(pid_t pid);

  RecordOptions options_;
  Profile* profile_;
  RecordSummary summary_;
  std::map<pid_t, std::unique_ptr<ProcessSampler>> samplers_;
  std::set<pid_t> tree_;          // every process of the followed tree, Python or not
  std::map<pid_t, int> attempts_; // failed attaches per process (bounded retries)
  size_t retired_threads_ = 0;     // threads seen by samplers already dropped
  pid_t root_ = 0;
};

}  // namespace pyprofd
