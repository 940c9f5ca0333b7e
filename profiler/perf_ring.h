// A perf_event_open ring buffer mapped read-write: records are read between data_tail
// and data_head with no system call, and a record that wraps the ring's end is copied
// whole first.
#pragma once
#include <linux/perf_event.h>
#include <sys/types.h>

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <vector>

namespace pyprofd {

class PerfRing {
 public:
  PerfRing() = default;
  ~PerfRing() { close(); }
  PerfRing(PerfRing&& o) noexcept { *this = static_cast<PerfRing&&>(o); }
  PerfRing& operator=(PerfRing&& o) noexcept;
  PerfRing(const PerfRing&) = delete;
  PerfRing& operator=(const PerfRing&) = delete;

  // perf_event_open(attr, pid, cpu) and a mapping of data_pages (a power of two): 0, or
  // the errno (EACCES, EPERM: perf events are not allowed here).
  int open(perf_event_attr* attr, pid_t pid, int cpu, size_t data_pages);
  void close();
  int fd() const { return fd_; }

  // Calls fn(header, record bytes) for each record since the last call, oldest first,
  // then frees their space. A corrupt header drops what is left.
  template <class Fn>
  void consume(Fn fn) {
    uint64_t head = 0, tail = 0;
    if (!bounds(&head, &tail)) return;
    while (tail < head) {
      perf_event_header h;
      const uint8_t* rec = at(tail, sizeof h);
      std::memcpy(&h, rec, sizeof h);
      if (h.size < sizeof h || h.size > head - tail) break;
      fn(h, at(tail, h.size));
      tail += h.size;
    }
    release(head);
  }

 private:
  bool bounds(uint64_t* head, uint64_t* tail);
  const uint8_t* at(uint64_t pos, size_t len);  // len bytes at pos, copied when they wrap
  void release(uint64_t head);

  int fd_ = -1;
  uint8_t* base_ = nullptr;  // perf_event_mmap_page, then the data pages
  size_t size_ = 0;
  std::vector<uint8_t> scratch_;
};

}  // namespace pyprofd
