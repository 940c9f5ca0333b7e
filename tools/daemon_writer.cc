#include "tools/daemon_writer.h"

#include <spdlog/spdlog.h>

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
      if (queue_.empty()) break;  // done and drained
      w = std::move(queue_.front());
      queue_.pop_front();
    }
    write(*w);
  }
  retry_pending();
  for (const auto& f : pending_) spdlog::error("{} lost: could not be written before exit", f.path);
}

void WindowWriter::write(const Profile& w) {
  retry_pending();
  std::vector<WindowFile> files = export_window(args_, w);
  for (auto& f : files) {
    std::string err;
    if (write_window_file(args_, f, &err)) {
      spdlog::info("wrote {} ({} samples)", f.path, w.total_samples());
      continue;
    }
    spdlog::error("{}; kept in memory, tried again before the next window", err);
    {
      std::lock_guard<std::mutex> lock(state_->mu);
      ++state_->metrics.window_write_failures;
    }
    keep_pending(std::move(f));
  }
  if (!files.empty()) count_window_if_done(files.front().stamp);
  prune_windows(args_);
}

void WindowWriter::retry_pending() {
  for (auto it = pending_.begin(); it != pending_.end();) {
    std::string err;
    if (!write_window_file(args_, *it, &err)) {
      spdlog::warn("{}; still kept in memory", err);
      ++it;
      continue;
    }
    spdlog::info("wrote {} (on a later try)", it->path);
    pending_bytes_ -= it->bytes.size();
    std::string stamp = it->stamp;
    it = pending_.erase(it);
    count_window_if_done(stamp);
  }
  std::lock_guard<std::mutex> lock(state_->mu);
  state_->metrics.windows_pending = pending_.size();
}

// A newer file of the same path (SIGUSR1's partial window, then the whole one) replaces
// the older; beyond kMaxPendingBytes the oldest files are dropped, and counted.
void WindowWriter::keep_pending(WindowFile f) {
  for (auto it = pending_.begin(); it != pending_.end(); ++it)
    if (it->path == f.path) {
      pending_bytes_ -= it->bytes.size();
      pending_.erase(it);
      break;
    }
  pending_bytes_ += f.bytes.size();
  pending_.push_back(std::move(f));
  uint64_t dropped = 0;
  while (pending_bytes_ > kMaxPendingBytes && pending_.size() > 1) {
    spdlog::error("{} dropped: more than {} MiB of windows wait to be written", pending_.front().path,
                  kMaxPendingBytes >> 20);
    pending_bytes_ -= pending_.front().bytes.size();
    pending_.pop_front();
    ++dropped;
  }
  std::lock_guard<std::mutex> lock(state_->mu);
  state_->metrics.windows_pending = pending_.size();
  state_->metrics.window_files_dropped += dropped;
}

// Counts a window as written once none of its files waits any more.
void WindowWriter::count_window_if_done(const std::string& stamp) {
  for (const auto& f : pending_)
    if (f.stamp == stamp) return;
  std::lock_guard<std::mutex> lock(state_->mu);
  ++state_->metrics.windows_written;
}

}  // namespace pyprofd::cli
