// The in-memory profile: aggregated stacks with weights and labels. Walkers fill it,
// exporters read it; neither knows the other. Header-only data, no process access.
#pragma once
#include <cstdint>
#include <map>
#include <string>
#include <tuple>
#include <unordered_map>
#include <utility>
#include <vector>

#include "model/sample.h"
#include "model/sample_sink.h"

namespace pyprofd {

// One distinct (labels, stack) with its totals.
struct StackRecord {
  SampleLabels labels;
  std::vector<StackFrame> frames;  // root (outermost) first, leaf last
  uint64_t samples = 0;            // number of samples that saw this stack
  uint64_t weight_ns = 0;          // time those samples stand for (CPU or wall, per mode)

  // Worth exporting: has samples and frames, and every frame names one of n_functions.
  bool usable(size_t n_functions) const {
    if (samples == 0 || frames.empty()) return false;
    for (const auto& f : frames)
      if (f.function >= n_functions) return false;
    return true;
  }
};

class Profile final : public SampleSink {
 public:
  ProfileMode mode = ProfileMode::kCpu;
  double rate_hz = 100;
  int64_t start_time_ns = 0;  // wall clock (CLOCK_REALTIME) at start
  int64_t duration_ns = 0;
  std::vector<FunctionKey> functions;
  std::vector<StackRecord> stacks;
  // String labels for exporters that carry them (pprof): on every sample, and on the
  // samples of one process (the daemon's service, process name, --label). Empty for record.
  std::vector<std::pair<std::string, std::string>> labels;
  std::map<int, std::vector<std::pair<std::string, std::string>>> process_labels;

  uint32_t intern(const FunctionKey& key) override {
    auto it = function_index_.find(key);
    if (it != function_index_.end()) return it->second;
    uint32_t id = static_cast<uint32_t>(functions.size());
    functions.push_back(key);
    function_index_.emplace(key, id);
    return id;
  }

  void add(const SampleLabels& labels, const std::vector<StackFrame>& frames, uint64_t weight_ns) override {
    add(labels, frames, weight_ns, 1);
  }

  // Adds `samples` samples of `frames` (root first) weighing `weight_ns` in all. Finding an
  // existing stack hashes and compares in place: no allocation unless the stack is new.
  void add(const SampleLabels& labels, const std::vector<StackFrame>& frames, uint64_t weight_ns,
           uint64_t samples) {
    uint64_t h = hash_of(labels, frames);
    auto range = stack_index_.equal_range(h);
    for (auto it = range.first; it != range.second; ++it) {
      StackRecord& r = stacks[it->second];
      if (r.frames == frames && same_labels(r.labels, labels)) {
        r.samples += samples;
        r.weight_ns += weight_ns;
        return;
      }
    }
    stack_index_.emplace(h, stacks.size());
    stacks.push_back(StackRecord{labels, frames, samples, weight_ns});
  }

  // The samples of one process only (for per-process output files).
  Profile only_pid(int pid) const {
    Profile out;
    out.mode = mode;
    out.rate_hz = rate_hz;
    out.start_time_ns = start_time_ns;
    out.duration_ns = duration_ns;
    out.functions = functions;
    out.function_index_ = function_index_;
    out.labels = labels;
    out.process_labels = process_labels;
    for (const auto& s : stacks)
      if (s.labels.pid == pid) out.add(s.labels, s.frames, s.weight_ns, s.samples);
    return out;
  }

  uint64_t total_samples() const {
    uint64_t n = 0;
    for (const auto& s : stacks) n += s.samples;
    return n;
  }
  uint64_t total_weight_ns() const {
    uint64_t n = 0;
    for (const auto& s : stacks) n += s.weight_ns;
    return n;
  }

 private:
  static bool same_labels(const SampleLabels& a, const SampleLabels& b) {
    return a.pid == b.pid && a.thread_id == b.thread_id && a.thread_name == b.thread_name && a.task_name == b.task_name;
  }
  static uint64_t hash_of(const SampleLabels& labels, const std::vector<StackFrame>& frames) {
    // FNV-1a over the frames and the numeric labels; names rarely differ when ids agree.
    uint64_t h = 1469598103934665603ull;
    auto mix = [&h](uint64_t v) { h = (h ^ v) * 1099511628211ull; };
    mix(static_cast<uint64_t>(labels.pid));
    mix(labels.thread_id);
    mix(labels.task_name.size());
    for (const auto& f : frames) mix((static_cast<uint64_t>(f.function) << 32) ^ static_cast<uint32_t>(f.line));
    return h;
  }

  std::map<FunctionKey, uint32_t> function_index_;
  std::unordered_multimap<uint64_t, size_t> stack_index_;
};

}  // namespace pyprofd
