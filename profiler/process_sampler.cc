#include "profiler/process_sampler.h"

#include <spdlog/spdlog.h>
#include <time.h>

#include <algorithm>

#include "profiler/clock.h"
#include "profiler/thread_names.h"

namespace pyprofd {

namespace {
constexpr int64_t kNamesRefreshNs = 200 * 1000 * 1000;  // re-read names of new threads at most 5 times a second
// A thread the last read did not name (a process without threading, a thread it does not
// know): its re-reads back off to this, doubling (a walk of sys.modules for each busy
// process five times a second was a sixth of the daemon's CPU on a host of 100 processes,
// and with a 5 s cap still a twentieth). A new thread is looked for at once all the same.
constexpr int64_t kNamesBackoffMaxNs = 30LL * 1000 * 1000 * 1000;
constexpr int64_t kRevalidateNs = 100 * 1000 * 1000;
// Code objects re-checked each time, in one readv. Each costs the kernel about an iovec
// (code objects lie apart): 256 ten times a second was a tenth of the CPU under load.
constexpr size_t kRevalidateBatch = 64;
constexpr int kWalkRetries = 5;  // re-walks of a stack that changed under the read, before it counts as invalid
// cpu mode: a process none of whose threads is on a CPU is not read; its thread list is
// still re-read at least this often (a thread state made for an OS thread that already
// existed changes no thread count). Time, not ticks: a full read of each idle process
// every 10 ticks was a fifth of the daemon's CPU on idle hosts.
constexpr int64_t kFullReadEveryNs = 1000000000;
}  // namespace

std::string SamplingStats::invalid_reasons() const {
  std::string out;
  auto add = [&out](const char* what, uint64_t n) {
    if (!n) return;
    if (!out.empty()) out += ", ";
    out += what + std::string(" ") + std::to_string(n);
  };
  for (int i = 0; i < kWalkStatusCount; ++i)
    add(i == 0 ? "unreadable code" : walk_status_name(static_cast<WalkStatus>(i)), invalid_walks[i]);
  add("asyncio", invalid_tasks);
  return out;
}

ProcessSampler::ProcessSampler(std::unique_ptr<PythonProcess> proc, const SamplingOptions& options, SampleSink* sink)
    : proc_(std::move(proc)),
      options_(options),
      sink_(sink),
      reader_(*proc_),
      codes_(*proc_->memory, proc_->layout, proc_->code_type),
      states_(proc_->pid) {
  labels_.pid = proc_->pid;
  if (options_.native.enabled)
    native_ = std::make_unique<NativeStacks>(proc_->pid, options_.native, options_.interval_ns);
}

void ProcessSampler::set_interval(uint64_t interval_ns) {
  options_.interval_ns = interval_ns;
  if (native_) native_->set_tick(interval_ns);
}

const std::string& ProcessSampler::thread_name(uint64_t thread_id) {
  static const std::string kNone;
  // 0: a task whose thread is not known; it has no name to find (and looking for one
  // re-read threading's names five times a second).
  if (!thread_id) return kNone;
  auto it = names_.find(thread_id);
  if (it != names_.end()) return it->second;
  int64_t now = monotonic_ns();
  // The backoff is for threads already looked for: a thread not seen before (a process
  // still starting its threads) is looked for at the normal pace.
  bool seen = unnamed_.count(thread_id) > 0;
  if (now - names_read_at_ >= (seen ? names_refresh_ns_ : kNamesRefreshNs)) {
    names_read_at_ = now;
    names_ = read_thread_names(*proc_->memory, proc_->layout, reader_.interpreter());
    it = names_.find(thread_id);
    if (it != names_.end()) {
      names_refresh_ns_ = kNamesRefreshNs;
      return it->second;
    }
    if (unnamed_.size() >= kMaxUnnamed) unnamed_.clear();
    unnamed_.insert(thread_id);
    names_refresh_ns_ = std::min(2 * names_refresh_ns_, kNamesBackoffMaxNs);
  }
  return kNone;
}

// Frames innermost-first to a root-first stack of profile functions. A code object
// that cannot be read means the stack changed under us: the sample is dropped.
bool ProcessSampler::resolve(ThreadSample& t) {
  stack_.clear();
  for (auto it = t.frames.rbegin(); it != t.frames.rend(); ++it) {
    CodeInfo* code = codes_.get(it->code);
    if (!code) {
      SPDLOG_DEBUG("pid {}: unreadable code object {:#x} at depth {}", proc_->pid, it->code, it - t.frames.rbegin());
      return false;
    }
    // Generator code never starts a thread's stack (its frame is resumed by a caller), and
    // in a thread's chunk it is a generator being created, which is only ever the top.
    if (code->generator && it == t.frames.rbegin()) {
      t.status = WalkStatus::kNoBottom;
      return false;
    }
    if (it->thread_owned && code->generator && it + 1 != t.frames.rend()) {
      t.status = WalkStatus::kChanged;
      return false;
    }
    stack_.push_back(python_frame(code, it->byte_offset));
  }
  return true;
}

// A Python frame of the profile: the code's function interned once, its line.
StackFrame ProcessSampler::python_frame(CodeInfo* code, int32_t byte_offset) {
  if (code->function_id == UINT32_MAX)
    code->function_id = sink_->intern(FunctionKey{code->qualname, code->file, code->first_line});
  return StackFrame{code->function_id, code->line(byte_offset)};
}

// The stack last resolved for this thread, if its walk was unchanged and gave the same
// frames (both: the walk's bytes and the frames it resolved must be the same).
const std::vector<StackFrame>* ProcessSampler::resolve_cached(ThreadSample& t) {
  if (!t.unchanged || t.status != WalkStatus::kOk) return nullptr;
  auto it = resolved_.find(t.ts.addr);
  if (it == resolved_.end() || it->second.frames.size() != t.frames.size()) return nullptr;
  for (size_t i = 0; i < t.frames.size(); ++i) {
    const RawFrame &a = t.frames[i], &b = it->second.frames[i];
    if (a.code != b.code || a.byte_offset != b.byte_offset || a.thread_owned != b.thread_owned) return nullptr;
  }
  return &it->second.stack;
}

// The target runs while we read: a stack that cannot be shown consistent is read
// again, a few times, before it is dropped (dropping at once would favour code whose
// stack changes slowly). A good stack is kept for resolve_cached.
bool ProcessSampler::walk_and_resolve(ThreadSample& t) {
  bool good = t.status == WalkStatus::kOk && resolve(t);
  for (int retry = 0; !good && retry < kWalkRetries; ++retry) {
    SPDLOG_DEBUG("pid {}: torn stack (walk status {}), reading again", proc_->pid, static_cast<int>(t.status));
    reader_.walk(&t);
    good = t.status == WalkStatus::kOk && resolve(t);
  }
  if (good) {
    Resolved& r = resolved_[t.ts.addr];
    r.frames.assign(t.frames.begin(), t.frames.end());
    r.stack.assign(stack_.begin(), stack_.end());
  }
  return good;
}

bool ProcessSampler::resolve_async(const AsyncStack& st) {
  stack_.clear();
  for (auto it = st.frames.rbegin(); it != st.frames.rend(); ++it) {
    if (it->task >= 0) {
      if (static_cast<size_t>(it->task) >= tasks_.size()) return false;
      uint32_t id = sink_->intern(FunctionKey{"<task " + tasks_[it->task].name + ">", "~", 0});
      stack_.push_back(StackFrame{id, 0});
      continue;
    }
    CodeInfo* code = codes_.get(it->code);
    if (!code) return false;
    stack_.push_back(python_frame(code, it->byte_offset));
  }
  return true;
}

uint32_t ProcessSampler::native_function(const MergedFrame& f) {
  auto it = f.sym ? native_ids_.find(f.sym) : native_ids_.end();
  if (it != native_ids_.end()) return it->second;
  FunctionKey key{NativeStacks::frame_name(f), "", 0, true};
  if (f.sym) key.file = f.sym->file.empty() ? f.sym->library : f.sym->file;
  uint32_t id = sink_->intern(key);
  if (f.sym) native_ids_.emplace(f.sym, id);
  return id;
}

bool ProcessSampler::resolve_native(ThreadSample& t, SamplingStats* stats) {
  auto rewalk = [&] { reader_.walk(&t); };
  if (!native_->merge(static_cast<pid_t>(t.ts.native_id), t.frames, rewalk, &merged_, &native_why_, &stats->native))
    return false;
  // Stopped and read again (pause mode): that walk must hold too.
  if (t.status != WalkStatus::kOk) {
    ++stats->native.torn;
    --stats->native.merged;
    return false;
  }
  stack_.clear();
  for (auto it = merged_.rbegin(); it != merged_.rend(); ++it) {
    if (it->python < 0) {
      stack_.push_back(StackFrame{native_function(*it), it->sym ? it->sym->line : 0});
      continue;
    }
    const RawFrame& f = t.frames[it->python];
    CodeInfo* code = codes_.get(f.code);
    if (!code) {
      ++stats->native.torn;
      --stats->native.merged;
      return false;
    }
    stack_.push_back(python_frame(code, f.byte_offset));
  }
  return true;
}

const std::vector<StackFrame>* ProcessSampler::native_tail(uint64_t native_id, SamplingStats* stats) {
  auto [entry, fresh] = tails_.try_emplace(native_id);
  NativeTail& tail = entry->second;
  if (!fresh) return tail.ok ? &tail.frames : nullptr;
  auto th = std::find_if(threads_.begin(), threads_.end(), [&](const ThreadSample& t) { return t.ts.native_id == native_id; });
  if (!native_id || th == threads_.end() || th->status != WalkStatus::kOk || th->frames.empty()) {
    ++stats->native.unavailable;
    return nullptr;
  }
  // The task's stack was built from this walk; a pause re-reads it, and it must still end
  // in the same frame for the tail to be that frame's.
  const uint64_t leaf_frame = th->frames[0].frame, leaf_code = th->frames[0].code;
  auto rewalk = [&] { reader_.walk(&*th); };
  if (!native_->merge(static_cast<pid_t>(native_id), th->frames, rewalk, &merged_, &native_why_, &stats->native))
    return nullptr;
  if (th->status != WalkStatus::kOk || th->frames.empty() || th->frames[0].frame != leaf_frame ||
      th->frames[0].code != leaf_code) {
    ++stats->native.torn;
    --stats->native.merged;
    return nullptr;
  }
  // merged_ is innermost first; the tail root-first, as stacks are.
  for (size_t i = leaf_tail(merged_); i-- > 0;)
    tail.frames.push_back(StackFrame{native_function(merged_[i]), merged_[i].sym ? merged_[i].sym->line : 0});
  tail.ok = true;
  return &tail.frames;
}

void ProcessSampler::add_sample(uint64_t native_id, uint64_t thread_id, const std::string& task, uint64_t weight,
                                SamplingStats* stats, const std::vector<StackFrame>& stack) {
  if (stack.empty()) return;  // a thread between Python calls (e.g. starting up)
  threads_seen_[native_id ? native_id : thread_id] = true;
  labels_.thread_id = native_id;
  labels_.thread_name = thread_name(thread_id);
  labels_.task_name = task;
  sink_->add(labels_, stack, weight);
  ++stats->samples;
}

// Wall mode: every pending task every tick, suspended ones at their await point. CPU
// mode: only a running task, and only while its thread is on a CPU.
void ProcessSampler::sample_tasks(uint64_t wall_ns, const std::unordered_map<uint64_t, uint64_t>& cpu_of,
                                  SamplingStats* stats) {
  if (!asyncio_) {
    if (!reader_.interpreter()) return;
    asyncio_ = std::make_unique<AsyncioReader>(*proc_->memory, proc_->layout, reader_.interpreter(), proc_->pid);
  }
  const bool cpu_mode = options_.mode == ProfileMode::kCpu;
  if (!asyncio_->read_tasks(&tasks_, &threads_, cpu_mode ? TaskScope::kRunning : TaskScope::kAll)) {
    ++stats->invalid;
    ++stats->invalid_tasks;
    return;
  }
  stats->invalid += asyncio_->invalid_tasks();
  stats->invalid_tasks += asyncio_->invalid_tasks();
  stats->unreadable_task_names += asyncio_->unreadable_names();
  asyncio_->read_running_loops(threads_);
  if (!cpu_mode) asyncio_->read_executor_threads(threads_);  // cpu mode samples executor threads as threads
  asyncio_->build_stacks(tasks_, threads_, &async_stacks_);
  tails_.clear();
  for (const auto& st : async_stacks_) {
    if (st.running) covered_.push_back(st.native_thread);
    uint64_t weight = wall_ns;
    if (cpu_mode) {
      if (!st.running) continue;
      auto it = cpu_of.find(st.native_thread);
      if (it == cpu_of.end()) continue;
      weight = it->second;
    }
    weight /= std::max<uint32_t>(st.paths, 1);  // a task awaited by several tasks: its time split among them
    if (!resolve_async(st)) {
      ++stats->invalid;
      ++stats->invalid_tasks;
      continue;
    }
    if (native_ && st.running) {  // the running task's leaf frame called into these
      const std::vector<StackFrame>* tail = native_tail(st.native_thread, stats);
      if (!tail) continue;
      stack_.insert(stack_.end(), tail->begin(), tail->end());
    }
    add_sample(st.native_thread, pthread_of(st.native_thread),
               st.leaf < tasks_.size() ? tasks_[st.leaf].name : std::string(), weight, stats, stack_);
  }
}

// The pthread id (for names) of the thread of this tick's read with this native id, 0 if none.
uint64_t ProcessSampler::pthread_of(uint64_t native_id) const {
  for (const auto& t : threads_)
    if (t.ts.native_id == native_id) return t.ts.thread_id;
  return 0;
}

RunState ProcessSampler::run_state(uint64_t native_id, bool quick) {
  for (const auto& [tid, st] : tick_states_)
    if (tid == native_id) return st;
  RunState st = quick ? states_.quick_state(native_id) : states_.state(native_id);
  tick_states_.emplace_back(native_id, st);
  return st;
}

// cpu mode: true when no thread of the last read is on a CPU and no thread started or
// ended since: this tick has no sample to take, and the stack read (the readv, ~10x a
// state read) is skipped. A thread that ended reads kGone.
bool ProcessSampler::nothing_on_cpu() {
  // From the context-switch records when they are sure: no /proc read at all. They go by
  // process, so a thread not in the last read (a new one) counts too.
  OnCpu::State cpu = on_cpu_ ? on_cpu_->state(proc_->pid) : OnCpu::State::kUnknown;
  skip_by_records_ = cpu == OnCpu::State::kIdle;
  if (cpu == OnCpu::State::kBusy) return false;
  if (cpu == OnCpu::State::kIdle) return monotonic_ns() - full_read_ns_ < kFullReadEveryNs;
  size_t reads_before = states_.state_reads();
  bool idle = threads_bound_ && monotonic_ns() - full_read_ns_ < kFullReadEveryNs;
  for (size_t i = 0; idle && i < threads_.size(); ++i)
    idle = run_state(threads_[i].ts.native_id, true) == RunState::kIdle;
  // All idle on schedstat alone (no state file read: none of them ran since the last
  // tick) and they are all the OS threads: none could start or end one, no fstat.
  int64_t n = idle && states_.state_reads() == reads_before && os_threads_ == static_cast<int64_t>(threads_.size())
                  ? os_threads_
                  : states_.process_threads();
  bool same = n >= 0 && n == os_threads_;
  os_threads_ = n;  // for the full read that follows when not skipping
  return idle && same;
}

// Whether each thread state of the last read has its own OS thread. Up to 3.11 CPython
// fills a new thread's state with its creator's ids and sets them when the thread runs
// (3.12+: 0 until then): checking the creator alone missed the new thread until the
// next full read, a second later (a 0.4 s thread could go unsampled).
bool ProcessSampler::threads_bound() {
  bound_ids_.clear();
  for (const auto& t : threads_) {
    if (!t.ts.native_id) return false;
    bound_ids_.push_back(t.ts.native_id);
  }
  std::sort(bound_ids_.begin(), bound_ids_.end());
  return !bound_ids_.empty() && std::adjacent_find(bound_ids_.begin(), bound_ids_.end()) == bound_ids_.end();
}

bool ProcessSampler::sample(uint64_t wall_ns, SamplingStats* stats) {
  ++ticks_;
  bool cpu_mode = options_.mode == ProfileMode::kCpu;
  tick_states_.clear();
  if (cpu_mode && ticks_ % 256 == 0) states_.sweep();
  if (cpu_mode && !options_.idle && ever_read_) {
    if (nothing_on_cpu()) {
      ++stats->idle_skips;
      stats->idle_skips_by_records += skip_by_records_;
      return true;
    }
    full_read_ns_ = monotonic_ns();
  }
  // Wall --async reads every task each tick: last tick's chain objects are read first, and
  // the thread walk takes the frames of tasks that have resumed since from them.
  const bool early = options_.async_tasks && !cpu_mode && asyncio_;
  if (early) {
    asyncio_->prefetch_before_threads();
    reader_.set_frame_hints(asyncio_.get());
  }
  const bool read = reader_.sample(&threads_, options_.gil);
  if (early) reader_.set_frame_hints(nullptr);
  if (!read) {
    if (early) asyncio_->drop_early_prefetch();
    // Attached before the interpreter finished starting: keep trying while it lives.
    // An unreadable _PyRuntime instead means the image is gone: a vfork child that has
    // exec'd since we attached (the tree scan attaches the new image).
    bool alive = process_exists(proc_->pid);
    if (!ever_read_ && alive && reader_.runtime_readable()) return true;
    if (alive) ++stats->errors;  // an exit is not an error
    return false;
  }
  if (!ever_read_) full_read_ns_ = monotonic_ns();
  ever_read_ = true;
  if (cpu_mode) threads_bound_ = threads_bound();
  // Which threads count this tick, and with what weight.
  cpu_of_.clear();
  for (auto& t : threads_) {
    t.weight = 0;
    if (options_.gil && !t.holds_gil) continue;
    uint64_t weight = wall_ns;
    if (cpu_mode) {
      // On a CPU now: charged the whole interval, like any sampling profiler.
      if (t.ts.native_id && run_state(t.ts.native_id) == RunState::kRunning) {
        cpu_of_[t.ts.native_id] = weight;
      } else if (!options_.idle) {
        continue;
      }
    }
    t.weight = weight;
  }
  // cpu mode emits only running tasks: with no thread of this process on a CPU there
  // is nothing to read (an idle service costs a stat read per thread, not a task walk).
  if (native_) {  // before the tasks: a running task's thread is merged there
    native_tids_.clear();
    for (const auto& t : threads_)
      if (t.weight && t.ts.native_id) native_tids_.push_back(static_cast<pid_t>(t.ts.native_id));
    native_->begin_tick(native_tids_);
  }
  covered_.clear();
  if (options_.async_tasks && (!cpu_mode || !cpu_of_.empty())) sample_tasks(wall_ns, cpu_of_, stats);
  for (auto& t : threads_) {
    if (!t.weight) continue;
    if (std::find(covered_.begin(), covered_.end(), t.ts.native_id) != covered_.end()) continue;
    // An unchanged Python stack says nothing of the native one below it.
    if (const std::vector<StackFrame>* same = native_ ? nullptr : resolve_cached(t)) {
      add_sample(t.ts.native_id, t.ts.thread_id, std::string(), t.weight, stats, *same);
      continue;
    }
    if (!walk_and_resolve(t)) {
      ++stats->invalid;
      ++stats->invalid_walks[static_cast<int>(t.status)];
      continue;
    }
    if (native_ && (!t.ts.native_id || !resolve_native(t, stats))) continue;
    add_sample(t.ts.native_id, t.ts.thread_id, std::string(), t.weight, stats, stack_);
  }
  if (ticks_ % 256 == 0) {  // forget threads that are gone
    for (auto it = resolved_.begin(); it != resolved_.end();) {
      bool live = std::any_of(threads_.begin(), threads_.end(), [&](const ThreadSample& t) { return t.ts.addr == it->first; });
      it = live ? std::next(it) : resolved_.erase(it);
    }
  }
  // Code objects can be freed and their addresses reused: re-check a slice of the
  // cache about ten times a second.
  int64_t now = monotonic_ns();
  if (now - revalidated_at_ >= kRevalidateNs) {
    revalidated_at_ = now;
    codes_.revalidate(kRevalidateBatch);
  }
  return true;
}

}  // namespace pyprofd
