#include "profiler/perf_stacks.h"

#include <errno.h>
#include <linux/perf_event.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include <cstring>

namespace pyprofd {

namespace {

constexpr size_t kDataPages = 128;  // a power of two; holds ten samples of kNativeStackBytes
constexpr uint64_t kSampleType =
    PERF_SAMPLE_TID | PERF_SAMPLE_TIME | PERF_SAMPLE_READ | PERF_SAMPLE_REGS_USER | PERF_SAMPLE_STACK_USER;

// perf's x86-64 register numbers (asm/perf_regs.h) for each DWARF register.
constexpr int kPerfOfDwarf[kDwarfRegs] = {0 /*ax*/,  3 /*dx*/,  2 /*cx*/,  1 /*bx*/,  4 /*si*/,  5 /*di*/,
                                          6 /*bp*/,  7 /*sp*/,  16,        17,        18,        19,
                                          20,        21,        22,        23,        8 /*ip*/};
constexpr uint64_t regs_mask() {
  uint64_t m = 0;
  for (int p : kPerfOfDwarf) m |= 1ull << p;
  return m;
}
constexpr uint64_t kRegsMask = regs_mask();

}  // namespace

PerfStacks::~PerfStacks() = default;

int PerfStacks::open(pid_t tid) {
  perf_event_attr a{};
  a.size = sizeof a;
  a.type = PERF_TYPE_SOFTWARE;
  a.config = PERF_COUNT_SW_TASK_CLOCK;  // the thread's CPU time, in ns
  a.sample_period = period_ns_;
  a.sample_type = kSampleType;
  a.sample_regs_user = kRegsMask;
  a.sample_stack_user = kNativeStackBytes;
  a.use_clockid = 1;
  a.clockid = CLOCK_MONOTONIC;
  a.exclude_hv = 1;
  Ring r;
  int err = r.ring.open(&a, tid, -1, kDataPages);
  if (err) return err;
  rings_[tid] = std::move(r);
  return 0;
}

void PerfStacks::set_period(uint64_t period_ns) {
  period_ns_ = period_ns;
  for (auto& [tid, r] : rings_) {
    uint64_t p = period_ns;
    ioctl(r.ring.fd(), PERF_EVENT_IOC_PERIOD, &p);  // a failure keeps the old period: copies older or more often
  }
}

void PerfStacks::retain_only(const std::vector<pid_t>& live) {
  for (auto it = rings_.begin(); it != rings_.end();) {
    bool keep = false;
    for (pid_t t : live) keep = keep || t == it->first;
    if (keep) {
      ++it;
      continue;
    }
    it = rings_.erase(it);
  }
}

// Every sample is decoded (about one per tick); the newest that decodes is kept.
void PerfStacks::drain() {
  for (auto& entry : rings_) {
    Ring& r = entry.second;  // not a structured binding: C++17 lambdas cannot capture one
    r.ring.consume([&r, this](const perf_event_header& h, const uint8_t* rec) {
      if (h.type == PERF_RECORD_SAMPLE) r.has_last = parse_sample(rec, h.size, r) || r.has_last;
    });
  }
}

// header, pid/tid, time, the thread's CPU time (read), abi + regs, stack size + bytes +
// dyn_size (perf_event.h's order).
bool PerfStacks::parse_sample(const uint8_t* rec, size_t len, Ring& r) {
  size_t pos = sizeof(perf_event_header);
  auto take = [&](void* dst, size_t n) {
    if (pos + n > len) return false;
    std::memcpy(dst, rec + pos, n);
    pos += n;
    return true;
  };
  uint32_t ids[2];
  uint64_t time = 0, abi = 0;
  uint64_t cpu = 0;
  if (!take(ids, sizeof ids) || !take(&time, 8) || !take(&cpu, 8) || !take(&abi, 8) || abi == PERF_SAMPLE_REGS_ABI_NONE)
    return false;
  uint64_t perf_regs[24] = {};
  for (int i = 0; i < 24; ++i)
    if ((kRegsMask >> i) & 1)
      if (!take(&perf_regs[i], 8)) return false;
  uint64_t stack_size = 0;
  if (!take(&stack_size, 8) || stack_size > len - pos) return false;
  const uint8_t* stack = rec + pos;
  pos += stack_size;
  uint64_t dyn = 0;
  if (stack_size && !take(&dyn, 8)) return false;
  NativeCapture& c = r.last;
  for (int i = 0; i < kDwarfRegs; ++i) c.regs.r[i] = perf_regs[kPerfOfDwarf[i]];
  c.regs.known = (1u << kDwarfRegs) - 1;
  c.time_ns = static_cast<int64_t>(time);
  r.last_cpu_ns = cpu;
  c.stack.addr = c.regs.r[kDwarfSp];
  c.stack.bytes.assign(stack, stack + std::min(dyn, stack_size));
  return true;
}

const NativeCapture* PerfStacks::latest(pid_t tid, uint64_t max_cpu_ns) const {
  auto it = rings_.find(tid);
  if (it == rings_.end() || !it->second.has_last) return nullptr;
  // The thread's CPU time now against at the copy: a thread waiting for a CPU has not
  // moved, however old its copy.
  uint64_t now = 0;
  if (read(it->second.ring.fd(), &now, sizeof now) != sizeof now || now < it->second.last_cpu_ns) return nullptr;
  return now - it->second.last_cpu_ns <= max_cpu_ns ? &it->second.last : nullptr;
}

}  // namespace pyprofd
