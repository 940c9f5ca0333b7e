// Which processes the daemon samples: --pid, --match REGEX on the command line, or
// --all. A rescan (about once a second) attaches new ones, logs the ones that exited,
// and after a failure that lasts (three rescans, or at once for permission and an
// unsupported version) logs it once and tries again only when the executable changes.
#pragma once
#include <sys/types.h>

#include <map>
#include <set>
#include <string>

#include "profiler/session.h"
#include "tools/daemon_options.h"
#include "tools/daemon_state.h"

namespace pyprofd::cli {

class TargetScanner {
 public:
  TargetScanner(const DaemonArgs& args, DaemonState* state) : args_(args), state_(state) {}

  // Attaches what is new, forgets what is gone, refreshes state_->targets.
  void rescan(SamplingSession* session);

 private:
  std::set<pid_t> candidates() const;
  void try_attach(SamplingSession* session, pid_t pid);
  void note_attached(const PythonProcess& proc);
  void forget_gone(const std::set<pid_t>& sampled);

  const DaemonArgs& args_;
  DaemonState* state_;
  std::set<pid_t> sampled_;                // sampled at the last rescan
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
