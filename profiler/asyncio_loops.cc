// Which thread runs each event loop: every pending task belongs to a loop, and a loop
// runs on the one thread whose state names it as the running loop.
#include "profiler/asyncio_layout.h"
#include "profiler/asyncio_tasks.h"
#include "profiler/clock.h"

namespace pyprofd {
namespace {
constexpr const char* kRunningLoopKey = "__asyncio_running_event_loop__";  // tstate->dict key (<=3.12)
constexpr size_t kMaxLoopThreads = 4096;
}  // namespace

void AsyncioReader::read_running_loops(const std::vector<ThreadSample>& threads, bool force) {
  const uint32_t direct = al_ ? (al_->running_loop_follows_tstate ? l_.ts_size : al_->ts_running_loop) : 0;
  if (!al_ || (!al_->ts_dict && !direct)) return;
  const int64_t now = monotonic_ns();
  if (!force && loops_read_at_ && now - loops_read_at_ < kLoopRefreshNs) return;
  loops_read_at_ = now;
  loop_threads_.clear();
  const size_t n = std::min(threads.size(), kMaxLoopThreads);
  const uint32_t off = direct ? direct : al_->ts_dict;
  std::vector<uint64_t> slot(n, 0);
  std::vector<ReadOp> ops;
  for (size_t i = 0; i < n; ++i)
    ops.push_back(ReadOp{threads[i].ts.addr + off, reinterpret_cast<uint8_t*>(&slot[i]), sizeof(uint64_t)});
  readv_merged(&ops);
  for (size_t i = 0; i < n; ++i) {
    if (!ops[i].ok || !threads[i].ts.native_id || !plausible(slot[i])) continue;
    uint64_t loop = slot[i];
    if (!direct) loop = objs_.dict_get_str(slot[i], kRunningLoopKey).value_or(0);
    if (al_->holder_loop && plausible(loop) && !mem_.read_value(loop + al_->holder_loop, &loop)) continue;
    if (plausible(loop)) loop_threads_.emplace(loop, threads[i].ts.native_id);
  }
}

uint64_t AsyncioReader::loop_thread(uint64_t loop) const {
  auto it = loop_threads_.find(loop);
  return it == loop_threads_.end() ? 0 : it->second;
}

}  // namespace pyprofd
