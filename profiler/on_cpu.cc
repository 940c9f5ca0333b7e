#include "profiler/on_cpu.h"

#include <errno.h>
#include <sched.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>

namespace pyprofd {

namespace {

constexpr size_t kDataPages = 128;  // 512 KiB per CPU: ~16 K switches between two reads
constexpr uint64_t kSampleType = PERF_SAMPLE_TID | PERF_SAMPLE_TIME;

perf_event_attr switch_attr() {
  perf_event_attr a{};
  a.size = sizeof a;
  a.type = PERF_TYPE_SOFTWARE;
  a.config = PERF_COUNT_SW_DUMMY;  // no samples: only the side-band switch records
  a.context_switch = 1;
  a.sample_id_all = 1;  // each record ends with the sample_type fields: pid/tid, time
  a.sample_type = kSampleType;
  a.use_clockid = 1;
  a.clockid = CLOCK_MONOTONIC;
  return a;
}

}  // namespace

int OnCpu::open() {
  close();
  const long n = sysconf(_SC_NPROCESSORS_CONF);
  if (n <= 0) return ENODEV;
  for (long cpu = 0; cpu < n && cpu < CPU_SETSIZE; ++cpu) {
    perf_event_attr a = switch_attr();
    PerfRing r;
    int err = r.open(&a, -1, static_cast<int>(cpu), kDataPages);
    if (err == ENODEV) continue;  // offline
    if (err) {
      close();
      return err;
    }
    rings_.push_back(std::move(r));
    ring_cpu_.push_back(static_cast<uint32_t>(cpu));
  }
  current_.assign(static_cast<size_t>(n), Task{});
  batch_.reserve(4096);
  preempted_.reserve(64);
  if (rings_.empty()) return ENODEV;
  // On a thread of its own: on a busy machine a visit waits for each CPU (a first
  // sample was 25 ms late when the sampling thread made it).
  visitor_ = std::thread(visit_every_cpu, ring_cpu_);
  return 0;
}

void OnCpu::close() {
  if (visitor_.joinable()) visitor_.join();
  rings_.clear();
  ring_cpu_.clear();
  current_.clear();
  preempted_.clear();
  distrust_until_ns_ = 0;
}

// A CPU idle since before open() has no switch to tell what runs there: run on each
// once (leaving it switches it). The visiting thread then ends.
void OnCpu::visit_every_cpu(std::vector<uint32_t> cpus) {
  for (uint32_t cpu : cpus) {
    cpu_set_t one;
    CPU_ZERO(&one);
    CPU_SET(cpu, &one);
    sched_setaffinity(0, sizeof one, &one);  // refused (a cpuset): that CPU is known at its next switch
  }
}

void OnCpu::drain(int64_t now_ns) {
  now_ns_ = now_ns;
  batch_.clear();
  lost_ = false;
  for (size_t i = 0; i < rings_.size(); ++i)
    rings_[i].consume([&](const perf_event_header& h, const uint8_t* rec) { collect(ring_cpu_[i], h, rec); });
  // Each ring is in time order; a thread preempted on one CPU and resumed on another
  // must be resumed after it was preempted.
  std::sort(batch_.begin(), batch_.end(), [](const Switch& a, const Switch& b) { return a.time < b.time; });
  for (const Switch& s : batch_) apply(s);
  if (lost_ || preempted_.size() > kMaxPreempted) {
    preempted_.clear();  // what is runnable now is known again once each thread switched
    distrust_until_ns_ = now_ns + kDistrustNs;
  }
}

// PERF_RECORD_SWITCH_CPU_WIDE: next_prev pid/tid, then sample_id (pid, tid, time). A
// switch-out names the thread leaving (sample_id), whether it is still runnable, and the
// one coming (next_prev); a switch-in names the thread coming (sample_id). Both are
// kept: this kernel (6.18) writes no switch-out for the idle task leaving a CPU.
void OnCpu::collect(uint32_t cpu, const perf_event_header& h, const uint8_t* rec) {
  if (h.type == PERF_RECORD_LOST) {
    lost_ = true;
    return;
  }
  uint32_t f[4];
  uint64_t time = 0;
  if (h.type != PERF_RECORD_SWITCH_CPU_WIDE || h.size < sizeof h + sizeof f + sizeof time) return;
  std::memcpy(f, rec + sizeof h, sizeof f);
  std::memcpy(&time, rec + sizeof h + sizeof f, sizeof time);
  const bool out = h.misc & PERF_RECORD_MISC_SWITCH_OUT;
  Switch s{time, cpu, -1, -1, static_cast<pid_t>(f[2]), static_cast<pid_t>(f[3]), false};
  if (out)
    s = Switch{time, cpu, static_cast<pid_t>(f[2]), static_cast<pid_t>(f[3]), static_cast<pid_t>(f[0]),
               static_cast<pid_t>(f[1]), (h.misc & PERF_RECORD_MISC_SWITCH_OUT_PREEMPT) != 0};
  batch_.push_back(s);
}

void OnCpu::apply(const Switch& s) {
  if (s.cpu >= current_.size()) return;
  current_[s.cpu] = Task{s.in_pid, s.in_tid};
  forget_preempted(s.in_tid);
  if (s.out_tid < 0) return;
  forget_preempted(s.out_tid);
  if (s.preempted && s.out_tid > 0) preempted_.emplace_back(s.out_tid, s.out_pid);
}

void OnCpu::forget_preempted(pid_t tid) {
  for (size_t i = 0; i < preempted_.size(); ++i)
    if (preempted_[i].first == tid) {
      preempted_[i] = preempted_.back();
      preempted_.pop_back();
      return;
    }
}

OnCpu::State OnCpu::state(pid_t pid) const {
  if (rings_.empty() || now_ns_ < distrust_until_ns_) return State::kUnknown;
  for (uint32_t cpu : ring_cpu_)
    if (current_[cpu].tid < 0) return State::kUnknown;
  for (uint32_t cpu : ring_cpu_)
    if (current_[cpu].pid == pid) return State::kBusy;
  for (const auto& p : preempted_)
    if (p.second == pid) return State::kBusy;
  return State::kIdle;
}

}  // namespace pyprofd
