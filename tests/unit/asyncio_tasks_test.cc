// AsyncioReader against real interpreters running tests/targets/asyncio_target.py
// (C tasks, pure-Python tasks, uvloop, 1,000 tasks), plus replays of recorded memory
// with corrupted words and plain random memory, which must never crash.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <poll.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <random>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "profiler/asyncio_layout.h"
#include "profiler/asyncio_tasks.h"
#include "profiler/attach.h"
#include "profiler/thread_reader.h"
#include "profiler/code_cache.h"
#include "tests/unit/report_target.h"
#include "tests/unit/test_interpreters.h"

namespace pyprofd {
namespace {

struct Case {
  const char* label;
  const char* path;
  int minor;
  const char* mode;
};

// Which target modes run on which interpreter (labels as in test_interpreters.h).
const std::vector<Case>& cases() {
  static std::vector<std::string> labels;
  static std::vector<Case> list = [] {
    static const std::pair<const char*, std::vector<const char*>> kModes[] = {
        {"c", {"py3_8", "py3_9", "py3_10", "py3_11", "py3_12", "py3_13", "debian3_11", "sid3_14", "sid3_15"}},
        {"py", {"py3_8", "py3_10", "py3_11", "py3_12", "py3_13"}},  // not sid3_14: the target cannot set up (its asyncio.all_tasks() does not list _PyTask objects)
        {"uvloop", {"debian3_11"}},
        {"many", {"py3_8", "py3_10", "py3_11", "py3_12", "py3_13", "sid3_14", "sid3_15"}},
        {"eager", {"py3_12", "py3_13", "sid3_14", "sid3_15"}},
    };
    std::vector<Case> out;
    labels.reserve(32);
    for (const auto& [mode, which] : kModes)
      for (const Interp& in : test_interpreters())
        for (const char* w : which)
          if (std::string(in.label) == w) {
            labels.push_back(std::string(in.label) + "_" + mode);
            out.push_back(Case{nullptr, in.path, in.minor, mode});
          }
    for (size_t i = 0; i < out.size(); ++i) out[i].label = labels[i].c_str();
    return out;
  }();
  return list;
}

// The cases of some target modes only, for tests that need what only those targets hold.
std::vector<Case> cases_in(std::set<std::string> modes) {
  std::vector<Case> out;
  for (const Case& c : cases())
    if (modes.count(c.mode)) out.push_back(c);
  return out;
}

// Records every page read through it, so a live read can be replayed (and corrupted) later.
class RecordingMemory : public RemoteMemory {
 public:
  explicit RecordingMemory(RemoteMemory& inner) : inner_(inner) {}
  bool read(uint64_t addr, void* dst, size_t len) override {
    if (!inner_.read(addr, dst, len)) return false;
    for (uint64_t p = addr & ~uint64_t{4095}; p < addr + len; p += 4096) {
      if (pages_.count(p)) continue;
      std::vector<uint8_t> page(4096);
      if (inner_.read(p, page.data(), page.size())) pages_[p] = std::move(page);
    }
    return true;
  }
  std::map<uint64_t, std::vector<uint8_t>>& pages() { return pages_; }

 private:
  RemoteMemory& inner_;
  std::map<uint64_t, std::vector<uint8_t>> pages_;
};

// Counts round trips (read and readv requests) on top of the backend's system calls.
class CountingMemory : public RemoteMemory {
 public:
  explicit CountingMemory(RemoteMemory& inner) : inner_(inner) {}
  bool read(uint64_t addr, void* dst, size_t len) override { return ++trips_, inner_.read(addr, dst, len); }
  size_t readv(ReadOp* ops, size_t n) override { return ++trips_, inner_.readv(ops, n); }
  uint64_t calls() const override { return inner_.calls(); }
  uint64_t trips() const { return trips_; }

