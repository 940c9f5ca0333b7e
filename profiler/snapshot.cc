#include "profiler/snapshot.h"

#include "profiler/asyncio_tasks.h"
#include "profiler/clock.h"
#include "profiler/code_cache.h"
#include "profiler/proc_stat.h"
#include "profiler/thread_names.h"
#include "profiler/thread_reader.h"

#include <unistd.h>

namespace pyprofd {

namespace {

constexpr int kAttempts = 5;
constexpr int kWalkAttempts = 50;                 // re-walks of one changing stack
constexpr int64_t kRetryBudgetNs = 5 * 1000 * 1000;  // ... within a few ms in all

// Lists and walks every thread; a stack that changed under the read is walked again,
// for a few ms at most, and is left marked (t.status) if it never held still. False if
// the threads could not be listed at all.
bool read_stacks(ThreadReader& reader, std::vector<ThreadSample>* samples) {
  bool listed = false;
  for (int attempt = 0; attempt < kAttempts && !listed; ++attempt) listed = reader.sample(samples, true);
  if (!listed) return !samples->empty();
  const int64_t deadline = monotonic_ns() + kRetryBudgetNs;
  for (auto& t : *samples)
    for (int i = 0; i < kWalkAttempts && t.status != WalkStatus::kOk && monotonic_ns() < deadline; ++i)
      reader.walk(&t);
  return true;
}

SnapshotFrame frame_of(CodeCache& codes, uint64_t code_addr, int32_t offset) {
  CodeInfo* code = codes.get(code_addr);
  if (!code) return SnapshotFrame{"<unknown>", "<unknown>", 0, 0};
  return SnapshotFrame{code->qualname, code->file, code->line(offset), code->first_line};
}

// Generator code never starts a thread's stack, and in a thread's stack chunk it is a
// generator being created, which is only ever the top frame: otherwise the read was torn.
bool stale_generator_frame(CodeCache& codes, const std::vector<RawFrame>& frames) {
  for (size_t i = 0; i < frames.size(); ++i) {
    const bool outermost = i + 1 == frames.size();
    const CodeInfo* code = (i > 0 && frames[i].thread_owned) || outermost ? codes.get(frames[i].code) : nullptr;
    if (code && code->generator) return true;
  }
  return false;
}

// Running ('R') per the kernel's view of the task.
bool task_running(pid_t pid, uint64_t tid) {
  ProcStat stat;
  return tid && read_task_stat(pid, tid, &stat) && stat.state == 'R';
}

std::string state_name(const TaskInfo& ti) {
  if (ti.state == TaskState::kPending) return ti.running ? "running" : "pending";
  return ti.state == TaskState::kDone ? "done" : "cancelled";
}

void add_tasks(const PythonProcess& proc, uint64_t interp, const std::vector<ThreadSample>& threads, CodeCache& codes,
               std::vector<TaskSnapshot>* out) {
  AsyncioReader asyncio(*proc.memory, proc.layout, interp, proc.pid);
  std::vector<TaskInfo> infos;
  asyncio.read_tasks(&infos);
  asyncio.add_done_referenced(&infos);  // 3.14+: done tasks leave the lists; 3.8-3.13 list them
  asyncio.read_running_loops(threads, true);
  for (const auto& ti : infos) {
    TaskSnapshot t;
    t.name = ti.name;
    t.state = state_name(ti);
    t.running = ti.running;
    t.thread = asyncio.loop_thread(ti.loop);
    t.awaiting = ti.awaiting;
    for (const auto& f : ti.chain) t.frames.push_back(frame_of(codes, f.code, f.byte_offset));
    out->push_back(std::move(t));
  }
  const size_t base = out->size() - infos.size();
  for (size_t i = 0; i < infos.size(); ++i) {
    for (size_t j : infos[i].awaits) {
      if (j >= infos.size()) continue;
      (*out)[base + i].awaits.push_back(infos[j].name);
      (*out)[base + j].awaited_by.push_back(infos[i].name);
    }
  }
}

void add_threads(const PythonProcess& proc, const std::vector<ThreadSample>& samples, uint64_t interp,
                 CodeCache& codes, std::vector<ThreadSnapshot>* out) {
  auto names = read_thread_names(*proc.memory, proc.layout, interp);
  for (const auto& t : samples) {
    ThreadSnapshot th;
    th.native_id = t.ts.native_id;
    th.thread_id = t.ts.thread_id;
    th.holds_gil = t.holds_gil;
    th.active = task_running(proc.pid, t.ts.native_id);
    th.torn = t.status != WalkStatus::kOk || stale_generator_frame(codes, t.frames);
    auto it = names.find(t.ts.thread_id);
    if (it != names.end()) th.name = it->second;
    for (const auto& f : t.frames) th.frames.push_back(frame_of(codes, f.code, f.byte_offset));
    out->push_back(std::move(th));
  }
}

// dump: perf copies a running thread's stack every 4 ms of its CPU time (a quarter of this),
// for kNativeWaitUs before the stacks are merged. A ring holds ten copies and drops the
// newer ones when full: at every 0.25 ms, 30 ms filled it in 2.5 ms, and a busy thread's
// newest copy was always too old ("no native sample").
constexpr uint64_t kNativePeriodNs = 16 * 1000 * 1000;
constexpr useconds_t kNativeWaitUs = 30 * 1000;

SnapshotFrame native_frame(CodeCache& codes, const std::vector<RawFrame>& py, const MergedFrame& m) {
  if (m.python >= 0) return frame_of(codes, py[m.python].code, py[m.python].byte_offset);
  SnapshotFrame f{NativeStacks::frame_name(m), "", 0, 0, true};
  if (m.sym) {
    f.file = m.sym->file;
    f.line = m.sym->line;
  }
  return f;
}

// Each thread's frames replaced by its native stack merged with them; a thread whose
// stacks do not pair keeps its Python frames and says why.
void add_native(const PythonProcess& proc, const NativeOptions& options, ThreadReader& reader,
                std::vector<ThreadSample>& samples, CodeCache& codes, ProcessSnapshot* out) {
  NativeStacks native(proc.pid, options, kNativePeriodNs);
  std::vector<pid_t> tids;
  for (const auto& t : samples) tids.push_back(static_cast<pid_t>(t.ts.native_id));
  native.begin_tick(tids);
  if (!native.pausing()) {
    usleep(kNativeWaitUs);  // running threads: a few perf samples
    native.begin_tick(tids);
  }
  std::vector<MergedFrame> merged;
  NativeStats stats;
  for (size_t i = 0; i < samples.size(); ++i) {
    ThreadSample& t = samples[i];
    ThreadSnapshot& th = out->threads[i];
    if (!t.ts.native_id) {
      th.native_error = "no thread id";
      continue;
    }
    auto rewalk = [&] { reader.walk(&t); };
    if (!native.pausing()) rewalk();  // the Python frames as close to the native copy as can be
    if (!native.merge(static_cast<pid_t>(t.ts.native_id), t.frames, rewalk, &merged, &th.native_error, &stats)) continue;
    th.torn = t.status != WalkStatus::kOk;
    th.frames.clear();
    for (const auto& m : merged) th.frames.push_back(native_frame(codes, t.frames, m));
  }
  out->native_pauses = stats.pauses;
}

// A target killed during the dump reads as a process without threads (its memory goes
// before it is a zombie): give it up to 50 ms to show that it exited.
bool exited_meanwhile(pid_t pid) {
  for (int i = 0; i < 10 && process_exists(pid); ++i) usleep(5000);
  return !process_exists(pid);
}

}  // namespace

bool take_snapshot(pid_t pid, const SnapshotOptions& options, ProcessSnapshot* out, AttachError* err) {
  auto proc = attach_python(pid, err);
  if (!proc) return false;
  ThreadReader reader(*proc);
  CodeCache codes(*proc->memory, proc->layout, proc->code_type);
  std::vector<ThreadSample> samples;
  if (!read_stacks(reader, &samples)) {
    if (!process_exists(pid))
      *err = AttachError{AttachErrorKind::kNoSuchProcess, "no such process: " + std::to_string(pid)};
    else
      *err = AttachError{AttachErrorKind::kOther, "cannot read the interpreter state of process " + std::to_string(pid)};
    return false;
  }
  out->pid = pid;
  out->python_version = proc->version;
  out->command_line = proc->command_line;
  out->image_path = proc->image_path;
  out->has_tasks = options.async_tasks;
  if (options.async_tasks && reader.interpreter()) add_tasks(*proc, reader.interpreter(), samples, codes, &out->tasks);
  add_threads(*proc, samples, reader.interpreter(), codes, &out->threads);
  if (out->threads.empty() && exited_meanwhile(pid)) {
    *err = AttachError{AttachErrorKind::kNoSuchProcess,
                       "no such process: " + std::to_string(pid) + " (it exited during the dump)"};
    return false;
  }
  out->native = options.native.enabled;
  if (options.native.enabled) add_native(*proc, options.native, reader, samples, codes, out);
  return true;
}

}  // namespace pyprofd
