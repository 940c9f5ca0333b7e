#include "profiler/thread_reader.h"

#include <sys/stat.h>

#include <algorithm>
#include <cstring>
#include <string>

namespace pyprofd {

namespace {
bool task_exists(pid_t pid, uint64_t tid) {
  if (tid == 0 || tid > 0x7fffffff) return false;
  struct stat st;
  return stat(("/proc/" + std::to_string(pid) + "/task/" + std::to_string(tid)).c_str(), &st) == 0;
}
}  // namespace

ThreadReader::ThreadReader(PythonProcess& proc)
    : proc_(proc), l_(proc.layout), ns_(proc.pid), walker_(*proc.memory, proc.layout) {}

bool ThreadReader::read_interpreter() {
  uint64_t interp = 0;
  if (!proc_.memory->read_value(proc_.runtime_addr + l_.rt_interpreters_head, &interp) || interp == 0) return false;
  interp_ = interp;
  if (l_.is_gil_ptr) {
    uint64_t gil = 0;
    if (proc_.memory->read_value(interp + l_.is_gil_ptr, &gil)) gil_addr_ = gil;
  } else if (l_.rt_gil) {
    gil_addr_ = proc_.runtime_addr + l_.rt_gil;
  }
  return true;
}

void ThreadReader::prepare_gil(std::vector<ReadOp>* ops) {
  gil_op_ = current_op_ = -1;
  uint32_t need = std::max(l_.gil_last_holder + 8, l_.gil_locked + 4);
  if (!gil_addr_ || need > sizeof gil_buf_) return;
  gil_op_ = static_cast<int>(ops->size());
  ops->push_back(ReadOp{gil_addr_, gil_buf_, need});
  if (l_.rt_tstate_current) {
    current_op_ = static_cast<int>(ops->size());
    ops->push_back(ReadOp{proc_.runtime_addr + l_.rt_tstate_current, &gil_current_, sizeof gil_current_});
  }
}

void ThreadReader::finish_gil(const std::vector<ReadOp>& ops, uint64_t* holder, bool* locked) const {
  *holder = 0;
  *locked = false;
  if (gil_op_ < 0 || !ops[gil_op_].ok) return;
  int32_t lk;
  std::memcpy(holder, gil_buf_ + l_.gil_last_holder, 8);
  std::memcpy(&lk, gil_buf_ + l_.gil_locked, 4);
  *locked = lk == 1;
  // <=3.11: the thread state swapped in is the holder while the GIL is taken.
  if (current_op_ >= 0 && ops[current_op_].ok && gil_current_) *holder = gil_current_;
}

void ThreadReader::read_gil(uint64_t* holder, bool* locked) {
  ops_.clear();
  prepare_gil(&ops_);
  proc_.memory->readv(ops_.data(), ops_.size());
  finish_gil(ops_, holder, locked);
}

// glibc keeps the kernel TID inside struct pthread (pthread_t points at it). Its offset
// is found once: the main thread's struct holds the PID, and every other thread's value
// at that offset must be a distinct task of the process (or 0: an ended thread) (all as the target's namespace
// numbers them). In a container the PID is 1, which many fields hold: the search waits
// until a second thread tells the offsets apart (the main thread's TID is the PID).
void ThreadReader::find_tid_offset(const std::vector<ThreadSample>& threads, size_t n) {
  if (!main_pthread_ && !proc_.memory->read_value(proc_.runtime_addr + l_.rt_main_thread, &main_pthread_)) return;
  if (!main_pthread_) return;
  bool others = false;
  for (size_t i = 0; i < n; ++i) others |= threads[i].ts.thread_id != main_pthread_;
  if (!others && !ns_.same_namespace()) return;  // ambiguous: try again when threads change
  // Under thread churn a thread may end during the search: tried again (bounded) when
  // the thread list next changes, never given up on at the first failure.
  if (++tid_searches_ >= kMaxTidSearches) tid_offset_searched_ = true;
  uint8_t buf[2048];
  if (!proc_.memory->read(main_pthread_, buf, sizeof buf)) return;
  for (uint32_t off = 0; off + 4 <= sizeof buf; off += 4) {
    int32_t v;
    std::memcpy(&v, buf + off, 4);
    if (v == ns_.inner_pid() && tid_offset_fits(threads, n, off)) {
      tid_offset_ = static_cast<int>(off);
      tid_offset_searched_ = true;
      return;
    }
  }
}

// Every other thread's value at off is a distinct task of the process, or 0: a thread
// that has ended (the kernel clears the TID in struct pthread at its exit).
bool ThreadReader::tid_offset_fits(const std::vector<ThreadSample>& threads, size_t n, uint32_t off) {
  std::vector<int32_t> seen(1, ns_.inner_pid());
  for (size_t i = 0; i < n; ++i) {
    uint64_t pthread = threads[i].ts.thread_id;
    if (pthread == main_pthread_) continue;
    int32_t tid = 0;
    if (!proc_.memory->read_value(pthread + off, &tid)) return false;
    if (tid != 0 && !task_exists(proc_.pid, ns_.to_host(static_cast<uint64_t>(tid))) &&
        !(proc_.memory->read_value(pthread + off, &tid) && tid == 0))  // ended just now
      return false;
    if (tid == 0) continue;
    if (std::find(seen.begin(), seen.end(), tid) != seen.end()) return false;
    seen.push_back(tid);
  }
  return true;
}

// <=3.10 keeps no kernel TID in the thread state: it is read from each thread's
// struct pthread, all threads in one readv (glibc reuses a finished thread's struct
// for a new one, so a cache keyed by pthread_t could name the wrong thread).
void ThreadReader::read_tids(std::vector<ThreadSample>* threads) {
  tids_.assign(threads->size(), 0);
  tid_ops_.clear();
  for (size_t i = 0; i < threads->size(); ++i) {
    uint64_t pthread = (*threads)[i].ts.thread_id;
    tid_ops_.push_back(ReadOp{pthread ? pthread + static_cast<uint64_t>(tid_offset_) : 0, &tids_[i], sizeof(int32_t)});
  }
  proc_.memory->readv(tid_ops_.data(), tid_ops_.size());
  for (size_t i = 0; i < threads->size(); ++i)
    (*threads)[i].ts.native_id = tid_ops_[i].ok && tids_[i] > 0 ? ns_.to_host(static_cast<uint64_t>(tids_[i])) : 0;
}

// Without the TID offset (not found yet) only the main thread's TID is known: the PID.
void ThreadReader::main_tid_only(std::vector<ThreadSample>* threads) const {
  for (auto& t : *threads) t.ts.native_id = main_pthread_ && t.ts.thread_id == main_pthread_ ? proc_.pid : 0;
}

bool ThreadReader::read_threads(std::vector<ThreadSample>* out, bool want_gil) {
  if (!interp_ && !read_interpreter()) return false;
  uint64_t head = 0;
  if (!proc_.memory->read_value(interp_ + l_.is_threads_head, &head)) return false;

  uint64_t gil_holder = 0;
  bool gil_locked = false;
  if (want_gil) read_gil(&gil_holder, &gil_locked);

  size_t n = 0;
  live_.clear();
  for (uint64_t addr = head; addr && n < kMaxThreads; ++n) {
    bool loop = false;
    for (uint64_t seen : live_) loop |= seen == addr;
    if (loop) break;
    if (out->size() <= n) out->emplace_back();
    ThreadSample& t = (*out)[n];
    if (!walker_.read_thread(addr, &t.ts)) break;
    t.holds_gil = gil_locked && gil_holder == addr;
    t.frames.clear();
    live_.push_back(addr);
    addr = t.ts.next;
  }
  out->resize(n);
  walker_.retain_only(live_);
  ns_.invalidate();  // the thread list changed (or is read for the first time)
  if (l_.ts_native_thread_id)
    for (auto& t : *out) t.ts.native_id = ns_.to_host(t.ts.native_id);
  if (l_.tid_from_pthread && n) {
    if (!tid_offset_searched_) find_tid_offset(*out, n);
    if (tid_offset_ >= 0) read_tids(out);
    else main_tid_only(out);
  }
  return true;
}

// The fast path: one readv for the list head, the GIL, and every known thread's
// state, frames and TID. Any sign that the thread list changed sends the caller to
// the slow path (list, then walk), which also refreshes what is known.
bool ThreadReader::sample_known(std::vector<ThreadSample>* out, bool want_gil) {
  const size_t n = known_.size();
  uint64_t head = 0;
  ops_.clear();
  ops_.push_back(ReadOp{interp_ + l_.is_threads_head, &head, sizeof head});
  if (want_gil) prepare_gil(&ops_);
  for (const auto& [tstate, pthread] : known_) walker_.prepare(tstate, &ops_);
  size_t tid_first = ops_.size();
  bool want_tids = l_.tid_from_pthread && tid_offset_ >= 0;
  if (want_tids) {
    tids_.assign(n, 0);
    for (size_t i = 0; i < n; ++i)
      ops_.push_back(ReadOp{known_[i].second + static_cast<uint64_t>(tid_offset_), &tids_[i], sizeof(int32_t)});
  }
  proc_.memory->readv(ops_.data(), ops_.size());
  if (!ops_[0].ok || head != known_[0].first) return false;

  out->resize(n);
  for (size_t i = 0; i < n; ++i) {
    ThreadSample& t = (*out)[i];
    t.ts.native_id = want_tids && ops_[tid_first + i].ok && tids_[i] > 0 ? static_cast<uint64_t>(tids_[i]) : 0;
    t.status = walker_.finish(known_[i].first, ops_, &t.ts, &t.frames);
    t.unchanged = walker_.last_unchanged();
    t.ts.native_id = ns_.to_host(t.ts.native_id);  // raw from the tid read or the thread state
    uint64_t expected_next = i + 1 < n ? known_[i + 1].first : 0;
    if (t.status == WalkStatus::kReadError || t.ts.next != expected_next || t.ts.thread_id != known_[i].second)
      return false;
  }
  if (l_.tid_from_pthread && !want_tids) main_tid_only(out);
  uint64_t holder = 0;
  bool locked = false;
  if (want_gil) finish_gil(ops_, &holder, &locked);
  for (auto& t : *out) t.holds_gil = locked && holder == t.ts.addr;
  return true;
}

bool ThreadReader::sample(std::vector<ThreadSample>* out, bool want_gil) {
  if (!interp_ && !read_interpreter()) return false;
  if (!known_.empty() && sample_known(out, want_gil)) return true;
  if (!read_threads(out, want_gil)) return false;
  known_.clear();
  for (auto& t : *out) {
    walk(&t);
    known_.emplace_back(t.ts.addr, t.ts.thread_id);
  }
  return true;
}

}  // namespace pyprofd
