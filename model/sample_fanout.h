// The daemon's sink: every sample goes into the current window and into each open
// live-profile request. One function table is shared by all of them (ids never
// change), so windows merge by adding stacks. Thread-safe: the sampling thread adds
// under a short mutex; HTTP threads open and close requests and read snapshots.
#pragma once
#include <map>
#include <memory>
#include <mutex>
#include <set>

#include "model/profile.h"

namespace pyprofd {

class SampleFanout final : public SampleSink {
 public:
  SampleFanout(ProfileMode mode, double rate_hz) : mode_(mode), rate_hz_(rate_hz), window_(empty(0)) {}

  uint32_t intern(const FunctionKey& key) override;
  void add(const SampleLabels& labels, const std::vector<StackFrame>& frames, uint64_t weight_ns) override;

  // Starts a new window at start_ns (wall clock) and returns the one it replaces,
  // ready to export (functions and labels filled in, duration up to start_ns).
  Profile rotate(int64_t start_ns);
  // A copy of the current (partial) window, ready to export, as of now_ns.
  Profile current(int64_t now_ns) const;

  // A live request: receives every sample from now until close_request.
  std::shared_ptr<Profile> open_request(int64_t now_ns);
  // Stops feeding it and fills in what an exporter needs.
  void close_request(const std::shared_ptr<Profile>& request, int64_t now_ns);

  // Several completed windows as one profile (they share the function table).
  Profile merge(const std::vector<std::shared_ptr<const Profile>>& windows) const;

  // Labels added to every sample, and to one process's samples.
  void set_labels(std::vector<std::pair<std::string, std::string>> labels);
  void set_process_labels(int pid, std::vector<std::pair<std::string, std::string>> labels);
  // A process no longer sampled: its labels and count go at the second rotation from now
  // (the window, and a live request, that may hold its last samples still get its labels).
  // A daemon following respawning workers would otherwise keep every pid it ever saw.
  void forget_process(int pid);

  // The sampling rate from now on (the period of the current and later windows).
  void set_rate(double hz);

  // Samples seen per process since start, and the wall-clock time (ns since the epoch)
  // of the first of them (0: none yet).
  uint64_t samples_of(int pid) const;
  int64_t first_sample_of(int pid) const;

 private:
  Profile empty(int64_t start_ns) const;
  void finish(Profile* p, int64_t end_ns) const;  // caller holds mu_

  ProfileMode mode_;
  double rate_hz_;
  mutable std::mutex mu_;
  Profile functions_;  // only its function table is used
  Profile window_;
  std::set<std::shared_ptr<Profile>> requests_;
  std::vector<std::pair<std::string, std::string>> labels_;
  std::map<int, std::vector<std::pair<std::string, std::string>>> process_labels_;
  struct Counted {
    uint64_t samples = 0;
    int64_t first_ns = 0;
  };
  std::map<int, Counted> samples_;
  std::set<int> forgotten_, forgotten_earlier_;  // by forget_process: since the last rotation, before it
};

}  // namespace pyprofd
