// cpu mode samples only running tasks, so only they and the tasks awaiting them need
// their await chains read; on a loaded service most tasks are suspended, and reading
// their chains was most of what --async cost there. The awaiters are found from what the
// task objects already gave: a task whose _fut_waiter is the running one, the 3.14+
// awaited_by record, and the running task's done callbacks (gather, wait, shield,
// wait_for, TaskGroup hold the future the parent waits on, or the group whose
// _parent_task it is). Where a callback holds only something else (as_completed,
// Queue.get: the parent is found through its frames), every chain is read as before.
#include "profiler/asyncio_tasks.h"

namespace pyprofd {

void AsyncioReader::keep_running_lines(std::vector<TaskInfo>* tasks, std::vector<uint64_t>* names,
                                       std::vector<std::vector<uint64_t>>* callbacks,
                                       const std::unordered_map<uint64_t, size_t>& index) {
  const size_t n = tasks->size();
  std::vector<char> keep(n, 0);
  std::vector<size_t> level, found;
  std::unordered_multimap<uint64_t, size_t> waiting_on;  // future or task -> the tasks waiting on it
  for (size_t i = 0; i < n; ++i) {
    const TaskInfo& t = (*tasks)[i];
    if (t.state == TaskState::kPending && plausible(t.fut_waiter)) waiting_on.emplace(t.fut_waiter, i);
    if (t.running) keep[i] = 1, level.push_back(i);
  }
  for (size_t depth = 0; !level.empty() && depth < kMaxTaskDepth; ++depth) {
    found.clear();
    if (!direct_awaiters(*tasks, level, *callbacks, waiting_on, index, &found)) return;
    level.clear();
    for (size_t p : found)
      if (!keep[p]) keep[p] = 1, level.push_back(p);
  }
  size_t k = 0;
  for (size_t i = 0; i < n; ++i) {
    if (!keep[i]) continue;
    if (k != i) {
      (*tasks)[k] = std::move((*tasks)[i]);
      (*names)[k] = (*names)[i];
      (*callbacks)[k] = std::move((*callbacks)[i]);
    }
    ++k;
  }
  tasks->resize(k);
  names->resize(k);
  callbacks->resize(k);
}

bool AsyncioReader::direct_awaiters(const std::vector<TaskInfo>& tasks, const std::vector<size_t>& level,
                                    const std::vector<std::vector<uint64_t>>& callbacks,
                                    const std::unordered_multimap<uint64_t, size_t>& waiting_on,
                                    const std::unordered_map<uint64_t, size_t>& index, std::vector<size_t>* found) {
  std::unordered_map<size_t, bool> linked;  // child -> an awaiter found (present: it holds something)
  auto waiters = [&](size_t child, uint64_t obj) {
    auto range = waiting_on.equal_range(obj);
    for (auto it = range.first; it != range.second; ++it) found->push_back(it->second), linked[child] = true;
    return range.first != range.second;
  };
  std::vector<Held> cbs;
  for (size_t c : level) {
    const TaskInfo& t = tasks[c];
    waiters(c, t.addr);
    if (al_->task_awaited_by && plausible(t.awaited_by)) {
      if (t.awaited_by_set) return false;  // several awaiters: read every chain
      auto it = index.find(t.awaited_by);
      if (it != index.end()) found->push_back(it->second);
    }
    for (uint64_t cb : callbacks[c]) cbs.push_back(Held{c, cb});
  }
  if (cbs.empty()) return true;
  std::vector<Held> refs, selves;
  callback_holdings(cbs, &refs, &selves);
  for (const Held& r : refs) {
    if (index.count(r.obj)) continue;  // a task is linked by its own _fut_waiter
    if (!waiters(r.task, r.obj)) linked.emplace(r.task, false);
  }
  for (const Held& s : selves) {
    if (index.count(s.obj) || waiters(s.task, s.obj)) continue;
    auto pt = plausible(s.obj) ? objs_.instance_attr(s.obj, "_parent_task") : std::nullopt;
    auto it = pt ? index.find(*pt) : index.end();
    if (it == index.end()) {
      linked.emplace(s.task, false);
      continue;
    }
    found->push_back(it->second);  // TaskGroup._on_task_done: the group's parent
    linked[s.task] = true;
  }
  // A child whose callbacks hold something that led to no awaiter may be awaited by a
  // task suspended in a method of that object: only the parents' frames can tell.
  for (const auto& [child, ok] : linked)
    if (!ok && al_->frame_local0) return false;
  return true;
}

}  // namespace pyprofd
