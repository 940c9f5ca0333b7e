// Writes the daemon's windows on a thread of its own, in the order handed over, so
// exporting a large window never delays a sampling tick. A file that cannot be written
// (disk full, --dir removed or read-only) stays in memory, up to kMaxPendingBytes, and
// is tried again before each later window and at exit.
#pragma once
#include <condition_variable>
#include <deque>
#include <memory>
#include <mutex>
#include <thread>

#include "model/profile.h"
#include "tools/daemon_options.h"
#include "tools/daemon_state.h"
#include "tools/daemon_windows.h"

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
  static constexpr size_t kMaxPendingBytes = 64 << 20;

  void run();
  void write(const Profile& w);
  void retry_pending();
  void keep_pending(WindowFile f);
  void count_window_if_done(const std::string& stamp);

  const DaemonArgs& args_;
  DaemonState* state_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<std::shared_ptr<const Profile>> queue_;
  bool done_ = false;
  std::thread thread_;
  std::deque<WindowFile> pending_;  // writer thread only: files that failed, oldest first
  size_t pending_bytes_ = 0;
};

}  // namespace pyprofd::cli
