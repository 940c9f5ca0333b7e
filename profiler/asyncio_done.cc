// 3.14+: finished tasks that pending tasks still refer to. 3.8-3.13 find every live task
// in asyncio's registries, done ones included; 3.14+'s per-thread lists drop a C task as
// it finishes, so `dump --async` finds those that are still referenced where the reader
// already looks: the locals and value stacks of the suspended coroutines of every await
// chain (`t = create_task(...); await t`), and the children of awaited gathers. A done
// task held only elsewhere (a global, a container) would need a walk of the whole heap.
#include <algorithm>
#include <unordered_set>

#include "profiler/asyncio_tasks.h"

namespace pyprofd {
namespace {
constexpr size_t kMaxFrames = 4096;  // coroutine frames searched
constexpr size_t kMaxSlots = 64;     // locals + value stack slots per frame
constexpr size_t kMaxChildren = 1024;
}  // namespace

void AsyncioReader::add_done_referenced(std::vector<TaskInfo>* tasks) {
  if (!al_ || !al_->task_node || !al_->frame_stackpointer || !reg_.resolved) return;
  std::unordered_set<uint64_t> known;
  for (const TaskInfo& t : *tasks) known.insert(t.addr);
  std::vector<uint64_t> refs;
  for (const TaskInfo& t : *tasks) {
    if (t.awaiting != "gather" || !plausible(t.fut_waiter)) continue;
    if (auto children = objs_.instance_attr(t.fut_waiter, "_children")) objs_.sequence_items(*children, &refs, kMaxChildren);
  }
  std::vector<uint64_t> frames;
  for (const TaskInfo& t : *tasks)
    for (const RawFrame& f : t.chain)
      if (frames.size() < kMaxFrames && plausible(f.frame)) frames.push_back(f.frame);
  const size_t len = al_->if_localsplus + 8 * kMaxSlots;
  std::vector<uint8_t> buf(frames.size() * len);
  std::vector<ReadOp> ops;
  for (size_t i = 0; i < frames.size(); ++i) ops.push_back(ReadOp{frames[i], &buf[i * len], len});
  readv_merged(&ops);
  for (size_t i = 0; i < frames.size(); ++i) {
    if (!ops[i].ok) continue;  // a frame near its mapping's end: skipped, not worth a second read
    const uint8_t* b = &buf[i * len];
    const uint64_t base = frames[i] + al_->if_localsplus, sp = field<uint64_t>(b, al_->if_stacktop);
    const size_t n = sp > base ? std::min<uint64_t>((sp - base) / 8, kMaxSlots) : 0;
    // Slots are stack references: the same tag bits as f_executable.
    for (size_t k = 0; k < n; ++k) refs.push_back(l_.code_of(field<uint64_t>(b, al_->if_localsplus + 8 * k)));
  }
  // Tasks among the referenced objects; a cell (a local that a closure shares) is
  // looked into once.
  std::vector<uint64_t> objs;
  for (int round = 0; round < 2 && !refs.empty(); ++round) {
    std::vector<uint64_t> cands;
    for (uint64_t r : refs)
      if (plausible(r) && known.insert(r).second) cands.push_back(r);
    std::vector<uint64_t> head(2 * cands.size(), 0);  // ob_type and, for a cell, its content
    ops.clear();
    for (size_t i = 0; i < cands.size(); ++i) ops.push_back(ReadOp{cands[i] + l_.ob_type, &head[2 * i], 16});
    readv_merged(&ops);
    refs.clear();
    for (size_t i = 0; i < cands.size(); ++i) {
      Kind k = ops[i].ok ? type_info(head[2 * i]).kind : Kind::kOther;
      if (k == Kind::kCTask || k == Kind::kPyTask) objs.push_back(cands[i]);
      if (k == Kind::kCell && al_->cell_ref == l_.ob_type + 8) refs.push_back(head[2 * i + 1]);
    }
  }
  if (objs.empty()) return;
  std::vector<TaskInfo> found;
  std::vector<uint64_t> names, kept_names;
  std::vector<std::vector<uint64_t>> callbacks;
  const size_t invalid = invalid_, unreadable = unreadable_names_;
  decode_tasks(objs, &found, &names, &callbacks);
  std::vector<TaskInfo> done;
  for (size_t i = 0; i < found.size(); ++i) {
    if (found[i].state == TaskState::kPending) continue;  // a pending task not in any list: torn
    done.push_back(std::move(found[i]));
    kept_names.push_back(names[i]);
  }
  read_names(&done, kept_names);
  invalid_ = invalid;  // what did not decode here was only a guess
  unreadable_names_ += unreadable;
  for (TaskInfo& t : done) tasks->push_back(std::move(t));
}

}  // namespace pyprofd
