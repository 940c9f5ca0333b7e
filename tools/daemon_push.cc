#include "tools/daemon_push.h"

#include <dirent.h>
#include <httplib.h>
#include <spdlog/spdlog.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <fstream>
#include <iterator>
#include <vector>

#include "exporters/atomic_file.h"
#include "exporters/pprof.h"
#include "profiler/clock.h"

namespace pyprofd::cli {

namespace {

constexpr int kConnectTimeoutS = 3, kReadTimeoutS = 10;
constexpr double kMaxBackoffS = 30;

std::string read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

// "http://host:port/prefix" -> ("http://host:port", "/prefix").
std::pair<std::string, std::string> split_url(const std::string& url) {
  size_t scheme = url.find("://");
  size_t path = url.find('/', scheme == std::string::npos ? 0 : scheme + 3);
  if (path == std::string::npos) return {url, ""};
  std::string prefix = url.substr(path);
  while (!prefix.empty() && prefix.back() == '/') prefix.pop_back();
  return {url.substr(0, path), prefix};
}

}  // namespace

WindowPusher::WindowPusher(const DaemonArgs& args, DaemonState* state) : args_(args), state_(state) {
  if (args_.push.empty()) return;
  load_spool();
  thread_ = std::thread([this] { run(); });
}

void WindowPusher::load_spool() {
  std::vector<std::string> names;
  if (DIR* d = opendir(args_.spool_dir.c_str())) {
    while (dirent* e = readdir(d))
      if (std::string(e->d_name).size() > 6 && std::string(e->d_name).find(".pb.gz") != std::string::npos &&
          e->d_name[0] != '.')
        names.push_back(e->d_name);
    closedir(d);
  }
  std::sort(names.begin(), names.end());  // zero-padded sequence numbers: oldest first
  std::lock_guard<std::mutex> lock(mu_);
  for (const auto& n : names) {
    unsigned long long seq = 0;
    long long from = 0, until = 0;
    if (std::sscanf(n.c_str(), "%llu-%lld-%lld.pb.gz", &seq, &from, &until) != 3) continue;
    std::string path = args_.spool_dir + "/" + n;
    Entry e{path, static_cast<uint64_t>(read_file(path).size()), from, until};
    spool_.push_back(e);
    spool_bytes_ += e.bytes;
    next_seq_ = std::max<uint64_t>(next_seq_, seq + 1);
  }
  if (!spool_.empty()) spdlog::info("push: {} windows left in the spool by a previous run", spool_.size());
  trim_spool();
  publish_metrics();
}

void WindowPusher::submit(const std::shared_ptr<const Profile>& w) {
  if (args_.push.empty() || w->stacks.empty()) return;
  std::lock_guard<std::mutex> lock(mu_);
  pending_.push_back(w);
  cv_.notify_all();
}

// Exports and writes the windows handed over (on the sender thread: the sampling
// thread only queues them).
void WindowPusher::spool_pending(std::unique_lock<std::mutex>& lock) {
  while (!pending_.empty()) {
    auto w = std::move(pending_.front());
    pending_.pop_front();
    Entry e;
    e.from = w->start_time_ns / 1000000000;
    e.until = (w->start_time_ns + w->duration_ns + 999999999) / 1000000000;
    char name[96];
    std::snprintf(name, sizeof name, "%012llu-%lld-%lld.pb.gz", static_cast<unsigned long long>(next_seq_++),
                  static_cast<long long>(e.from), static_cast<long long>(e.until));
    e.path = args_.spool_dir + "/" + name;
    lock.unlock();
    std::string bytes = export_pprof(*w), err;
    e.bytes = bytes.size();
    bool ok = write_file_atomic(e.path, bytes, &err);
    lock.lock();
    if (!ok) {
      spdlog::error("push: cannot spool a window: {}", err);
      ++dropped_;
    } else {
      spool_.push_back(e);
      spool_bytes_ += e.bytes;
      trim_spool();
    }
    publish_metrics();
  }
}

// Over --spool-max: the oldest windows go first (never the one being sent: it is
// the front only while the sender holds no lock on it, and a vanished file is skipped).
void WindowPusher::trim_spool() {
  while (spool_bytes_ > args_.spool_max && spool_.size() > 1) {
    const Entry& old = spool_.front();
    unlink(old.path.c_str());
    spool_bytes_ -= old.bytes;
    ++dropped_;
    spdlog::warn("push: spool over {} bytes: dropped the window from {}", args_.spool_max, old.from);
    spool_.pop_front();
  }
}

void WindowPusher::publish_metrics() {
  std::lock_guard<std::mutex> lock(state_->mu);
  state_->metrics.pushes_sent = sent_;
  state_->metrics.pushes_failed = failed_;
  state_->metrics.pushes_dropped = dropped_;
  state_->metrics.spool_bytes = spool_bytes_;
}

bool WindowPusher::send(const Entry& e) {
  std::string body = read_file(e.path);
  if (body.empty()) return true;  // dropped from the spool meanwhile: nothing to send
  auto [host, prefix] = split_url(args_.push);
  std::string name = args_.app_name + (args_.mode == "wall" ? ".wall" : ".cpu") + "{";
  for (size_t i = 0; i < args_.labels.size(); ++i)
    name += (i ? "," : "") + args_.labels[i].first + "=" + args_.labels[i].second;
  name += "}";
  std::string path = prefix + "/ingest?name=" + httplib::detail::encode_query_param(name) +
                     "&from=" + std::to_string(e.from) + "&until=" + std::to_string(e.until) +
                     "&format=pprof&sampleRate=" + std::to_string(static_cast<int64_t>(args_.rate)) + "&spyName=pyprofd";
  httplib::Client client(host);
  client.set_connection_timeout(kConnectTimeoutS);
  client.set_read_timeout(kReadTimeoutS);
  client.set_write_timeout(kReadTimeoutS);
  httplib::MultipartFormDataItems items{{"profile", body, "profile.pb.gz", "application/octet-stream"}};
  auto res = client.Post(path.c_str(), items);
  if (res && res->status >= 200 && res->status < 300) return true;
  spdlog::warn("push: POST {}{} failed: {}", host, prefix + "/ingest",
               res ? "HTTP " + std::to_string(res->status) : httplib::to_string(res.error()));
  return false;
}

// One window at a time, oldest first; after a failure the next try waits 1, 2, 4 ...
// 30 s. Stopping: what is left is tried at once until the grace time or a failure.
void WindowPusher::run() {
  double backoff = 1;
  int64_t retry_at = 0;
  std::unique_lock<std::mutex> lock(mu_);
  for (;;) {
    spool_pending(lock);
    int64_t now = monotonic_ns();
    if (stopping_ && (spool_.empty() || now >= deadline_ns_)) return;
    auto woken = [this] { return stopping_ || !pending_.empty(); };
    if (spool_.empty()) {
      cv_.wait(lock, woken);
      continue;
    }
    if (!stopping_ && now < retry_at) {
      cv_.wait_for(lock, std::chrono::nanoseconds(retry_at - now), woken);
      continue;
    }
    Entry e = spool_.front();
    lock.unlock();
    bool ok = send(e);
    lock.lock();
    if (!ok) {
      ++failed_;
      publish_metrics();
      if (stopping_) return;  // the backend is down: the rest waits in the spool
      retry_at = monotonic_ns() + static_cast<int64_t>(backoff * 1e9);
      backoff = std::min(backoff * 2, kMaxBackoffS);
      continue;
    }
    if (!spool_.empty() && spool_.front().path == e.path) {
      unlink(e.path.c_str());
      spool_bytes_ -= e.bytes;
      spool_.pop_front();
    }
    ++sent_;
    backoff = 1;
    retry_at = 0;
    publish_metrics();
  }
}

void WindowPusher::finish(double grace_s) {
  if (!thread_.joinable()) return;
  {
    std::lock_guard<std::mutex> lock(mu_);
    stopping_ = true;
    deadline_ns_ = monotonic_ns() + static_cast<int64_t>(grace_s * 1e9);
  }
  cv_.notify_all();
  thread_.join();
}

}  // namespace pyprofd::cli
