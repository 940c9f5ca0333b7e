#include "model/sample_fanout.h"

#include <chrono>

namespace pyprofd {

uint32_t SampleFanout::intern(const FunctionKey& key) {
  std::lock_guard<std::mutex> lock(mu_);
  return functions_.intern(key);
}

void SampleFanout::add(const SampleLabels& labels, const std::vector<StackFrame>& frames, uint64_t weight_ns) {
  std::lock_guard<std::mutex> lock(mu_);
  window_.add(labels, frames, weight_ns);
  for (const auto& r : requests_) r->add(labels, frames, weight_ns);
  Counted& c = samples_[labels.pid];
  if (c.samples++ == 0)
    c.first_ns = std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::system_clock::now().time_since_epoch()).count();
}

void SampleFanout::set_rate(double hz) {
  std::lock_guard<std::mutex> lock(mu_);
  rate_hz_ = hz;
  window_.rate_hz = hz;
}

Profile SampleFanout::empty(int64_t start_ns) const {
  Profile p;
  p.mode = mode_;
  p.rate_hz = rate_hz_;
  p.start_time_ns = start_ns;
  return p;
}

void SampleFanout::finish(Profile* p, int64_t end_ns) const {
  p->duration_ns = end_ns > p->start_time_ns ? end_ns - p->start_time_ns : 0;
  p->functions = functions_.functions;
  p->labels = labels_;
  p->process_labels = process_labels_;
}

Profile SampleFanout::rotate(int64_t start_ns) {
  std::lock_guard<std::mutex> lock(mu_);
  Profile done = std::move(window_);
  window_ = empty(start_ns);
  finish(&done, start_ns);
  for (int pid : forgotten_earlier_) {
    process_labels_.erase(pid);
    samples_.erase(pid);
  }
  forgotten_earlier_.swap(forgotten_);
  forgotten_.clear();
  return done;
}

Profile SampleFanout::current(int64_t now_ns) const {
  std::lock_guard<std::mutex> lock(mu_);
  Profile p = window_;
  finish(&p, now_ns);
  return p;
}

std::shared_ptr<Profile> SampleFanout::open_request(int64_t now_ns) {
  auto r = std::make_shared<Profile>(empty(now_ns));
  std::lock_guard<std::mutex> lock(mu_);
  requests_.insert(r);
  return r;
}

void SampleFanout::close_request(const std::shared_ptr<Profile>& request, int64_t now_ns) {
  std::lock_guard<std::mutex> lock(mu_);
  requests_.erase(request);
  finish(request.get(), now_ns);
}

Profile SampleFanout::merge(const std::vector<std::shared_ptr<const Profile>>& windows) const {
  Profile out = empty(windows.empty() ? 0 : windows.front()->start_time_ns);
  int64_t end = out.start_time_ns;
  for (const auto& w : windows) {
    for (const auto& s : w->stacks) out.add(s.labels, s.frames, s.weight_ns, s.samples);
    end = std::max(end, w->start_time_ns + w->duration_ns);
  }
  std::lock_guard<std::mutex> lock(mu_);
  finish(&out, end);
  return out;
}

void SampleFanout::set_labels(std::vector<std::pair<std::string, std::string>> labels) {
  std::lock_guard<std::mutex> lock(mu_);
  labels_ = std::move(labels);
}

void SampleFanout::forget_process(int pid) {
  std::lock_guard<std::mutex> lock(mu_);
  forgotten_.insert(pid);
}

void SampleFanout::set_process_labels(int pid, std::vector<std::pair<std::string, std::string>> labels) {
  std::lock_guard<std::mutex> lock(mu_);
  process_labels_[pid] = std::move(labels);
  forgotten_.erase(pid);  // the pid of a new process
  forgotten_earlier_.erase(pid);
}

uint64_t SampleFanout::samples_of(int pid) const {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = samples_.find(pid);
  return it == samples_.end() ? 0 : it->second.samples;
}

int64_t SampleFanout::first_sample_of(int pid) const {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = samples_.find(pid);
  return it == samples_.end() ? 0 : it->second.first_ns;
}

}  // namespace pyprofd
