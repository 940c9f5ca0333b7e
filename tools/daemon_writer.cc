#include "tools/daemon_writer.h"

#include "tools/daemon_windows.h"

namespace pyprofd::cli {

WindowWriter::WindowWriter(const DaemonArgs& args, DaemonState* state) : args_(args), state_(state) {
  if (!args_.dir.empty()) thread_ = std::thread([this] { run(); });
}

void WindowWriter::submit(std::shared_ptr<const Profile> w) {
  if (args_.dir.empty()) return;
  std::lock_guard<std::mutex> lock(mu_);
  queue_.push_back(std::move(w));
  cv_.notify_one();
}

void WindowWriter::finish() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    done_ = true;
  }
  cv_.notify_one();
  if (thread_.joinable()) thread_.join();
}

void WindowWriter::run() {
  for (;;) {
    std::shared_ptr<const Profile> w;
    {
      std::unique_lock<std::mutex> lock(mu_);
      cv_.wait(lock, [this] { return done_ || !queue_.empty(); });
      if (queue_.empty()) return;  // done and drained
      w = std::move(queue_.front());
      queue_.pop_front();
    }
    if (!write_window(args_, *w)) continue;
    std::lock_guard<std::mutex> lock(state_->mu);
    ++state_->metrics.windows_written;
  }
}

}  // namespace pyprofd::cli
