// Task stacks from the tasks read this tick and the threads' own frames: each pending
// leaf task under the tasks that await it, down to the root task, and a running task
// stitched onto the thread that runs it.
#include <algorithm>

#include "profiler/asyncio_tasks.h"

namespace pyprofd {
namespace {

// Where the executing tasks are: a task whose coroutine frame is on a thread's stack.
struct Placement {
  std::unordered_map<uint64_t, std::pair<size_t, size_t>> on_thread;  // frame -> (thread, depth)
  std::vector<int64_t> thread_of;                     // task -> thread index, -1 if not executing
  std::vector<bool> shadowed;                         // executing, but under another task on its thread
  std::unordered_map<uint64_t, uint64_t> running_on;  // loop -> native id of the thread running its task
};

Placement place(const std::vector<TaskInfo>& tasks, const std::vector<ThreadSample>& threads) {
  Placement p;
  const size_t n = tasks.size();
  for (size_t t = 0; t < threads.size(); ++t)
    for (size_t k = 0; k < threads[t].frames.size(); ++k) p.on_thread.emplace(threads[t].frames[k].frame, std::make_pair(t, k));
  // Per thread only the innermost executing task is a leaf (an outer one, e.g. the parent
  // of an eager task, is part of the same thread stack below it).
  std::vector<int64_t> best(threads.size(), -1);
  std::vector<size_t> best_k(threads.size(), SIZE_MAX);
  p.shadowed.assign(n, false);
  for (size_t i = 0; i < n; ++i) {
    if (tasks[i].state != TaskState::kPending || !tasks[i].coro_frame) continue;
    auto it = p.on_thread.find(tasks[i].coro_frame);
    if (it == p.on_thread.end()) continue;
    auto [t, k] = it->second;
    if (best[t] >= 0) p.shadowed[k < best_k[t] ? best[t] : i] = true;
    if (k < best_k[t]) best[t] = static_cast<int64_t>(i), best_k[t] = k;
  }
  p.thread_of.assign(n, -1);
  for (size_t t = 0; t < threads.size(); ++t) {
    if (best[t] < 0) continue;
    p.thread_of[best[t]] = static_cast<int64_t>(t);
    p.running_on[tasks[best[t]].loop] = threads[t].ts.native_id;
  }
  return p;
}

// The pending tasks awaiting each task (at most kMaxPaths kept).
std::vector<std::vector<size_t>> awaiters_of(const std::vector<TaskInfo>& tasks, std::vector<bool>* waits) {
  const size_t n = tasks.size();
  std::vector<std::vector<size_t>> up(n);
  waits->assign(n, false);
  for (size_t i = 0; i < n; ++i) {
    if (tasks[i].state != TaskState::kPending) continue;
    for (size_t j : tasks[i].awaits) {
      if (j >= n || j == i || tasks[j].state != TaskState::kPending) continue;
      (*waits)[i] = true;
      if (up[j].size() < AsyncioReader::kMaxPaths) up[j].push_back(i);
    }
  }
  return up;
}

void push(AsyncStack* s, AsyncFrame f) {
  if (s->frames.size() < AsyncioReader::kMaxStackFrames) s->frames.push_back(f);
}

// Every chain of awaiters from leaf to a root (a task no one awaits), depth-first, without
// cycles, at most kMaxPaths chains of at most kMaxTaskDepth tasks. Reuses its buffers
// across calls (no allocation per task once they have grown).
struct AwaiterChains {
  std::vector<std::vector<size_t>> found;  // the first n are this leaf's chains
  size_t n = 0;
  std::vector<size_t> path, next;  // next: per depth, which awaiter to try next
  std::vector<bool> extended;      // per depth: some awaiter was followed

