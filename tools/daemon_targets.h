// Which processes the daemon samples: --pid, --match REGEX on the command line, or
// --all. A rescan (about once a second) attaches new ones, logs the ones that exited,
// and tries a process that failed again only once its executable has changed.
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
  std::map<pid_t, std::string> failed_;    // pid -> executable when attaching it failed
  std::map<pid_t, TargetInfo> failures_;   // failed targets shown on /targets (explicit or Python)
};

}  // namespace pyprofd::cli