 private:
  RemoteMemory& inner_;
  uint64_t trips_ = 0;
};

// Contiguous pages become one range (a read must fall inside one range).
void fill_snapshot(const std::map<uint64_t, std::vector<uint8_t>>& pages, SnapshotMemory* snap) {
  std::vector<uint8_t> run;
  uint64_t start = 0;
  for (auto& [addr, bytes] : pages) {
    if (!run.empty() && addr != start + run.size()) {
      snap->add(start, run);
      run.clear();
    }
    if (run.empty()) start = addr;
    run.insert(run.end(), bytes.begin(), bytes.end());
  }
  if (!run.empty()) snap->add(start, run);
}

using Frames = std::vector<std::pair<std::string, int>>;

class AsyncioLive : public ::testing::TestWithParam<Case> {
 protected:
  void SetUp() override {
    const Case& c = GetParam();
    if (access(c.path, X_OK) != 0) GTEST_SKIP() << "interpreter not installed: " << c.path;
    std::string err;
    ASSERT_TRUE(target_.start(c.path, "asyncio_target.py", c.mode, &err)) << err;
    ASSERT_EQ(rep()["version"][1].get<int>(), c.minor);
    AttachError aerr;
    proc_ = attach_python(target_.pid(), &aerr);
    ASSERT_TRUE(proc_) << aerr.message;
    threads_reader_ = std::make_unique<ThreadReader>(*proc_);
    ASSERT_TRUE(threads_reader_->sample(&threads_, false));
    codes_ = std::make_unique<CodeCache>(*proc_->memory, proc_->layout, proc_->code_type);
    reader_ = std::make_unique<AsyncioReader>(*proc_->memory, proc_->layout, threads_reader_->interpreter(),
                                              target_.pid());
    ASSERT_TRUE(reader_->read_tasks(&tasks_));
    for (size_t i = 0; i < tasks_.size(); ++i) index_[tasks_[i].addr] = i;
  }
  const nlohmann::json& rep() const { return target_.report(); }
  int line(const char* marker) const { return rep()["lines"][marker].get<int>(); }
  uint64_t addr_of(const std::string& name) const {
    return name == "Task-1" ? rep()["main_task"].get<uint64_t>() : rep()["tasks"][name]["addr"].get<uint64_t>();
  }
  const TaskInfo* task(const std::string& name) {
    auto it = index_.find(addr_of(name));
    return it == index_.end() ? nullptr : &tasks_[it->second];
  }
  std::pair<std::string, int> frame(uint64_t code, int32_t offset) {
    CodeInfo* ci = codes_->get(code);
    return ci ? std::make_pair(ci->name, ci->line(offset)) : std::make_pair(std::string("?"), -1);
  }
  Frames chain(const TaskInfo& t) {
    Frames out;
    for (const RawFrame& f : t.chain) out.push_back(frame(f.code, f.byte_offset));
    return out;
  }
  Frames expected_chain(const std::string& name) const {
    const auto& j = name == "Task-1" ? rep()["main_chain"] : rep()["tasks"][name]["chain"];
    Frames out;
    for (auto& f : j) out.emplace_back(f[0].get<std::string>(), f[1].get<int>());
    return out;
  }
  std::vector<std::string> names(const std::vector<size_t>& idx) {
    std::vector<std::string> out;
    for (size_t i : idx) out.push_back(tasks_[i].name);
    std::sort(out.begin(), out.end());
    return out;
  }
  Frames render(const AsyncStack& s) {
    Frames out;
    for (const AsyncFrame& f : s.frames) {
      if (f.task >= 0) out.emplace_back("<task " + tasks_[f.task].name + ">", 0);
      else out.push_back(frame(f.code, f.byte_offset));
    }
    return out;
  }
  bool has_group() const { return rep()["tasks"].contains("TG"); }
  bool eager() const { return std::string(GetParam().mode) == "eager"; }

