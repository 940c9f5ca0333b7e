#include "profiler/thread_reader.h"

#include <sys/stat.h>

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

ThreadReader::ThreadReader(PythonProcess& proc) : proc_(proc), l_(proc.layout), walker_(*proc.memory, proc.layout) {}

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

void ThreadReader::read_gil(uint64_t* holder, bool* locked) {
  *holder = 0;
  *locked = false;
  if (!gil_addr_) return;
  uint8_t buf[32] = {};
  uint32_t need = std::max(l_.gil_last_holder + 8, l_.gil_locked + 4);
  if (need > sizeof buf || !proc_.memory->read(gil_addr_, buf, need)) return;
  int32_t lk;
  std::memcpy(holder, buf + l_.gil_last_holder, 8);
  std::memcpy(&lk, buf + l_.gil_locked, 4);
  *locked = lk == 1;
  if (l_.rt_tstate_current) {
    // <=3.11: the thread state swapped in is the holder while the GIL is taken.
    uint64_t current = 0;
    if (proc_.memory->read_value(proc_.runtime_addr + l_.rt_tstate_current, &current) && current) *holder = current;
  }
}

// glibc keeps the kernel TID inside struct pthread (pthread_t points at it). Its offset
// is found once: the main thread's struct holds the PID, and every other thread's value
// at that offset must be one of the process's tasks.
void ThreadReader::find_tid_offset(const std::vector<ThreadSample>& threads, size_t n) {
  tid_offset_searched_ = true;
  uint64_t main_thread = 0;
  if (!proc_.memory->read_value(proc_.runtime_addr + l_.rt_main_thread, &main_thread) || !main_thread) return;
  uint8_t buf[2048];
  if (!proc_.memory->read(main_thread, buf, sizeof buf)) return;
  for (uint32_t off = 0; off + 4 <= sizeof buf; off += 4) {
    int32_t v;
    std::memcpy(&v, buf + off, 4);
    if (v != proc_.pid) continue;
    bool all = true;
    for (size_t i = 0; i < n && all; ++i) {
      if (threads[i].ts.thread_id == main_thread) continue;
      int32_t tid = 0;
      all = proc_.memory->read_value(threads[i].ts.thread_id + off, &tid) && task_exists(proc_.pid, tid);
    }
    if (all) {
      tid_offset_ = static_cast<int>(off);
      return;
    }
  }
}

bool ThreadReader::sample(std::vector<ThreadSample>* out, bool want_gil) {
  if (!interp_ && !read_interpreter()) return false;
  uint64_t head = 0;
  if (!proc_.memory->read_value(interp_ + l_.is_threads_head, &head)) return false;

  uint64_t gil_holder = 0;
  bool gil_locked = false;
  if (want_gil) read_gil(&gil_holder, &gil_locked);

  size_t n = 0;
  live_.clear();
  for (uint64_t addr = head; addr && n < kMaxThreads; ++n) {
    if (out->size() <= n) out->emplace_back();
    ThreadSample& t = (*out)[n];
    if (!walker_.read_thread(addr, &t.ts)) break;
    bool loop = false;
    for (uint64_t seen : live_) loop |= seen == addr;
    if (loop) break;
    live_.push_back(addr);
    addr = t.ts.next;
  }
  out->resize(n);
  if (l_.minor <= 10 && !tid_offset_searched_ && n) find_tid_offset(*out, n);

  for (size_t i = 0; i < n; ++i) {
    ThreadSample& t = (*out)[i];
    t.holds_gil = gil_locked && gil_holder == t.ts.addr;
    int32_t tid = 0;
    ReadOp tid_op{t.ts.thread_id + static_cast<uint64_t>(tid_offset_), &tid, sizeof tid};
    bool want_tid = l_.minor <= 10 && tid_offset_ >= 0 && t.ts.thread_id;
    t.status = walker_.walk(t.ts, &t.frames, want_tid ? &tid_op : nullptr);
    if (want_tid && tid_op.ok && tid > 0) t.ts.native_id = static_cast<uint64_t>(tid);
  }
  walker_.retain_only(live_);
  return true;
}

}  // namespace pyprofd
