#include "profiler/perf_ring.h"

#include <errno.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cstring>

namespace pyprofd {

PerfRing& PerfRing::operator=(PerfRing&& o) noexcept {
  if (this == &o) return *this;
  close();
  fd_ = o.fd_;
  base_ = o.base_;
  size_ = o.size_;
  o.fd_ = -1;
  o.base_ = nullptr;
  return *this;
}

int PerfRing::open(perf_event_attr* attr, pid_t pid, int cpu, size_t data_pages) {
  close();
  int fd = static_cast<int>(syscall(SYS_perf_event_open, attr, pid, cpu, -1, PERF_FLAG_FD_CLOEXEC));
  if (fd < 0) return errno;
  size_t size = (1 + data_pages) * static_cast<size_t>(sysconf(_SC_PAGESIZE));
  void* base = mmap(nullptr, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
  if (base == MAP_FAILED) {
    int e = errno;
    ::close(fd);
    return e;
  }
  fd_ = fd;
  base_ = static_cast<uint8_t*>(base);
  size_ = size;
  return 0;
}

void PerfRing::close() {
  if (base_) munmap(base_, size_);
  if (fd_ >= 0) ::close(fd_);
  base_ = nullptr;
  fd_ = -1;
}

bool PerfRing::bounds(uint64_t* head, uint64_t* tail) {
  if (!base_) return false;
  auto* page = reinterpret_cast<perf_event_mmap_page*>(base_);
  *head = __atomic_load_n(&page->data_head, __ATOMIC_ACQUIRE);
  *tail = page->data_tail;
  if (!page->data_size || *head - *tail > page->data_size) {  // a corrupt header: start over
    release(*head);
    return false;
  }
  return true;
}

const uint8_t* PerfRing::at(uint64_t pos, size_t len) {
  auto* page = reinterpret_cast<perf_event_mmap_page*>(base_);
  const uint8_t* data = base_ + page->data_offset;
  const uint64_t size = page->data_size, off = pos % size;
  if (off + len <= size) return data + off;
  scratch_.resize(len);
  std::memcpy(scratch_.data(), data + off, size - off);
  std::memcpy(scratch_.data() + (size - off), data, len - (size - off));
  return scratch_.data();
}

void PerfRing::release(uint64_t head) {
  auto* page = reinterpret_cast<perf_event_mmap_page*>(base_);
  __atomic_store_n(&page->data_tail, head, __ATOMIC_RELEASE);
}

}  // namespace pyprofd
