#include "profiler/snapshot.h"

#include "profiler/asyncio_tasks.h"
#include "profiler/code_cache.h"
#include "profiler/proc_stat.h"
#include "profiler/thread_names.h"
#include "profiler/thread_reader.h"

namespace pyprofd {

namespace {

constexpr int kAttempts = 5;

// A stack can change under us; a few tries give a consistent one. False if not even
// one inconsistent read came back.
bool read_stacks(ThreadReader& reader, std::vector<ThreadSample>* samples) {
  bool ok = false;
  for (int attempt = 0; attempt < kAttempts && !ok; ++attempt) {
    if (!reader.sample(samples, true)) continue;
    ok = true;
    for (const auto& t : *samples) ok &= t.status == WalkStatus::kOk;
  }
  return ok || !samples->empty();
}

SnapshotFrame frame_of(CodeCache& codes, uint64_t code_addr, int32_t offset) {
  CodeInfo* code = codes.get(code_addr);
  if (!code) return SnapshotFrame{"<unknown>", "<unknown>", 0, 0};
  return SnapshotFrame{code->qualname, code->file, code->line(offset), code->first_line};
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

void add_tasks(const PythonProcess& proc, uint64_t interp, CodeCache& codes, std::vector<TaskSnapshot>* out) {
  AsyncioReader asyncio(*proc.memory, proc.layout, interp);
  std::vector<TaskInfo> infos;
  asyncio.read_tasks(&infos);
  for (const auto& ti : infos) {
    TaskSnapshot t;
    t.name = ti.name;
    t.state = state_name(ti);
    t.running = ti.running;
    t.awaiting = ti.awaiting;
    for (const auto& f : ti.chain) t.frames.push_back(frame_of(codes, f.code, f.byte_offset));
    out->push_back(std::move(t));
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
    auto it = names.find(t.ts.thread_id);
    if (it != names.end()) th.name = it->second;
    for (const auto& f : t.frames) th.frames.push_back(frame_of(codes, f.code, f.byte_offset));
    out->push_back(std::move(th));
  }
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
  if (options.async_tasks && reader.interpreter()) add_tasks(*proc, reader.interpreter(), codes, &out->tasks);
  add_threads(*proc, samples, reader.interpreter(), codes, &out->threads);
  return true;
}

}  // namespace pyprofd