  ReportTarget target_;
  std::unique_ptr<PythonProcess> proc_;
  std::unique_ptr<ThreadReader> threads_reader_;
  std::vector<ThreadSample> threads_;
  std::unique_ptr<CodeCache> codes_;
  std::unique_ptr<AsyncioReader> reader_;
  std::vector<TaskInfo> tasks_;
  std::map<uint64_t, size_t> index_;
};

TEST_P(AsyncioLive, LayoutMatchesLiveTask) {
  const AsyncioLayout* al = asyncio_layout(GetParam().minor);
  ASSERT_NE(al, nullptr);
  const auto& off = rep()["offsets"];
  auto has = [&](const char* key, uint32_t want) {
    for (auto& o : off[key]) {
      if (o.get<uint32_t>() == want) return true;
    }
    return false;
  };
  EXPECT_TRUE(has("loop", al->fut_loop)) << off.dump();
  EXPECT_TRUE(has("callback0", al->fut_callback0)) << off.dump();
  EXPECT_TRUE(has("fut_waiter", al->task_fut_waiter)) << off.dump();
  EXPECT_TRUE(has("coro", al->task_coro)) << off.dump();
  EXPECT_TRUE(has("name", al->task_name)) << off.dump();
}

TEST_P(AsyncioLive, EveryTaskWithStateNameAndChain) {
  EXPECT_EQ(reader_->invalid_tasks(), 0u);
  // 3.14+ keeps C tasks in per-thread lists that drop a task once it is done: only
  // pending ones can be found there (a finished task has no stack to show anyway).
  const bool pending_only = asyncio_layout(GetParam().minor)->task_node != 0;
  auto findable = [&](const nlohmann::json& t) { return !pending_only || t["state"] == "pending"; };
  std::set<uint64_t> want{rep()["main_task"].get<uint64_t>()}, got;
  for (auto& [name, t] : rep()["tasks"].items())
    if (findable(t)) want.insert(t["addr"].get<uint64_t>());
  for (const TaskInfo& t : tasks_) got.insert(t.addr);
  EXPECT_EQ(got, want);
  const uint64_t loop = rep()["loop"].get<uint64_t>();
  for (auto& [name, j] : rep()["tasks"].items()) {
    if (!findable(j)) continue;
    const TaskInfo* t = task(name);
    ASSERT_NE(t, nullptr) << name;
    EXPECT_EQ(t->name, name);
    EXPECT_EQ(t->loop, loop) << name;
    std::string state = j["state"].get<std::string>();
    EXPECT_EQ(t->state, state == "done" ? TaskState::kDone : state == "cancelled" ? TaskState::kCancelled
                                                                                   : TaskState::kPending) << name;
    EXPECT_EQ(chain(*t), expected_chain(name)) << name;
    EXPECT_EQ(t->running, name == "R") << name;
  }
  // The main task's name is still the 3.12+ int counter: never read by the target.
  const TaskInfo* main = task("Task-1");
  ASSERT_NE(main, nullptr);
  EXPECT_EQ(main->name, "Task-1");
  EXPECT_EQ(chain(*main), expected_chain("Task-1"));
  if (eager()) {  // R runs inside the main task's step: main is executing, not waiting
    EXPECT_TRUE(main->chain.empty());
  } else {  // awaiting a pure-Python future goes through its __await__ generator, also in the chain
    EXPECT_EQ(chain(*main).back(), std::make_pair(std::string("main"), line("MAIN")));
  }
  // A task whose coroutine never started: its first line.
  EXPECT_EQ(chain(*task("N")), (Frames{{"inner_sleep", line("INNER") - 1}}));

  // Exact chains written out once, independent of the target's own view.
  const TaskInfo* c = task("C");
  ASSERT_EQ(chain(*c).size(), 2u);
  EXPECT_EQ(chain(*c)[0].first, "sleep");
  EXPECT_EQ(chain(*c)[1], std::make_pair(std::string("c_leaf"), line("C")));
  Frames w1 = chain(*task("W1"));
  ASSERT_EQ(w1.size(), 4u);
  EXPECT_EQ(w1[0].first, "sleep");
  EXPECT_EQ(Frames(w1.begin() + 1, w1.end()),
            (Frames{{"inner_sleep", line("INNER")}, {"middle", line("MIDDLE")}, {"worker", line("WORKER")}}));
  EXPECT_EQ(chain(*task("A")).back(), std::make_pair(std::string("a_top"), line("A")));
  EXPECT_EQ(chain(*task("G")), (Frames{{"gatherer", line("GATHER")}}));
  EXPECT_EQ(chain(*task("SO")), (Frames{{"shielder", line("SHIELD")}}));
  EXPECT_EQ(chain(*task("WO")).back(), std::make_pair(std::string("timed"), line("TIMED")));
  ASSERT_GE(chain(*task("WO")).size(), 2u);
  EXPECT_EQ(chain(*task("WO")).rbegin()[1].first, "wait_for");
  EXPECT_EQ(chain(*task("PROBE")), (Frames{{"wait_future", line("FUT")}}));
  EXPECT_TRUE(task("R")->chain.empty());  // running: its frames are on the thread
  for (const char* done : {"D", "X"}) {  // finished: found (and chainless) unless only pending tasks are listed
    const TaskInfo* t = task(done);
    if (t) EXPECT_TRUE(t->chain.empty()) << done;
    else EXPECT_TRUE(pending_only) << done << " not found";
  }

  // Who waits on whom, and on what.
  using V = std::vector<std::string>;
  EXPECT_EQ(names(task("A")->awaits), V{"B"});
  EXPECT_EQ(names(task("B")->awaits), V{"C"});
  EXPECT_EQ(names(task("G")->awaits), (V{"W1", "W2"}));
  EXPECT_EQ(names(task("SO")->awaits), V{"SI"});
  EXPECT_EQ(names(task("WO")->awaits), V{"WI"});
  EXPECT_EQ(names(main->awaits), eager() ? V{} : V{"R"});
  EXPECT_TRUE(task("C")->awaits.empty());
  EXPECT_TRUE(task("PROBE")->awaits.empty());
  EXPECT_EQ(task("C")->awaiting, "sleep");
  EXPECT_EQ(task("W2")->awaiting, "sleep");
  EXPECT_EQ(task("A")->awaiting, "B");
  EXPECT_EQ(task("G")->awaiting, "gather");
  EXPECT_EQ(task("SO")->awaiting, "SI");
  EXPECT_EQ(task("WO")->awaiting, "WI");
  EXPECT_EQ(task("PROBE")->awaiting, "Future");
  EXPECT_EQ(main->awaiting, eager() ? "" : "R");
  EXPECT_EQ(task("R")->awaiting, "");
  if (task("D")) {
    EXPECT_EQ(task("D")->awaiting, "");
  }
  if (has_group()) {
    EXPECT_EQ(names(task("TG")->awaits), V{"TG1"});
    // 3.14's __aexit__ awaits self._aexit(), which then is the innermost coroutine.
    std::string inner = chain(*task("TG")).front().first;
    EXPECT_TRUE(inner == "__aexit__" || (inner == "_aexit" && GetParam().minor >= 14)) << inner;
  }
}

TEST_P(AsyncioLive, StacksPerLeafTask) {
  std::vector<AsyncStack> stacks;
  reader_->build_stacks(tasks_, threads_, &stacks);
  std::map<std::string, const AsyncStack*> by_leaf;
  for (const AsyncStack& s : stacks) {
    EXPECT_TRUE(by_leaf.emplace(tasks_[s.leaf].name, &s).second) << tasks_[s.leaf].name;
  }
  std::set<std::string> want{"C", "W1", "W2", "SI", "WI", "PROBE", "N", "R"}, got;
  if (has_group()) want.insert("TG1");
  for (int i = 0; i < static_cast<int>(rep()["many"].size()); ++i) want.insert("M" + std::to_string(i));
  for (auto& kv : by_leaf) got.insert(kv.first);
  EXPECT_EQ(got, want);

  // Suspended leaves: each task's chain under its awaiter's, up to the root.
  std::map<std::string, std::string> parent{{"C", "B"}, {"B", "A"}, {"W1", "G"}, {"W2", "G"},
                                            {"SI", "SO"}, {"WI", "WO"}, {"TG1", "TG"}};
  for (auto& [g, kids] : rep()["groups"].items()) {
    for (auto& k : kids) parent[k.get<std::string>()] = g;
  }
  const uint64_t pid = static_cast<uint64_t>(target_.pid());
  for (auto& [leaf, s] : by_leaf) {
    if (leaf == "R") continue;
    Frames want_frames;
    for (std::string t = leaf;; t = parent[t]) {
      Frames c = expected_chain(t);
      want_frames.insert(want_frames.end(), c.begin(), c.end());
      want_frames.emplace_back("<task " + t + ">", 0);
      if (!parent.count(t)) break;
    }
    EXPECT_EQ(render(*s), want_frames) << leaf;
    EXPECT_FALSE(s->running) << leaf;
    EXPECT_EQ(s->native_thread, pid) << leaf;  // the loop's thread, known from its running task
  }
  // The running task: the thread's frames down to R's coroutine, R's awaiters (the main
  // task, suspended), then the thread's frames outside R's coroutine (the event loop).
  ASSERT_TRUE(by_leaf.count("R"));
  const AsyncStack& r = *by_leaf["R"];
  EXPECT_TRUE(r.running);
  EXPECT_EQ(r.native_thread, pid);
  Frames got_r = render(r);
  Frames head{{"busy", line("BUSY")}, {"runner", line("RUNNER")}, {"<task R>", 0}};
  if (!eager()) {  // the main task awaits R; in eager mode it is executing below R on the thread
    for (auto& f : expected_chain("Task-1")) head.push_back(f);
    head.emplace_back("<task Task-1>", 0);
  }
  ASSERT_GT(got_r.size(), head.size());
  EXPECT_EQ(Frames(got_r.begin(), got_r.begin() + head.size()), head);
  const ThreadSample* main_thread = nullptr;
  for (const ThreadSample& t : threads_) {
    if (t.ts.native_id == pid) main_thread = &t;
  }
  ASSERT_NE(main_thread, nullptr);
  size_t k = 0;
  while (k < main_thread->frames.size() && main_thread->frames[k].frame != task("R")->coro_frame) ++k;
  ASSERT_EQ(k, 1u) << "R's coroutine frame not right under busy() on the main thread";
  Frames tail;
  for (size_t f = k + 1; f < main_thread->frames.size(); ++f)
    tail.push_back(frame(main_thread->frames[f].code, main_thread->frames[f].byte_offset));
  EXPECT_EQ(Frames(got_r.begin() + head.size(), got_r.end()), tail);
  ASSERT_FALSE(tail.empty());
  EXPECT_EQ(tail.back().first, "<module>");
  std::set<std::string> tail_names;
  for (auto& f : tail) tail_names.insert(f.first);
  if (std::string(GetParam().mode) != "uvloop") {
    EXPECT_TRUE(tail_names.count("run_forever"));
    EXPECT_TRUE(tail_names.count("_run_once"));
  }
}

// dump's view: 3.14+ drops a task from its thread's list once it is done, so the finished
// D and X (locals of the main task's suspended coroutine) are found through that frame;
// on 3.8-3.13 the registries already hold them and nothing is added.
// The early prefetch serves the thread walk: each suspended coroutine frame of the last
// read comes back with the bytes the target holds there (3.11+; <=3.10 keeps frames in
// frame objects, and nothing is served), and nothing once read_tasks has used it.
TEST_P(AsyncioLive, EarlyPrefetchServesCoroutineFrames) {
  reader_->prefetch_before_threads();
  size_t served = 0;
  for (const TaskInfo& t : tasks_)
    for (const RawFrame& f : t.chain) {
      const uint8_t* hint = reader_->frame(f.frame, 24);
      if (GetParam().minor <= 10) {
        EXPECT_EQ(hint, nullptr);
        continue;
      }
      ASSERT_NE(hint, nullptr) << "a suspended coroutine's frame of the last read";
      uint8_t now[24];
      ASSERT_TRUE(proc_->memory->read(f.frame, now, sizeof now));
      EXPECT_EQ(std::memcmp(hint, now, sizeof now), 0);
      ++served;
    }
  if (GetParam().minor >= 11) {
    EXPECT_GT(served, 0u);
  }
  std::vector<TaskInfo> again;
  ASSERT_TRUE(reader_->read_tasks(&again));
  for (const TaskInfo& t : tasks_) {
    for (const RawFrame& f : t.chain) {
      EXPECT_EQ(reader_->frame(f.frame, 24), nullptr);
    }
  }
}

TEST_P(AsyncioLive, DoneTasksStillReferenced) {
  if (eager()) GTEST_SKIP() << "the main task is executing (no suspended frame to search)";
  std::vector<TaskInfo> all = tasks_;
  reader_->add_done_referenced(&all);
  if (asyncio_layout(GetParam().minor)->task_node == 0) {
    EXPECT_EQ(all.size(), tasks_.size());
    return;
  }
  std::map<std::string, const TaskInfo*> added;
  for (size_t i = tasks_.size(); i < all.size(); ++i) added[all[i].name] = &all[i];
  ASSERT_EQ(added.size(), 2u) << all.size() - tasks_.size() << " added";
  ASSERT_TRUE(added.count("D") && added.count("X"));
  EXPECT_EQ(added["D"]->addr, addr_of("D"));
  EXPECT_EQ(added["D"]->state, TaskState::kDone);
  EXPECT_EQ(added["X"]->state, TaskState::kCancelled);
  EXPECT_TRUE(added["D"]->chain.empty());
  EXPECT_EQ(reader_->invalid_tasks(), 0u);
}

// 3.14+: the reader takes the target's own .AsyncioDebug over its table, so a table that
// is wrong about every field the section carries (as a patch release that moved TaskObj
// or the thread state would make it) still reads the same tasks.
TEST_P(AsyncioLive, DebugSectionOverridesTheTable) {
  if (GetParam().minor < 14) GTEST_SKIP() << "no .AsyncioDebug before 3.14";
  EXPECT_EQ(reader_->offsets_source().rfind(".AsyncioDebug in /", 0), 0u) << reader_->offsets_source();
  AsyncioLayout wrong = *asyncio_layout(GetParam().minor);
  wrong.task_coro += 8, wrong.task_name -= 8, wrong.task_fut_waiter += 16, wrong.fut_state += 4;
  wrong.task_node += 16, wrong.tstate_tasks_head += 16, wrong.tstate_running_task += 8;
  wrong.interp_tasks_head += 16, wrong.ts_running_loop += 8;
  auto summary = [&](const std::vector<TaskInfo>& ts) {
    std::map<std::string, std::pair<Frames, size_t>> out;
    for (const TaskInfo& t : ts) out[t.name] = {chain(t), t.awaits.size()};
    return out;
  };
  AsyncioReader fixed(*proc_->memory, proc_->layout, threads_reader_->interpreter(), target_.pid(), wrong);
  std::vector<TaskInfo> got;
  ASSERT_TRUE(fixed.read_tasks(&got));
  EXPECT_EQ(fixed.offsets_source(), reader_->offsets_source());
  EXPECT_EQ(fixed.asyncio_layout_used()->task_coro, asyncio_layout(GetParam().minor)->task_coro);
  EXPECT_EQ(summary(got), summary(tasks_));
  // Without the section (no pid) the wrong table finds none of it: the test can fail.
  AsyncioReader blind(*proc_->memory, proc_->layout, threads_reader_->interpreter(), 0, wrong);
  std::vector<TaskInfo> none;
  blind.read_tasks(&none);
  EXPECT_EQ(blind.offsets_source(), "table");
  EXPECT_NE(summary(none), summary(tasks_));
}

// Runs only on the 'many' target (a thousand tasks).
class AsyncioMany : public AsyncioLive {};

TEST_P(AsyncioMany, ThousandTasksInFewSystemCalls) {
  ASSERT_FALSE(rep()["many"].empty()) << "the 'many' target reported no tasks";
  CountingMemory counting(*proc_->memory);
  AsyncioReader reader(counting, proc_->layout, threads_reader_->interpreter());
  std::vector<TaskInfo> again;
  ASSERT_TRUE(reader.read_tasks(&again));  // resolves the registries and asyncio's types once
  uint64_t trips = counting.trips(), calls = counting.calls();
  ASSERT_TRUE(reader.read_tasks(&again));
  trips = counting.trips() - trips;
  calls = counting.calls() - calls;
  // Requests do not grow with the task count, and neighbouring objects share one iovec,
  // so even with LiveMemory's 64 iovecs per process_vm_readv the calls stay in the tens.
  EXPECT_LE(trips, 40u) << again.size() << " tasks, " << calls << " system calls";
  EXPECT_LE(calls, 45u) << again.size() << " tasks, " << trips << " requests";
  ASSERT_EQ(again.size(), tasks_.size());
  for (auto& m : rep()["many"]) {
    auto it = index_.find(m.get<uint64_t>());
    ASSERT_NE(it, index_.end());
    const TaskInfo& t = again[it->second];
    EXPECT_EQ(t.name.substr(0, 1), "M");
    Frames c = chain(t);
    ASSERT_EQ(c.size(), 2u) << t.name;
    EXPECT_EQ(c[0].first, "sleep");
    EXPECT_EQ(c[1], std::make_pair(std::string("inner_sleep"), line("INNER")));
    EXPECT_EQ(t.awaiting, "sleep");
  }
  std::map<uint64_t, size_t> idx;
  for (size_t i = 0; i < again.size(); ++i) idx[again[i].addr] = i;
  for (auto& [g, kids] : rep()["groups"].items()) {
    const TaskInfo& t = again[idx[addr_of(g)]];
    std::vector<std::string> got, want;
    for (size_t k : t.awaits) got.push_back(again[k].name);
    for (auto& k : kids) want.push_back(k.get<std::string>());
    std::sort(got.begin(), got.end());
    std::sort(want.begin(), want.end());
    EXPECT_EQ(got, want) << g;
    EXPECT_EQ(t.awaiting, "gather");
  }
}

// The same read replayed from recorded memory matches; with corrupted words it never crashes.
class AsyncioReplay : public AsyncioLive {};

TEST_P(AsyncioReplay, ReplayAndCorruptedReplay) {
  RecordingMemory rec(*proc_->memory);
  AsyncioReader live(rec, proc_->layout, threads_reader_->interpreter());
  std::vector<TaskInfo> recorded;
  ASSERT_TRUE(live.read_tasks(&recorded));
  SnapshotMemory snap;
  fill_snapshot(rec.pages(), &snap);
  AsyncioReader replay(snap, proc_->layout, threads_reader_->interpreter());
  std::vector<TaskInfo> replayed;
  ASSERT_TRUE(replay.read_tasks(&replayed));
  ASSERT_EQ(replayed.size(), recorded.size());
  ASSERT_FALSE(rec.pages().empty());
  ASSERT_GT(recorded.size(), 10u);
  // The second read takes last read's chain objects from one prefetch: the same result.
  std::vector<TaskInfo> prefetched;
  ASSERT_TRUE(replay.read_tasks(&prefetched));
  ASSERT_EQ(prefetched.size(), recorded.size());
  for (size_t i = 0; i < replayed.size(); ++i) {
    EXPECT_EQ(replayed[i].name, recorded[i].name);
    EXPECT_EQ(replayed[i].chain.size(), recorded[i].chain.size());
    EXPECT_EQ(replayed[i].awaits, recorded[i].awaits);
    ASSERT_EQ(prefetched[i].chain.size(), recorded[i].chain.size());
    for (size_t k = 0; k < recorded[i].chain.size(); ++k) {
      EXPECT_EQ(prefetched[i].chain[k].code, recorded[i].chain[k].code);
      EXPECT_EQ(prefetched[i].chain[k].byte_offset, recorded[i].chain[k].byte_offset);
    }
  }
  std::mt19937_64 rng(GetParam().minor);
  std::vector<uint64_t> page_addrs;
  for (auto& kv : rec.pages()) page_addrs.push_back(kv.first);
  int decoded = 0;
  for (int round = 0; round < 150; ++round) {
    auto pages = rec.pages();
    for (int n = 0; n < 64; ++n) {  // overwrite random words with pointers, small ints or noise
      auto& page = pages[page_addrs[rng() % page_addrs.size()]];
      uint64_t v;
      switch (rng() % 4) {
        case 0: v = page_addrs[rng() % page_addrs.size()] + (rng() % 4096 & ~uint64_t{7}); break;
        case 1: v = rng() % 256 - 128; break;
        case 2: v = rng(); break;
        default: v = 0;
      }
      std::memcpy(&page[(rng() % 512) * 8], &v, 8);
    }
    SnapshotMemory bad;
    fill_snapshot(pages, &bad);
    AsyncioReader r(bad, proc_->layout, threads_reader_->interpreter());
    std::vector<TaskInfo> tasks;
    std::vector<AsyncStack> stacks;
    r.read_tasks(&tasks);
    r.read_tasks(&tasks);  // again, through the prefetch of the first read's chain objects
    decoded += !tasks.empty();
    EXPECT_LE(tasks.size(), AsyncioReader::kMaxTasks);
    r.build_stacks(tasks, threads_, &stacks);
    for (const TaskInfo& t : tasks) EXPECT_LE(t.chain.size(), AsyncioReader::kMaxChainDepth);
  }
  EXPECT_GT(decoded, 50);  // the corruption leaves most rounds readable: deep paths are exercised
}

auto case_label = [](const auto& info) { return std::string(info.param.label); };
INSTANTIATE_TEST_SUITE_P(Interpreters, AsyncioLive, ::testing::ValuesIn(cases()), case_label);
INSTANTIATE_TEST_SUITE_P(Interpreters, AsyncioMany, ::testing::ValuesIn(cases_in({"many"})), case_label);
INSTANTIATE_TEST_SUITE_P(Interpreters, AsyncioReplay, ::testing::ValuesIn(cases_in({"c", "py"})), case_label);

// Random words, many pointing back into the region: read_tasks returns, never crashes.
TEST(AsyncioGarbage, RandomMemoryNeverCrashes) {
  constexpr uint64_t kBase = 0x10000;
  constexpr size_t kWords = 1 << 13;
  std::mt19937_64 rng(99);
  for (int minor = 8; minor <= 13; ++minor) {
    const Layout* layout = builtin_layout(3, minor);
    ASSERT_NE(layout, nullptr);
    std::vector<uint64_t> words(kWords);
    for (auto& w : words) {
      switch (rng() % 4) {
        case 0: w = kBase + (rng() % (kWords * 8) & ~uint64_t{7}); break;
        case 1: w = rng() % 64; break;
        case 2: w = rng(); break;
        default: w = 0;
      }
    }
    SnapshotMemory mem;
    mem.add(kBase, words.data(), words.size() * 8);
    for (int i = 0; i < 300; ++i) {
      AsyncioReader r(mem, *layout, kBase + (rng() % (kWords * 8) & ~uint64_t{7}));
      std::vector<TaskInfo> tasks;
      std::vector<AsyncStack> stacks;
      r.read_tasks(&tasks);
      r.build_stacks(tasks, {}, &stacks);
    }
  }
  SnapshotMemory empty;
  AsyncioReader r(empty, *builtin_layout(3, 12), 0x1000);
  std::vector<TaskInfo> tasks;
  EXPECT_TRUE(r.read_tasks(&tasks));  // asyncio not found: no tasks, not an error
  EXPECT_TRUE(tasks.empty());
}

TEST(AsyncioLayoutTable, UnknownVersionsHaveNoTable) {
  EXPECT_EQ(asyncio_layout(7), nullptr);
  EXPECT_EQ(asyncio_layout(16), nullptr);
  for (int minor = 8; minor <= 15; ++minor) {
    ASSERT_NE(asyncio_layout(minor), nullptr);
    EXPECT_EQ(asyncio_layout(minor)->minor, minor);
  }
}

}  // namespace
}  // namespace pyprofd