  void from(size_t leaf, const std::vector<std::vector<size_t>>& up) {
    n = 0;
    path.assign(1, leaf);
    next.assign(1, 0);
    extended.assign(1, false);
    while (!path.empty() && n < AsyncioReader::kMaxPaths) {
      const auto& ups = up[path.back()];
      if (path.size() < AsyncioReader::kMaxTaskDepth && next.back() < ups.size()) {
        size_t cand = ups[next.back()++];
        if (std::find(path.begin(), path.end(), cand) != path.end()) continue;  // a cycle
        extended.back() = true;
        path.push_back(cand);
        next.push_back(0);
        extended.push_back(false);
        continue;
      }
      if (!extended.back()) keep();  // a root, or every way up loops back
      path.pop_back();
      next.pop_back();
      extended.pop_back();
    }
  }
  void keep() {
    if (n == found.size()) found.emplace_back();
    found[n++].assign(path.begin(), path.end());
  }
};

// Where a leaf's stacks start: on a thread (its frames down to depth, then the thread's
// outer frames after the tasks) or on none.
struct Start {
  const ThreadSample* th = nullptr;
  size_t depth = 0;
  bool leaf_on_thread = false;  // the leaf's own frames are the thread's (not its await chain)
  uint64_t native = 0;
};

// One stack per chain of awaiters of leaf (chains.from(leaf) already run), each weighing
// 1/chains: the start's thread frames, then every task of the chain (its await chain) and
// its <task> frame, then the thread's outer frames.
void emit(const std::vector<TaskInfo>& tasks, size_t leaf, const Start& at, const AwaiterChains& chains,
          std::vector<AsyncStack>* out) {
  for (size_t c = 0; c < chains.n; ++c) {
    AsyncStack s;
    s.leaf = leaf;
    s.running = at.th != nullptr;
    s.native_thread = at.native;
    s.paths = static_cast<uint32_t>(chains.n);
    if (at.th)
      for (size_t f = 0; f <= at.depth; ++f) push(&s, AsyncFrame{at.th->frames[f].code, at.th->frames[f].byte_offset, -1});
    for (size_t task : chains.found[c]) {
      if (task != leaf || !at.leaf_on_thread)
        for (const RawFrame& f : tasks[task].chain) push(&s, AsyncFrame{f.code, f.byte_offset, -1});
      push(&s, AsyncFrame{0, -1, static_cast<int32_t>(task)});
    }
    if (at.th)
      for (size_t f = at.depth + 1; f < at.th->frames.size(); ++f)
        push(&s, AsyncFrame{at.th->frames[f].code, at.th->frames[f].byte_offset, -1});
    out->push_back(std::move(s));
  }
}

}  // namespace

void AsyncioReader::build_stacks(const std::vector<TaskInfo>& tasks, const std::vector<ThreadSample>& threads,
                                 std::vector<AsyncStack>* out) {
  out->clear();
  const Placement p = place(tasks, threads);
  std::vector<bool> waits;
  const auto up = awaiters_of(tasks, &waits);
  AwaiterChains chains;
  std::vector<int64_t> run_of = executor_parents(tasks);  // task -> its executor run, -1: none
  for (size_t leaf = 0; leaf < tasks.size(); ++leaf) {
    Start at;
    if (run_of[leaf] >= 0) {  // its executor thread's frames down to _WorkItem.run, then the task
      const ExecutorRun& run = executor_runs_[run_of[leaf]];
      if (run.thread >= threads.size() || run.depth >= threads[run.thread].frames.size()) continue;
      at = Start{&threads[run.thread], run.depth, false, threads[run.thread].ts.native_id};
    } else {
      if (tasks[leaf].state != TaskState::kPending || p.shadowed[leaf]) continue;
      if (waits[leaf] && p.thread_of[leaf] < 0) continue;
      if (p.thread_of[leaf] >= 0) {
        const ThreadSample& th = threads[p.thread_of[leaf]];
        at = Start{&th, p.on_thread.at(tasks[leaf].coro_frame).second, true, th.ts.native_id};
      } else {
        auto lt = p.running_on.find(tasks[leaf].loop);
        at.native = lt != p.running_on.end() ? lt->second : loop_thread(tasks[leaf].loop);
      }
    }
    chains.from(leaf, up);
    emit(tasks, leaf, at, chains, out);
  }
}

// The awaiting task of each executor run (by the future it waits on).
std::vector<int64_t> AsyncioReader::executor_parents(const std::vector<TaskInfo>& tasks) const {
  std::vector<int64_t> run_of(tasks.size(), -1);
  if (executor_runs_.empty()) return run_of;
  std::unordered_map<uint64_t, size_t> run_by_future;
  for (size_t r = 0; r < executor_runs_.size(); ++r) run_by_future.emplace(executor_runs_[r].future, r);
  for (size_t i = 0; i < tasks.size(); ++i) {
    auto it = run_by_future.find(tasks[i].fut_waiter);
    if (it != run_by_future.end() && tasks[i].state == TaskState::kPending && tasks[i].awaits.empty())
      run_of[i] = static_cast<int64_t>(it->second);
  }
  return run_of;
}

}  // namespace pyprofd
