#include "profiler/native_stacks.h"

#include <errno.h>
#include <spdlog/spdlog.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>

#include "profiler/clock.h"
#include "profiler/proc_maps.h"

namespace pyprofd {

namespace {
constexpr int64_t kMapsRefreshNs = 1000 * 1000 * 1000;  // new libraries (dlopen) show within a second
constexpr int64_t kMapsRetryNs = 100 * 1000 * 1000;     // ... or at once when a stack runs into one

// A thread's CPU time runs slower than the clock when it shares a core: copies every
// quarter tick of CPU time keep one within two ticks of wall time at a 25 % share.
uint64_t perf_period(uint64_t tick_ns) { return std::max<uint64_t>(tick_ns / 4, 100 * 1000); }
}  // namespace

NativeStacks::NativeStacks(pid_t pid, const NativeOptions& options, uint64_t period_ns)
    : pid_(pid),
      options_(options),
      unwinder_(pid, "/proc/" + std::to_string(pid) + "/root"),
      perf_(perf_period(period_ns)),
      pausing_(options.pause == NativePause::kAlways) {
  refresh_maps();
}

NativeStacks::~NativeStacks() {
  for (auto& [tid, fd] : syscall_fds_)
    if (fd >= 0) close(fd);
}

void NativeStacks::refresh_maps() {
  maps_read_at_ = monotonic_ns();
  std::vector<MapEntry> maps;
  if (!read_maps(pid_, &maps, nullptr)) return;
  std::vector<NativeMapping> exec;
  for (const auto& m : maps)
    if (m.executable() && !m.deleted && !m.path.empty() && m.path[0] == '/')
      exec.push_back(NativeMapping{m.start, m.end, m.offset, m.path});
  SPDLOG_DEBUG("pid {}: {} executable file mappings", pid_, exec.size());
  unwinder_.set_mappings(exec);
}

void NativeStacks::set_tick(uint64_t period_ns) {
  if (perf_period(period_ns) != perf_.period_ns()) perf_.set_period(perf_period(period_ns));
}

void NativeStacks::begin_tick(const std::vector<pid_t>& tids) {
  if (monotonic_ns() - maps_read_at_ >= kMapsRefreshNs) refresh_maps();
  for (auto it = syscall_fds_.begin(); it != syscall_fds_.end();) {
    if (std::find(tids.begin(), tids.end(), it->first) != tids.end()) {
      ++it;
      continue;
    }
    if (it->second >= 0) close(it->second);
    it = syscall_fds_.erase(it);
  }
  if (pausing_) return;
  if (!perf_failed_) {
    for (pid_t tid : tids) {
      if (!tid || perf_.is_open(tid)) continue;
      int err = perf_.open(tid);
      if (err == 0 || err == ESRCH) continue;
      perf_failed_ = true;
      if (options_.pause == NativePause::kAuto) {
        pausing_ = true;
        spdlog::warn("pid {}: perf events are not allowed ({}): native stacks are read by stopping one thread "
                     "at a time (ptrace), for the shortest time; pauses are counted",
                     pid_, std::strerror(err));
        return;
      }
      spdlog::warn("pid {}: perf events are not allowed ({}) and --native-pause never: native stacks only of "
                   "threads blocked in the kernel",
                   pid_, std::strerror(err));
      break;
    }
  }
  perf_.retain_only(tids);
  perf_.drain();
}

// The freshest copy of tid: a thread blocked in the kernel is read through /proc (it
// cannot move until it wakes); a running one through its newest perf sample.
bool NativeStacks::capture(pid_t tid, const std::function<void()>& rewalk, NativeCapture** cap, std::string* why,
                           NativeStats* stats) {
  if (pausing_) {
    int err = 0;
    if (!pause_capture(pid_, tid, &scratch_, rewalk, &err)) {
      *why = std::string("could not stop the thread: ") + std::strerror(err);
      return false;
    }
    ++stats->pauses;
    *cap = &scratch_;
    return true;
  }
  // A copy at most one perf period of the thread's CPU time old: it has barely moved since
  // (a thread waiting for a CPU not at all). No /proc read for a running thread.
  const NativeCapture* c = perf_.latest(tid, perf_.period_ns());
  if (c) {
    *cap = const_cast<NativeCapture*>(c);
    return true;
  }
  auto fd = syscall_fds_.find(tid);
  if (fd == syscall_fds_.end()) fd = syscall_fds_.emplace(tid, open_syscall_file(pid_, tid)).first;
  if (capture_blocked(pid_, fd->second, &scratch_)) {
    *cap = &scratch_;
    return true;
  }
  // Else up to two periods; older it shows another moment.
  c = perf_.latest(tid, 2 * perf_.period_ns());
  if (!c) {
    *why = "no native sample";
    return false;
  }
  *cap = const_cast<NativeCapture*>(c);
  return true;
}

NativeUnwind NativeStacks::unwind(const NativeCapture& cap) {
  NativeUnwind w = unwinder_.unwind(cap.regs, cap.stack);
  frames_.clear();
  for (size_t i = 0; i < w.pcs.size(); ++i)
    frames_.push_back(NativeFrameRef{w.pcs[i], &unwinder_.symbolize(w.pcs[i], i == 0), w.sps[i]});
  return w;
}

bool NativeStacks::merge(pid_t tid, const std::vector<RawFrame>& python, const std::function<void()>& rewalk,
                         std::vector<MergedFrame>* out, std::string* why, NativeStats* stats) {
  NativeCapture* cap = nullptr;
  if (!capture(tid, rewalk, &cap, why, stats)) {
    ++stats->unavailable;
    return false;
  }
  NativeUnwind w = unwind(*cap);
  // An address in no known file: a library mapped since the maps were read (dlopen, or a
  // launched interpreter still starting). Read them again, at most ten times a second.
  bool unknown = false;
  for (const auto& f : frames_) unknown = unknown || f.sym->library.empty();
  if (unknown && monotonic_ns() - maps_read_at_ >= kMapsRetryNs) {
    refresh_maps();
    w = unwind(*cap);
  }
  if (frames_.empty()) {
    *why = "unwound nothing";
    ++stats->unavailable;
    return false;
  }
  if (!merge_native(python, frames_, w.complete, options_.all, out)) {
    *why = "torn (native and Python stacks disagree)";
    if (spdlog::should_log(spdlog::level::debug)) {
      std::string names;
      for (const auto& f : frames_) names += " " + frame_name(MergedFrame{-1, f.pc, f.sym});
      spdlog::debug("pid {} thread {}: native stack did not pair with {} Python frames ({} complete):{}", pid_, tid,
                    python.size(), w.complete, names);
    }
    ++stats->torn;
    return false;
  }
  ++stats->merged;
  return true;
}

std::string NativeStacks::frame_name(const MergedFrame& f) {
  static const char kHex[] = "0123456789abcdef";
  auto hex = [](uint64_t v) {
    std::string s;
    do {
      s.insert(s.begin(), kHex[v & 15]);
      v >>= 4;
    } while (v);
    return "0x" + s;
  };
  if (!f.sym || f.sym->library.empty()) return "[unknown]!" + hex(f.pc);
  if (f.sym->function.empty()) return f.sym->library + "+" + hex(f.sym->offset);
  return f.sym->library + "!" + f.sym->function;
}

}  // namespace pyprofd
