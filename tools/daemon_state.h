// What the daemon's sampling thread and its HTTP threads share: the sample fan-out,
// the completed windows, the metrics and the target list, each behind a mutex the
// sampling thread holds only to copy a few values in or out.
#pragma once
#include <sys/types.h>

#include <atomic>
#include <condition_variable>
#include <deque>
#include <map>
#include <memory>
#include <mutex>
#include <string>

#include "model/daemon_metrics.h"
#include "model/sample_fanout.h"

namespace pyprofd::cli {

struct TargetInfo {
  pid_t pid = 0;
  std::string command;
  std::string python_version;  // "" if not Python or not attached
  std::string state;           // "sampling" or why not ("unsupported Python 3.7", ...)
};

struct DaemonState {
  DaemonState(ProfileMode mode, double rate_hz) : fanout(mode, rate_hz) {}

  SampleFanout fanout;
  std::mutex mu;  // guards the members below
  std::deque<std::shared_ptr<const Profile>> windows;  // completed windows, oldest first
  DaemonMetrics metrics;
  std::map<pid_t, TargetInfo> targets;
  std::condition_variable stopped;  // notified (under mu) when stopping is set
  bool stopping = false;
  std::atomic<bool> sampling{false};
};

}  // namespace pyprofd::cli
