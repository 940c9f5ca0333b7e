// One interface for reading another process's memory: a live backend
// (process_vm_readv, never pausing the target) and a snapshot backend (recorded
// ranges) so decoders can be unit-tested and fuzzed without a process.
#pragma once
#include <sys/types.h>
#include <sys/uio.h>

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <map>
#include <string>
#include <vector>

namespace pyprofd {

struct ReadOp {
  uint64_t addr = 0;
  void* dst = nullptr;
  size_t len = 0;
  bool ok = false;  // set by readv
};

// A field of type T at byte offset off of a local copy of a remote struct. memcpy:
// remote bytes carry no alignment or aliasing guarantees.
template <class T>
T field(const uint8_t* buf, uint32_t off) {
  T v;
  std::memcpy(&v, buf + off, sizeof v);
  return v;
}

class RemoteMemory {
 public:
  virtual ~RemoteMemory() = default;
  // Reads exactly len bytes at addr into dst. False on any failure (a partial read is a failure).
  virtual bool read(uint64_t addr, void* dst, size_t len) = 0;
  // Reads many ranges, in as few calls as the backend can; sets each op's ok. Returns how many are ok.
  virtual size_t readv(ReadOp* ops, size_t n);
  // Number of system calls made (live backend); for benchmarks and tests.
  virtual uint64_t calls() const { return 0; }

  template <class T>
  bool read_value(uint64_t addr, T* out) { return read(addr, out, sizeof(T)); }
};

// Reads a live process with process_vm_readv.
class LiveMemory : public RemoteMemory {
 public:
  explicit LiveMemory(pid_t pid) : pid_(pid) {}
  bool read(uint64_t addr, void* dst, size_t len) override;
  size_t readv(ReadOp* ops, size_t n) override;
  uint64_t calls() const override { return calls_; }
  pid_t pid() const { return pid_; }
  // errno of the last failed call (EPERM/ESRCH/EFAULT), 0 if none failed.
  int last_errno() const { return last_errno_; }

 private:
  pid_t pid_;
  uint64_t calls_ = 0;
  int last_errno_ = 0;
  std::vector<struct iovec> local_, remote_;  // reused: no allocation per call
  std::vector<size_t> index_;
};

// A recorded set of memory ranges. Reads must fall entirely inside one range.
class SnapshotMemory : public RemoteMemory {
 public:
  void add(uint64_t addr, const void* data, size_t len);
  void add(uint64_t addr, const std::vector<uint8_t>& bytes) { add(addr, bytes.data(), bytes.size()); }
  bool read(uint64_t addr, void* dst, size_t len) override;
  // Records every range read through `source` (for capturing snapshots of a live process).
  size_t range_count() const { return ranges_.size(); }
  // Simple binary file format: repeated {u64 addr, u64 len, bytes}.
  bool save(const std::string& path) const;
  bool load(const std::string& path);

 private:
  std::map<uint64_t, std::vector<uint8_t>> ranges_;
};

}  // namespace pyprofd
