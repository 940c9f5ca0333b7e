// --push URL: sends each completed window to Pyroscope's HTTP ingest API
// (POST URL/ingest?name=APP.cpu{labels}&from&until&format=pprof&sampleRate&spyName,
// the pprof in the multipart field "profile"). Windows go first into an on-disk spool
// (bounded by --spool-max, the oldest dropped first), and one sender thread delivers
// them oldest first, retrying with backoff while the backend is down, so delivery is
// in order and the sampling thread never waits on the network.
#pragma once
#include <sys/types.h>

#include <condition_variable>
#include <cstdint>
#include <deque>
#include <memory>
#include <mutex>
#include <string>
#include <thread>

#include "model/profile.h"
#include "tools/daemon_options.h"
#include "tools/daemon_state.h"

namespace pyprofd::cli {

class WindowPusher {
 public:
  WindowPusher(const DaemonArgs& args, DaemonState* state);
  ~WindowPusher() { finish(0); }

  // Queues w (a completed window) for the spool; nothing without --push.
  void submit(const std::shared_ptr<const Profile>& w);
  // Tries to send what is spooled for up to grace_s seconds, then stops the sender
  // (what is left stays in the spool for the next start).
  void finish(double grace_s);

 private:
  struct Entry {
    std::string path;
    uint64_t bytes = 0;
    int64_t from = 0, until = 0;  // Unix seconds
  };
  void load_spool();     // windows a previous run left, oldest first
  void trim_spool();     // caller holds mu_
  void spool_pending(std::unique_lock<std::mutex>& lock);
  void run();
  bool send(const Entry& e);
  void publish_metrics();  // caller holds mu_

  const DaemonArgs& args_;
  DaemonState* state_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<std::shared_ptr<const Profile>> pending_;  // handed over, not yet spooled
  std::deque<Entry> spool_;
  uint64_t spool_bytes_ = 0, next_seq_ = 0;
  uint64_t sent_ = 0, failed_ = 0, dropped_ = 0;
  bool stopping_ = false;
  int64_t deadline_ns_ = 0;  // when stopping: give up after this (CLOCK_MONOTONIC)
  std::thread thread_;
};

}  // namespace pyprofd::cli
