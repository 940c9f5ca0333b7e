#include "exporters/speedscope.h"

#include <algorithm>
#include <map>
#include <nlohmann/json.hpp>
#include <utility>
#include <vector>

namespace pyprofd {
namespace {

using json = nlohmann::json;

// Synthetic keys differ only in a meaningless first line; one frame for them.
FunctionKey frame_key(FunctionKey k) {
  if (k.file == "~") k.first_line = 0;
  return k;
}

// One profile per thread: tasks are "<task NAME>" frames in its stacks, as in the
// collapsed and pprof outputs (a profile per task made thousands of tiny profiles).
using ThreadKey = std::pair<int, uint64_t>;  // pid, thread id

struct Thread {
  std::map<std::string, uint64_t> name_samples;          // thread name -> samples
  std::map<std::vector<uint32_t>, uint64_t> weight_of;   // frame indices -> weight_ns
  uint64_t total_ns = 0;
};

std::string profile_name(const ThreadKey& key, const Thread& t) {
  const auto& [pid, tid] = key;
  std::string thread_name;
  uint64_t best = 0;
  for (const auto& [name, n] : t.name_samples)
    if (!name.empty() && n > best) thread_name = name, best = n;
  const std::string dot = " \xC2\xB7 ";  // U+00B7 middle dot
  std::string out = "pid " + std::to_string(pid) + dot;
  if (!tid) return out + "tasks whose loop is not running";
  out += thread_name.empty() ? "tid " + std::to_string(tid) : thread_name + " (tid " + std::to_string(tid) + ")";
  return out;
}

}  // namespace

std::string export_speedscope(const Profile& p) {
  const size_t n = p.functions.size();
  std::map<FunctionKey, uint32_t> frame_index;
  for (const auto& s : p.stacks)
    if (s.usable(n))
      for (const auto& f : s.frames) frame_index.emplace(frame_key(p.functions[f.function]), 0);
  if (frame_index.empty()) return "";

  json frames = json::array();
  for (auto& [key, index] : frame_index) {
    index = static_cast<uint32_t>(frames.size());
    json f = {{"name", key.name}};
    if (key.file != "~") {
      f["file"] = key.file;
      f["line"] = key.first_line;
    }
    frames.push_back(std::move(f));
  }
  std::vector<uint32_t> index_of(n, 0);  // unused functions are never read
  for (size_t i = 0; i < n; ++i) {
    auto it = frame_index.find(frame_key(p.functions[i]));
    if (it != frame_index.end()) index_of[i] = it->second;
  }

  std::map<ThreadKey, Thread> threads;
  std::vector<uint32_t> stack;
  for (const auto& s : p.stacks) {
    if (!s.usable(n)) continue;
    Thread& t = threads[ThreadKey{s.labels.pid, s.labels.thread_id}];
    t.name_samples[s.labels.thread_name] += s.samples;
    stack.clear();
    for (const auto& f : s.frames) stack.push_back(index_of[f.function]);
    t.weight_of[stack] += s.weight_ns;
    t.total_ns += s.weight_ns;
  }

  // The busiest thread first: speedscope opens on it.
  std::vector<std::pair<const ThreadKey*, const Thread*>> order;
  for (const auto& [key, t] : threads) order.emplace_back(&key, &t);
  std::stable_sort(order.begin(), order.end(),
                   [](const auto& a, const auto& b) { return a.second->total_ns > b.second->total_ns; });
  json profiles = json::array();
  for (const auto& [key, t] : order) {
    json samples = json::array(), weights = json::array();
    for (const auto& [frames_of_sample, w] : t->weight_of) {
      samples.push_back(frames_of_sample);
      weights.push_back(w);
    }
    profiles.push_back({{"type", "sampled"},
                        {"name", profile_name(*key, *t)},
                        {"unit", "nanoseconds"},
                        {"startValue", 0},
                        {"endValue", t->total_ns},
                        {"samples", std::move(samples)},
                        {"weights", std::move(weights)}});
  }

  const json doc = {{"$schema", "https://www.speedscope.app/file-format-schema.json"},
                    {"exporter", "pyprofd"},
                    {"name", std::string("pyprofd ") + (p.mode == ProfileMode::kCpu ? "cpu" : "wall") + " profile"},
                    {"activeProfileIndex", 0},
                    {"shared", {{"frames", std::move(frames)}}},
                    {"profiles", std::move(profiles)}};
  // replace: names are read from another process and may hold invalid UTF-8.
  return doc.dump(-1, ' ', false, json::error_handler_t::replace) + "\n";
}

}  // namespace pyprofd
