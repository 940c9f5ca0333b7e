#include "profiler/session.h"

#include <spdlog/spdlog.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <random>

#include "profiler/clock.h"
#include "profiler/process_tree.h"
#include "profiler/whole_file.h"

namespace pyprofd {

namespace {

constexpr int64_t kTreeScanNs = 100 * 1000 * 1000;   // look for new children 10 times a second
constexpr int64_t kStatusNs = 250 * 1000 * 1000;     // status line at most 4 times a second
constexpr int64_t kReviewOnCpuNs = 2000 * 1000 * 1000;
constexpr double kProcCheckNs = 7000;     // an idle process-tick checked through /proc
constexpr double kSwitchRecordNs = 1000;  // a context switch with switch records on, extra
constexpr int kMaxAttachAttempts = 50;               // a non-Python child is re-checked this often (exec)

}  // namespace

SamplingSession::SamplingSession(const SessionOptions& options, SampleSink* sink) : options_(options), sink_(sink) {}

bool SamplingSession::attach_root(pid_t pid, AttachError* err) {
  auto proc = attach_python(pid, err);
  if (!proc) return false;
  root_ = pid;
  tree_.insert(pid);
  adopt(std::make_unique<ProcessSampler>(std::move(proc), options_.sampling, sink_));
  return true;
}

void SamplingSession::adopt(std::unique_ptr<ProcessSampler> sampler) {
  pid_t pid = sampler->pid();
  sampler->set_on_cpu(&on_cpu_);
  if (interval_ns_) sampler->set_interval(interval_ns_);  // built with the rate at start
  summary_.pids.insert(pid);
  samplers_[pid] = std::move(sampler);
  std::lock_guard<std::mutex> lock(handoff_mu_);
  published_.insert(pid);
}

// cpu mode skips a process with no thread on a CPU. Knowing it from /proc costs ~7 us
// per idle process a tick (schedstat, syscall, fstat); context-switch records cost every
// context switch on the host ~1 us more (BENCHMARKS, sixth pass). Every 2 s the session
// compares the two at the host's switch rate and the skips it made, and uses the records
// while they are clearly cheaper: at host scale, not beside one busy service.
// PYPROFD_SWITCH_EVENTS=0 declines them, =1 takes them from the start.
void SamplingSession::review_on_cpu(int64_t now) {
  if (now < next_review_ns_) return;
  next_review_ns_ = now + kReviewOnCpuNs;
  if (!review_set_up_) {
    review_set_up_ = true;
    const char* env = std::getenv("PYPROFD_SWITCH_EVENTS");
    std::string want = env ? env : "";
    no_switch_events_ = options_.sampling.mode != ProfileMode::kCpu || options_.sampling.idle || want == "0";
    if (!no_switch_events_ && want == "1") {  // always (tests): no weighing
      open_on_cpu(0, 0);
      no_switch_events_ = true;
    }
  }
  // A CPU brought online since the rings were opened is not watched: open them all again.
  if (on_cpu_.is_open() && sysconf(_SC_NPROCESSORS_ONLN) > static_cast<long>(on_cpu_.cpus()) && on_cpu_.open())
    spdlog::info("cpu mode: on-CPU state from /proc again (context-switch records could not be reopened)");
  if (no_switch_events_) return;
  uint64_t switches = host_context_switches(), skips = summary_.stats.idle_skips;
  if (reviewed_ns_ > 0 && switches >= switches_ && skips >= skips_) {
    double secs = static_cast<double>(now - reviewed_ns_) / 1e9;
    double proc_cost = static_cast<double>(skips - skips_) / secs * kProcCheckNs;
    double record_cost = static_cast<double>(switches - switches_) / secs * kSwitchRecordNs;
    if (!on_cpu_.is_open() && proc_cost > 2 * record_cost) open_on_cpu(proc_cost, record_cost);
    if (on_cpu_.is_open() && proc_cost < record_cost) {
      on_cpu_.close();
      spdlog::info("cpu mode: on-CPU state from /proc again (est. {:.2f} ms/s, switch records {:.2f})", proc_cost / 1e6,
                   record_cost / 1e6);
    }
  }
  reviewed_ns_ = now;
  switches_ = switches;
  skips_ = skips;
}

void SamplingSession::open_on_cpu(double proc_cost, double record_cost) {
  int err = on_cpu_.open();
  if (err) {
    no_switch_events_ = true;  // not allowed here: /proc from now on
    summary_.switch_records_errno = err;
    spdlog::info("cpu mode: on-CPU state from /proc (context-switch events: {})", std::strerror(err));
    return;
  }
  spdlog::info("cpu mode: on-CPU state from context-switch records (est. /proc {:.2f} ms/s, records {:.2f})",
               proc_cost / 1e6, record_cost / 1e6);
}

// The host's context switches so far (/proc/stat ctxt), 0 if unreadable.
uint64_t SamplingSession::host_context_switches() {
  if (read_whole_file("/proc/stat", &stat_text_) != 0) return 0;
  size_t at = stat_text_.find("\nctxt ");
  return at == std::string::npos ? 0 : std::strtoull(stat_text_.c_str() + at + 6, nullptr, 10);
}

void SamplingSession::drop(pid_t pid) {
  auto it = samplers_.find(pid);
  if (it == samplers_.end()) return;
  retired_threads_ += it->second->threads_seen();
  samplers_.erase(it);
  std::lock_guard<std::mutex> lock(handoff_mu_);
  published_.erase(pid);
}

void SamplingSession::take_handed_over() {
  std::vector<std::unique_ptr<ProcessSampler>> ready;
  std::vector<pid_t> released;
  {
    std::lock_guard<std::mutex> lock(handoff_mu_);
    if (handed_over_.empty() && released_.empty()) return;
    ready.swap(handed_over_);
    released.swap(released_);
  }
  for (pid_t pid : released) drop(pid);
  for (auto& sampler : ready) adopt(std::move(sampler));
}

std::vector<pid_t> SamplingSession::release(pid_t pid) {
  // pid and its descendants in the followed tree (bounded: the tree holds each pid once).
  std::vector<pid_t> gone{pid};
  for (size_t i = 0; i < gone.size() && i < tree_.size() + 1; ++i) {
    std::vector<pid_t> kids;
    children_.children_of(gone[i], &kids);
    for (pid_t k : kids)
      if (tree_.count(k) && std::find(gone.begin(), gone.end(), k) == gone.end()) gone.push_back(k);
  }
  for (pid_t p : gone) {
    tree_.erase(p);
    children_.forget(p);
    attempts_.erase(p);
  }
  std::lock_guard<std::mutex> lock(handoff_mu_);
  for (pid_t p : gone) {
    published_.erase(p);
    released_.push_back(p);
    handed_over_.erase(std::remove_if(handed_over_.begin(), handed_over_.end(),
                                      [p](const auto& s) { return s->pid() == p; }),
                       handed_over_.end());
  }
  return gone;
}

bool SamplingSession::attach(pid_t pid, AttachError* err) {
  if (attach_root(pid, err)) return true;
  if (!(options_.subprocesses && err->kind == AttachErrorKind::kNotPython)) return false;
  follow_root(pid);
  return true;
}

void SamplingSession::add_target(std::unique_ptr<PythonProcess> proc) {
  pid_t pid = proc->pid;
  if (options_.subprocesses) tree_.insert(pid);
  attempts_.erase(pid);
  // Built here: its set-up reads /proc too, which the sampling thread should not wait on.
  auto sampler = std::make_unique<ProcessSampler>(std::move(proc), options_.sampling, sink_);
  if (!options_.attach_elsewhere) return adopt(std::move(sampler));
  std::lock_guard<std::mutex> lock(handoff_mu_);
  published_.insert(pid);
  handed_over_.push_back(std::move(sampler));
}

std::vector<pid_t> SamplingSession::sampled_pids() const {
  std::lock_guard<std::mutex> lock(handoff_mu_);
  return std::vector<pid_t>(published_.begin(), published_.end());
}

const PythonProcess* SamplingSession::process(pid_t pid) const {
  auto it = samplers_.find(pid);
  return it == samplers_.end() ? nullptr : &it->second->process();
}

bool SamplingSession::attach_launched(const volatile sig_atomic_t* stop, AttachError* err) {
  bool attached = false;
  while (!*stop && !(attached = attach_root(options_.launched, err))) {
    if (reap_launched()) break;
    if (err->kind == AttachErrorKind::kPermission || err->kind == AttachErrorKind::kUnsupportedVersion) break;
    usleep(500);
  }
  if (attached) return true;
  if (!options_.subprocesses) return false;
  follow_root(options_.launched);
  return true;
}

void SamplingSession::try_attach(pid_t pid) {
  int& attempts = attempts_[pid];
  if (attempts >= kMaxAttachAttempts) return;
  AttachError err;
  auto proc = attach_python(pid, &err);
  if (!proc) {
    // Not (yet) Python, e.g. a shell about to exec python, or a fork still setting up.
    ++attempts;
    if (err.kind == AttachErrorKind::kPermission || err.kind == AttachErrorKind::kUnsupportedVersion)
      attempts = kMaxAttachAttempts;
    return;
  }
  if (options_.on_attached) options_.on_attached(*proc);
  else spdlog::info("attached process {} (Python {}, {})", pid, proc->version, proc->image_path);
  add_target(std::move(proc));
}

bool SamplingSession::is_sampled(pid_t pid) const {
  if (!options_.attach_elsewhere) return samplers_.count(pid) > 0;
  std::lock_guard<std::mutex> lock(handoff_mu_);
  return published_.count(pid) > 0;
}

bool SamplingSession::scan_children() {
  const size_t before = samplers_.size();
  std::vector<pid_t> found;
  for (pid_t pid : tree_) children_.children_of(pid, &found);
  for (pid_t child : found) tree_.insert(child);
  for (auto it = tree_.begin(); it != tree_.end();) {
    pid_t pid = *it;
    if (!process_exists(pid)) {
      children_.forget(pid);
      if (!options_.attach_elsewhere) drop(pid);  // else the sampling thread finds it gone
      attempts_.erase(pid);
      it = tree_.erase(it);
      continue;
    }
    if (!is_sampled(pid)) try_attach(pid);
    ++it;
  }
  return samplers_.size() > before;
}

bool SamplingSession::reap_launched() {
  if (!options_.launched) return false;
  if (summary_.launched_status >= 0) return true;
  int status = 0;
  pid_t r = waitpid(options_.launched, &status, WNOHANG);
  if (r == options_.launched) {
    summary_.launched_status = status;
    return true;
  }
  return r < 0 && errno == ECHILD;
}

void SamplingSession::run(const volatile sig_atomic_t* stop, const std::function<void(const SessionSummary&)>& on_status) {
  int64_t period = static_cast<int64_t>(1e9 / options_.rate_hz);
  // The default 50 us timer slack would cap the rate of any sleeping loop near 20 kHz
  // and blur deadlines; ask for precise wake-ups.
  prctl(PR_SET_TIMERSLACK, 1UL, 0, 0, 0);
  const int64_t cpu_start = process_cpu_ns();
  const int64_t start = monotonic_ns();
  const int64_t end = options_.duration_s > 0 ? start + static_cast<int64_t>(options_.duration_s * 1e9) : INT64_MAX;
  // Tick k fires at a random point of the first half of its period: a fixed phase
  // locks onto targets whose own timers run at a multiple of the period (a worker
  // that computes 1 ms and sleeps 2 ms was seen at the same two instants of its
  // cycle every time). The weights are the real intervals, so totals stay right.
  std::minstd_rand rng(static_cast<uint32_t>(start));
  std::uniform_int_distribution<int64_t> jitter(0, period / 2);
  int64_t next = start;  // the period grid
  int64_t deadline = start;
  int64_t last_tick = start - period;  // the first sample stands for one period
  // The first tree scan right after the first tick (the root's sample is not delayed by
  // the children's attach); a tick that attached processes is followed at once by one
  // that samples them. With --pid MASTER of an idle master, a cpu-mode recording waited
  // 100 ms for its first sample (the workers').
  int64_t next_scan = start;
  int64_t next_status = start + kStatusNs;

  while (!*stop) {
    int64_t now = monotonic_ns();
    if (now < deadline) {
      timespec ts{static_cast<time_t>(deadline / 1000000000), static_cast<long>(deadline % 1000000000)};
      if (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, nullptr) == EINTR) continue;
      now = monotonic_ns();
    }
    if (now >= end) break;
    // A late tick is counted as missed, not made up in a burst.
    if (now - deadline >= period) {
      int64_t missed = (now - deadline) / period;
      summary_.missed_ticks += static_cast<uint64_t>(missed);
      next += missed * period;
    }
    next += period;
    deadline = next + jitter(rng);
    uint64_t wall = static_cast<uint64_t>(now - last_tick);
    last_tick = now;
    ++summary_.ticks;
    if (options_.on_tick) options_.on_tick();
    if (options_.attach_elsewhere) take_handed_over();
    if (new_rate_hz_ > 0) {  // set_rate from on_tick (the daemon's CPU budget): a new grid from now
      period = static_cast<int64_t>(1e9 / new_rate_hz_);
      jitter = std::uniform_int_distribution<int64_t>(0, period / 2);
      next = now + period;
      deadline = next + jitter(rng);
      new_rate_hz_ = 0;
      interval_ns_ = static_cast<uint64_t>(period);
      for (auto& [pid, s] : samplers_) s->set_interval(interval_ns_);
    }

    review_on_cpu(now);
    if (on_cpu_.is_open()) on_cpu_.drain(now);
    uint64_t before = summary_.stats.samples;
    for (auto it = samplers_.begin(); it != samplers_.end();) {
      if (it->second->sample(wall, &summary_.stats)) {
        ++it;
        continue;
      }
      // Unreadable: exited, or exec'd into something else; the tree scan may re-attach.
      spdlog::info("dropped process {}", it->first);
      pid_t gone = it->first;
      ++it;
      drop(gone);
    }

    if (summary_.first_sample_ns < 0 && summary_.stats.samples > before) summary_.first_sample_ns = monotonic_ns() - start;

    if (now >= next_scan) {
      next_scan = now + kTreeScanNs;
      if (options_.subprocesses && !options_.attach_elsewhere && scan_children()) deadline = monotonic_ns();
      if (reap_launched()) break;
      // The daemon's targets come and go; record ends with its last one.
      bool alone = !options_.keep_running && samplers_.empty();
      if (alone && !options_.subprocesses) {
        if (!process_exists(root_)) break;
        try_attach(root_);  // exec'd: try the new image
      }
      if (!options_.keep_running && options_.subprocesses && tree_.empty()) break;
    }
    if (on_status && now >= next_status) {
      next_status = now + kStatusNs;
      summary_.wall_ns = now - start;
      on_status(summary_);
    }
  }
  summary_.wall_ns = monotonic_ns() - start;
  summary_.own_cpu_ns = process_cpu_ns() - cpu_start;
  reap_launched();
  summary_.threads = retired_threads_;
  for (const auto& [pid, s] : samplers_) summary_.threads += s->threads_seen();
}

}  // namespace pyprofd
