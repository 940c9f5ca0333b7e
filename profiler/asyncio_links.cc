// Await links found beside the await chains: a parent waits on something that a child's
// done callback will complete.
#include <algorithm>

#include "profiler/asyncio_tasks.h"

namespace pyprofd {
namespace {
constexpr size_t kOwnerFrames = 3;  // a parent's innermost frames whose first local may own a child's callback
}  // namespace

void AsyncioReader::add_await(std::vector<TaskInfo>* tasks, size_t waiter, size_t child) {
  auto& aw = (*tasks)[waiter].awaits;
  if (waiter == child || std::find(aw.begin(), aw.end(), child) != aw.end()) return;
  aw.push_back(child);
  if (aw.size() == 1 && (*tasks)[waiter].awaiting != "gather") (*tasks)[waiter].awaiting = (*tasks)[child].name;
}

// as_completed and the like: a child's done callback is bound to (or closes over) the
// object whose method the parent is suspended in (the Queue of Queue.get, 3.13's
// _AsCompletedIterator), seen as the first local of one of the parent's innermost frames.
void AsyncioReader::link_frame_owners(std::vector<TaskInfo>* tasks, const std::vector<Held>& refs,
                                      const std::vector<Held>& selves,
                                      const std::unordered_map<uint64_t, size_t>& waiter_owner) {
  if ((refs.empty() && selves.empty()) || !al_->frame_local0) return;
  std::vector<std::pair<size_t, uint64_t>> frames;  // (parent, frame)
  for (const auto& [future, parent] : waiter_owner) {
    const auto& chain = (*tasks)[parent].chain;
    for (size_t k = 0; k < chain.size() && k < kOwnerFrames; ++k)
      if (plausible(chain[k].frame)) frames.emplace_back(parent, chain[k].frame);
  }
  std::vector<uint64_t> local0(frames.size(), 0);
  std::vector<ReadOp> ops;
  for (size_t i = 0; i < frames.size(); ++i)
    ops.push_back(ReadOp{frames[i].second + al_->frame_local0, reinterpret_cast<uint8_t*>(&local0[i]), 8});
  readv_merged(&ops);
  std::unordered_map<uint64_t, size_t> owner;  // object -> the parent suspended in its method
  for (size_t i = 0; i < frames.size(); ++i)
    if (ops[i].ok && plausible(l_.code_of(local0[i]))) owner.emplace(l_.code_of(local0[i]), frames[i].first);  // a stack reference
  for (const auto* held : {&refs, &selves})
    for (const Held& h : *held) {
      auto it = owner.find(h.obj);
      if (it != owner.end() && (*tasks)[it->second].state == TaskState::kPending) add_await(tasks, it->second, h.task);
    }
}

}  // namespace pyprofd
