// Reads every thread of an attached interpreter: thread states, GIL holder, kernel
// TIDs and raw frames. One instance per process; reused across samples.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "profiler/attach.h"
#include "profiler/ns_tids.h"
#include "profiler/stack_walker.h"

namespace pyprofd {

struct ThreadSample {
  ThreadState ts;
  bool holds_gil = false;
  WalkStatus status = WalkStatus::kOk;
  std::vector<RawFrame> frames;  // innermost first
  bool unchanged = false;        // the walk found every byte as the previous one did: frames as then
  uint64_t weight = 0;           // set by the sampler: what this thread's sample weighs this tick
};

class ThreadReader {
 public:
  static constexpr size_t kMaxThreads = 4096;

  explicit ThreadReader(PythonProcess& proc);

  // Lists the thread states (with TIDs and, if want_gil, the GIL holder) into out,
  // reusing its vectors; frames are not read. False if the interpreter cannot be read.
  bool read_threads(std::vector<ThreadSample>* out, bool want_gil);
  // Reads one listed thread's frames (again).
  void walk(ThreadSample* t) {
    t->status = walker_.walk(t->ts.addr, &t->ts, &t->frames);
    t->unchanged = walker_.last_unchanged();
    if (l_.ts_native_thread_id) t->ts.native_id = ns_.to_host(t->ts.native_id);  // re-read from the thread state
  }
  // Lists and walks every thread. When the threads are those of the previous call,
  // all of it (thread list head, GIL, every thread's state and frames) is one readv.
  bool sample(std::vector<ThreadSample>* out, bool want_gil);

  // Frames another reader read this tick, tried before single reads (nullptr: none).
  void set_frame_hints(const FrameHints* hints) { walker_.set_hints(hints); }

  // True if _PyRuntime can be read (the image we attached to is still mapped).
  bool runtime_readable() {
    uint64_t v;
    return proc_.memory->read_value(proc_.runtime_addr, &v);
  }

  // The main interpreter state (0 until the first successful read).
  uint64_t interpreter() const { return interp_; }

 private:
  bool read_interpreter();
  void read_gil(uint64_t* holder, bool* locked);
  void prepare_gil(std::vector<ReadOp>* ops);
  void finish_gil(const std::vector<ReadOp>& ops, uint64_t* holder, bool* locked) const;
  bool sample_known(std::vector<ThreadSample>* out, bool want_gil);
  void find_tid_offset(const std::vector<ThreadSample>& threads, size_t n);
  bool tid_offset_fits(const std::vector<ThreadSample>& threads, size_t n, uint32_t off);
  void read_tids(std::vector<ThreadSample>* threads);
  void main_tid_only(std::vector<ThreadSample>* threads) const;

  PythonProcess& proc_;
  const Layout& l_;
  NamespaceTids ns_;  // the target's thread ids -> ours (containers)
  StackWalker walker_;
  uint64_t interp_ = 0;
  uint64_t gil_addr_ = 0;  // the GIL struct
  int tid_offset_ = -1;    // <=3.10: offset of the TID inside glibc's struct pthread
  bool tid_offset_searched_ = false;
  static constexpr int kMaxTidSearches = 50;  // failed searches before main_tid_only for good
  int tid_searches_ = 0;
  uint64_t main_pthread_ = 0;  // <=3.10: the main thread's pthread_t (its TID is the PID)
  std::vector<int32_t> tids_;
  std::vector<ReadOp> tid_ops_;
  // The previous sample's threads (thread state, pthread_t), in list order.
  std::vector<std::pair<uint64_t, uint64_t>> known_;
  std::vector<ReadOp> ops_;
  uint8_t gil_buf_[32] = {};
  uint64_t gil_current_ = 0;
  int gil_op_ = -1, current_op_ = -1;
  std::vector<uint64_t> live_;
};

}  // namespace pyprofd
