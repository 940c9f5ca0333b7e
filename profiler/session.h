// A sampling session, the profiler's API for `record` (and a daemon next): attach a
// target or a tree, then run the sampling loop, which ticks on absolute deadlines,
// samples every attached process into a SampleSink, follows the process tree and
// keeps the run's counters for the summary.
#pragma once
#include <signal.h>
#include <sys/types.h>

#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <vector>

#include "profiler/attach.h"
#include "profiler/process_sampler.h"
#include "profiler/process_tree.h"
#include "model/sample_sink.h"

namespace pyprofd {

struct SessionOptions {
  double rate_hz = 100;
  double duration_s = 0;      // 0: until stopped
  bool subprocesses = false;  // follow children (and theirs)
  SamplingOptions sampling;
  pid_t launched = 0;         // a child we started: reaped here, its status kept
  bool keep_running = false;  // the daemon: go on sampling when every target is gone
  std::function<void()> on_tick;  // called at each tick before sampling (the daemon's windows)
  // The daemon: attaching (slow: maps, ELF, version) never runs on the sampling thread.
  // Another thread calls scan_tree() and add_target(); ready processes are handed to
  // the sampling thread, which starts them at its next tick.
  bool attach_elsewhere = false;
  // Called on the attaching thread for each process attached while running (instead of
  // the session's own log line).
  std::function<void(const PythonProcess&)> on_attached;
};

struct SessionSummary {
  int64_t wall_ns = 0;
  uint64_t ticks = 0;
  uint64_t missed_ticks = 0;
  SamplingStats stats;
  std::set<pid_t> pids;       // every Python process sampled
  size_t threads = 0;         // distinct threads seen
  int launched_status = -1;   // wait status of the launched child, -1 if still running
  int64_t own_cpu_ns = 0;     // pyprofd's own CPU (user + system) spent in the sampling loop
  int64_t first_sample_ns = -1;  // from the start of run() to the first stack recorded
  int switch_records_errno = 0;  // cpu mode: why context-switch records could not be opened (0: not tried or opened)
};

class SamplingSession {
 public:
  SamplingSession(const SessionOptions& options, SampleSink* sink);

  // Starts with a running process: attaches it, or with subprocesses follows a
  // non-Python root (e.g. a shell whose children run Python). False, with err, otherwise.
  bool attach(pid_t pid, AttachError* err);

  // Starts with options.launched: polls until its interpreter is up, so sampling starts
  // with its first Python frame. Gives up when the child exits, the error cannot pass
  // (permission, version) or *stop is set; then with subprocesses it follows the tree
  // instead, else returns false with err holding the last attach error.
  bool attach_launched(const volatile sig_atomic_t* stop, AttachError* err);

  // Attaches the root target. For a launched child, call until it succeeds.
  bool attach_root(pid_t pid, AttachError* err);

  // Follows pid's tree without sampling pid itself (a non-Python root with --subprocesses).
  void follow_root(pid_t pid) {
    root_ = pid;
    tree_.insert(pid);
  }

  // Samples until *stop becomes non-zero, the duration passes, or every target is gone.
  // on_status is called about 4 times a second.
  void run(const volatile sig_atomic_t* stop, const std::function<void(const SessionSummary&)>& on_status);

  // Adds an attached target while running (with attach_elsewhere, from the attaching
  // thread): samples it, and with subprocesses follows its tree.
  void add_target(std::unique_ptr<PythonProcess> proc);

  // With attach_elsewhere, from the attaching thread: finds new children of the
  // followed tree and attaches them (what run() does itself otherwise).
  void scan_tree() { scan_children(); }

  // With attach_elsewhere, from the attaching thread: stops sampling pid and the
  // processes followed from it (the daemon's targets changed). The sampling thread
  // drops them at its next tick. Returns them (pid first).
  std::vector<pid_t> release(pid_t pid);

  // The processes sampled now or handed over for sampling (thread-safe).
  std::vector<pid_t> sampled_pids() const;
  // One sampled process (nullptr if not sampled); only on the sampling thread.
  const PythonProcess* process(pid_t pid) const;

  const SessionSummary& summary() const { return summary_; }
  // Changes the sampling rate from the next tick on; only from on_tick.
  void set_rate(double hz) { new_rate_hz_ = hz; }
  // Reaps the launched child without blocking; true once it has exited.
  bool reap_launched();

 private:
  bool scan_children();  // true if it attached a process (one exited at the same time may hide it: rare, harmless)
  void try_attach(pid_t pid);
  void adopt(std::unique_ptr<ProcessSampler> sampler);  // starts sampling (sampling thread)
  void take_handed_over();                           // adopts what another thread attached, drops what it released
  void drop(pid_t pid);                              // stops sampling (sampling thread)
  bool is_sampled(pid_t pid) const;
  void review_on_cpu(int64_t now);
  void open_on_cpu(double proc_cost, double record_cost);
  uint64_t host_context_switches();

  SessionOptions options_;
  SampleSink* sink_;
  SessionSummary summary_;
  std::map<pid_t, std::unique_ptr<ProcessSampler>> samplers_;
  std::set<pid_t> tree_;          // every process of the followed tree, Python or not
  std::map<pid_t, int> attempts_; // failed attaches per process (bounded retries)
  size_t retired_threads_ = 0;     // threads seen by samplers already dropped
  pid_t root_ = 0;
  ChildScanner children_;          // the tree's /proc children files, kept open (by the thread that scans)
  OnCpu on_cpu_;                   // cpu mode: who is on a CPU, drained each tick
  bool review_set_up_ = false;
  bool no_switch_events_ = false;  // not cpu mode, declined, refused, or taken for good
  int64_t next_review_ns_ = 0, reviewed_ns_ = 0;
  uint64_t switches_ = 0, skips_ = 0;  // at the last review
  std::string stat_text_;
  double new_rate_hz_ = 0;  // set_rate's, 0 when none is pending
  uint64_t interval_ns_ = 0;  // the tick period since a set_rate (0: options_.sampling's), for samplers adopted later
  // Shared with the attaching thread: processes attached there, and the pids sampled or
  // handed over (what sampled_pids() answers).
  mutable std::mutex handoff_mu_;
  std::vector<std::unique_ptr<ProcessSampler>> handed_over_;
  std::vector<pid_t> released_;
  std::set<pid_t> published_;
};

}  // namespace pyprofd
