#include "profiler/perf_stacks.h"

#include <errno.h>
#include <linux/perf_event.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/syscall.h>
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

long perf_event_open(perf_event_attr* attr, pid_t pid, int cpu, int group, unsigned long flags) {
  return syscall(SYS_perf_event_open, attr, pid, cpu, group, flags);
}

}  // namespace

PerfStacks::~PerfStacks() {
  for (auto& [tid, r] : rings_) close_ring(r);
}

void PerfStacks::close_ring(Ring& r) {
  if (r.base) munmap(r.base, r.size);
  if (r.fd >= 0) close(r.fd);
  r.base = nullptr;
  r.fd = -1;
}

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
  int fd = static_cast<int>(perf_event_open(&a, tid, -1, -1, PERF_FLAG_FD_CLOEXEC));
  if (fd < 0) return errno;
  Ring r;
  r.fd = fd;
  r.size = (1 + kDataPages) * static_cast<size_t>(sysconf(_SC_PAGESIZE));
  void* base = mmap(nullptr, r.size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
  if (base == MAP_FAILED) {
    int e = errno;
    close(fd);
    return e;
  }
  r.base = static_cast<uint8_t*>(base);
  rings_[tid] = std::move(r);
  return 0;
}

void PerfStacks::set_period(uint64_t period_ns) {
  period_ns_ = period_ns;
  for (auto& [tid, r] : rings_) {
    uint64_t p = period_ns;
    ioctl(r.fd, PERF_EVENT_IOC_PERIOD, &p);  // a failure keeps the old period: copies older or more often
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
    close_ring(it->second);
    it = rings_.erase(it);
  }
}

void PerfStacks::drain() {
  for (auto& [tid, r] : rings_) drain(r);
}

// Walks the records between tail and head; only the newest sample is decoded.
void PerfStacks::drain(Ring& r) {
  auto* page = reinterpret_cast<perf_event_mmap_page*>(r.base);
  const uint64_t head = __atomic_load_n(&page->data_head, __ATOMIC_ACQUIRE);
  uint64_t tail = page->data_tail;
  const uint8_t* data = r.base + page->data_offset;
  const uint64_t size = page->data_size;
  if (!size || head - tail > size) {  // a corrupt header: start over
    __atomic_store_n(&page->data_tail, head, __ATOMIC_RELEASE);
    return;
  }
  uint64_t newest = UINT64_MAX, newest_len = 0;
  while (tail < head) {
    perf_event_header h;
    for (size_t i = 0; i < sizeof h; ++i) reinterpret_cast<uint8_t*>(&h)[i] = data[(tail + i) % size];
    if (h.size < sizeof h || h.size > head - tail) break;
    if (h.type == PERF_RECORD_SAMPLE) {
      newest = tail;
      newest_len = h.size;
    }
    tail += h.size;
  }
  if (newest != UINT64_MAX) {
    const uint64_t off = newest % size;
    const uint8_t* rec = data + off;
    if (off + newest_len > size) {  // wraps: copy it straight
      scratch_.resize(newest_len);
      std::memcpy(scratch_.data(), data + off, size - off);
      std::memcpy(scratch_.data() + (size - off), data, newest_len - (size - off));
      rec = scratch_.data();
    }
    r.has_last = parse_sample(rec, newest_len, r) || r.has_last;
  }
  __atomic_store_n(&page->data_tail, head, __ATOMIC_RELEASE);
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
  if (read(it->second.fd, &now, sizeof now) != sizeof now || now < it->second.last_cpu_ns) return nullptr;
  return now - it->second.last_cpu_ns <= max_cpu_ns ? &it->second.last : nullptr;
}

}  // namespace pyprofd
