// Writes the daemon's windows on a thread of its own, in the order handed over, so
// exporting a large window never delays a sampling tick.
#pragma once
#include <condition_variable>
#include <deque>
#include <memory>
#include <mutex>
#include <thread>

#include "model/profile.h"
#include "tools/daemon_options.h"
#include "tools/daemon_state.h"

namespace pyprofd::cli {

class WindowWriter {
 public:
  WindowWriter(const DaemonArgs& args, DaemonState* state);
  ~WindowWriter() { finish(); }

  // Queues w for writing (nothing happens without --dir).
  void submit(std::shared_ptr<const Profile> w);
  // Writes what is queued, then stops the thread.
  void finish();

 private:
  void run();

  const DaemonArgs& args_;
  DaemonState* state_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<std::shared_ptr<const Profile>> queue_;
  bool done_ = false;
  std::thread thread_;
};

}  // namespace pyprofd::cli
