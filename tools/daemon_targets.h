// Which processes the daemon samples: --pid, --match REGEX on the command line, or
// --all. A rescan (about once a second) attaches new ones, logs the ones that exited,
// and after a failure that lasts (three rescans, or at once for permission and an
// unsupported version) logs it once and tries again only when the executable changes.
// It runs on a thread of its own, as does following children (--subprocesses): an
// attach reads maps and ELF files, which would show as missed ticks on the sampling
// thread; attached processes are handed to the session ready to sample.
#pragma once
#include <sys/types.h>

#include <atomic>
#include <condition_variable>
#include <map>
#include <regex>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "profiler/session.h"
#include "tools/daemon_options.h"
#include "tools/daemon_state.h"

namespace pyprofd::cli {

class TargetScanner {
 public:
  TargetScanner(const DaemonArgs& args, DaemonState* state) : args_(args), state_(state), selection_(args) {}
  ~TargetScanner() { stop(); }

  // Starts the scanning thread: a rescan at once, then about once a second.
  void start(SamplingSession* session);
  void stop();
  // A rescan as soon as possible (SIGHUP).
  void rescan_soon();
  // SIGHUP: the targets from a re-read --config. At the next rescan, targets no longer
  // selected (and what was followed from them) stop being sampled, new ones are attached.
  void select(const DaemonArgs& fresh);
  // Logs a new target, records its labels and its line on /targets (scanning thread).
  void note_attached(const PythonProcess& proc);

 private:
  void run();
  // Attaches what is new, forgets what is gone, refreshes state_->targets.
  void rescan();
  // --pid, --match or --all: what selects the targets (changed by select()).
  struct Selection {
    explicit Selection(const DaemonArgs& a) : pids(a.pids), match(a.match), match_re(a.match_re), all(a.all) {}
    std::vector<int> pids;
    std::string match;
    std::regex match_re;
    bool all;
  };
  std::set<pid_t> candidates(const Selection& sel) const;
  void release_unselected(const std::set<pid_t>& selected);
  void try_attach(pid_t pid);
  void forget_gone(const std::set<pid_t>& sampled, const std::set<pid_t>& selected);

  const DaemonArgs& args_;
  DaemonState* state_;
  SamplingSession* session_ = nullptr;
  std::thread thread_;
  std::mutex mu_;
  std::condition_variable wake_;
  bool stop_ = false, rescan_now_ = false;  // under mu_
  Selection selection_;                     // under mu_
  std::set<pid_t> roots_;                   // attached because selected (not followed children)
  bool all_ = false;                        // the last rescan's selection was --all
  std::set<pid_t> sampled_;                // sampled at the last rescan
  std::set<pid_t> noted_;                  // attached since the last forget_gone (scanner thread)
  struct Failure {
    std::string exe;     // the executable the attempts were made on
    int attempts = 0;
    bool final = false;  // logged; not tried again until exe changes
  };
  static constexpr int kAttempts = 3;      // rescans (~1 s apart) before a failure is final
  std::map<pid_t, Failure> failed_;
  std::map<pid_t, TargetInfo> failures_;   // failed targets shown on /targets (explicit or Python)
};

}  // namespace pyprofd::cli
