// 3.14+: asyncio records who awaits whom itself. A future's fut_awaited_by is the one
// task awaiting it, or a set of them (fut_awaited_by_is_set); the C task step keeps it
// for a task awaiting a task, and gather, wait, as_completed, shield, TaskGroup and
// staggered keep it for their children. A child linked here costs no read when one task
// awaits it (the pointer came with the task object) and one set read otherwise, and
// link_callbacks then skips it (a child with an awaiter needs no callback decoding).
#include "profiler/asyncio_tasks.h"

namespace pyprofd {
namespace {
constexpr size_t kMaxAwaiters = 64;  // tasks read from one awaited_by set
}  // namespace

void AsyncioReader::link_awaited_by(std::vector<TaskInfo>* tasks, const std::unordered_map<uint64_t, size_t>& index) {
  if (!al_ || !al_->task_awaited_by) return;
  std::vector<uint64_t> awaiters;
  for (size_t i = 0; i < tasks->size(); ++i) {
    const TaskInfo& t = (*tasks)[i];
    if (t.state != TaskState::kPending || !plausible(t.awaited_by)) continue;
    awaiters.clear();
    if (!t.awaited_by_set) awaiters.push_back(t.awaited_by);
    else objs_.set_items(t.awaited_by, &awaiters, kMaxAwaiters);  // a dummy key matches no task
    for (uint64_t a : awaiters) {
      auto it = index.find(a);
      if (it != index.end() && (*tasks)[it->second].state == TaskState::kPending) add_await(tasks, it->second, i);
    }
  }
}

}  // namespace pyprofd
