// loop.run_in_executor: the awaiting task waits on an asyncio future chained to the
// concurrent.futures.Future of a work item that an executor thread is running. The
// thread's _WorkItem.run frame holds the item; the item's future's done callback
// (_chain_future's _call_set_state) closes over the asyncio future the task waits on.
// (3.15 tags the frame's `self` as a stack reference; untagged, the link holds there too.)
#include "profiler/asyncio_tasks.h"

namespace pyprofd {
namespace {
constexpr size_t kExecutorDepth = 16;  // frames searched per thread for _WorkItem.run
constexpr size_t kMaxItemCallbacks = 8;
constexpr size_t kMaxOtherRuns = 1024;  // "run" code objects known not to be _WorkItem.run
}  // namespace

void AsyncioReader::read_executor_threads(const std::vector<ThreadSample>& threads) {
  executor_runs_.clear();
  if (!al_ || !al_->frame_local0) return;
  struct Candidate {
    size_t thread, depth;
    uint64_t local0 = 0, code = 0, type = 0;
  };
  std::vector<Candidate> cand;
  for (size_t t = 0; t < threads.size(); ++t)
    for (size_t k = 0; k < threads[t].frames.size() && k < kExecutorDepth; ++k) {
      const RawFrame& f = threads[t].frames[k];
      if (plausible(f.frame) && !other_runs_.count(f.code) && code_name(f.code) == "run") cand.push_back(Candidate{t, k});
    }
  if (cand.empty()) return;
  std::vector<ReadOp> ops;
  for (auto& c : cand) {
    const uint64_t frame = threads[c.thread].frames[c.depth].frame;
    ops.push_back(ReadOp{frame + al_->frame_local0, reinterpret_cast<uint8_t*>(&c.local0), 8});
    ops.push_back(ReadOp{frame + l_.fr_code, reinterpret_cast<uint8_t*>(&c.code), 8});  // still that function's?
  }
  readv_merged(&ops);
  ops.clear();
  for (auto& c : cand) {
    // Locals are stack references (3.14+): 3.15 passes arguments with the reference tag
    // set (self | 1), so the tag bits of f_executable are cleared here too.
    c.local0 = l_.code_of(c.local0);
    if (plausible(c.local0)) ops.push_back(ReadOp{c.local0 + l_.ob_type, reinterpret_cast<uint8_t*>(&c.type), 8});
  }
  readv_merged(&ops);
  if (other_runs_.size() >= kMaxOtherRuns) other_runs_.clear();
  for (const auto& c : cand) {
    if (!plausible(c.type)) continue;
    const uint64_t code = threads[c.thread].frames[c.depth].code;
    if (type_info(c.type).name != "_WorkItem") {
      // Thread.run, Runner.run, ...: never a work item's, unless the frame had moved on.
      if (l_.code_of(c.code) == code) other_runs_.insert(code);
      continue;
    }
    uint64_t fut = awaited_through(c.local0);
    if (fut) executor_runs_.push_back(ExecutorRun{c.thread, c.depth, fut});
  }
}

// The asyncio future that a work item's concurrent future completes, or 0.
uint64_t AsyncioReader::awaited_through(uint64_t work_item) {
  auto cf = objs_.instance_attr(work_item, "future");
  if (!cf || !plausible(*cf)) return 0;
  auto list = objs_.instance_attr(*cf, "_done_callbacks");
  std::vector<uint64_t> items;
  if (!list || !objs_.sequence_items(*list, &items, kMaxItemCallbacks)) return 0;
  std::vector<Held> cbs, refs, selves;
  for (uint64_t cb : items) cbs.push_back(Held{0, cb});
  callback_holdings(cbs, &refs, &selves);
  for (const Held& r : refs) {
    uint64_t type = 0;
    if (plausible(r.obj) && mem_.read_value(r.obj + l_.ob_type, &type) && plausible(type) &&
        type_info(type).kind == Kind::kFuture)
      return r.obj;
  }
  return 0;
}

}  // namespace pyprofd
