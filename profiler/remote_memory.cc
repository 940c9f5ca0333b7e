#include "profiler/remote_memory.h"

#include <sys/uio.h>

#include <cerrno>
#include <cstring>
#include <fstream>

namespace pyprofd {

size_t RemoteMemory::readv(ReadOp* ops, size_t n) {
  size_t ok = 0;
  for (size_t i = 0; i < n; ++i) {
    ops[i].ok = read(ops[i].addr, ops[i].dst, ops[i].len);
    ok += ops[i].ok;
  }
  return ok;
}

bool LiveMemory::read(uint64_t addr, void* dst, size_t len) {
  if (len == 0) return true;
  if (addr == 0) return false;
  iovec local{dst, len};
  iovec remote{reinterpret_cast<void*>(addr), len};
  ++calls_;
  ssize_t got = process_vm_readv(pid_, &local, 1, &remote, 1, 0);
  if (got < 0) last_errno_ = errno;
  return got == static_cast<ssize_t>(len);
}

// The kernel copies the iovecs in order and stops at the first remote range it cannot
// read, so after a short read we keep the completed ops and restart after the failing one.
size_t LiveMemory::readv(ReadOp* ops, size_t n) {
  constexpr size_t kBatch = 1024;  // IOV_MAX: the most iovecs one call takes
  local_.resize(kBatch);
  remote_.resize(kBatch);
  index_.resize(kBatch);
  iovec* local = local_.data();
  iovec* remote = remote_.data();
  size_t* index = index_.data();
  size_t ok = 0;
  size_t i = 0;
  while (i < n) {
    size_t batch = 0;
    size_t j = i;
    for (; j < n && batch < kBatch; ++j) {
      ops[j].ok = ops[j].len == 0;
      if (ops[j].len == 0) { ++ok; continue; }
      if (ops[j].addr == 0) continue;
      index[batch] = j;
      local[batch] = {ops[j].dst, ops[j].len};
      remote[batch] = {reinterpret_cast<void*>(ops[j].addr), ops[j].len};
      ++batch;
    }
    i = j;
    if (batch == 0) continue;
    ++calls_;
    ssize_t got = process_vm_readv(pid_, local, batch, remote, batch, 0);
    if (got < 0) {
      last_errno_ = errno;
      got = 0;
    }
    size_t done = 0;
    size_t k = 0;
    for (; k < batch && done + local[k].iov_len <= static_cast<size_t>(got); ++k) {
      done += local[k].iov_len;
      ops[index[k]].ok = true;
      ++ok;
    }
    if (k < batch) i = index[k] + 1;
  }
  return ok;
}

void SnapshotMemory::add(uint64_t addr, const void* data, size_t len) {
  auto* p = static_cast<const uint8_t*>(data);
  ranges_[addr] = std::vector<uint8_t>(p, p + len);
}

bool SnapshotMemory::read(uint64_t addr, void* dst, size_t len) {
  if (len == 0) return true;
  auto it = ranges_.upper_bound(addr);
  if (it == ranges_.begin()) return false;
  --it;
  uint64_t start = it->first;
  const auto& bytes = it->second;
  if (addr - start > bytes.size() || bytes.size() - (addr - start) < len) return false;
  std::memcpy(dst, bytes.data() + (addr - start), len);
  return true;
}

bool SnapshotMemory::save(const std::string& path) const {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  for (const auto& [addr, bytes] : ranges_) {
    uint64_t hdr[2] = {addr, bytes.size()};
    out.write(reinterpret_cast<const char*>(hdr), sizeof hdr);
    out.write(reinterpret_cast<const char*>(bytes.data()), static_cast<std::streamsize>(bytes.size()));
  }
  return static_cast<bool>(out);
}

bool SnapshotMemory::load(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return false;
  ranges_.clear();
  uint64_t hdr[2];
  while (in.read(reinterpret_cast<char*>(hdr), sizeof hdr)) {
    if (hdr[1] > (1u << 30)) return false;  // a corrupt length, not a real range
    std::vector<uint8_t> bytes(hdr[1]);
    if (!in.read(reinterpret_cast<char*>(bytes.data()), static_cast<std::streamsize>(bytes.size()))) return false;
    ranges_[hdr[0]] = std::move(bytes);
  }
  return true;
}

}  // namespace pyprofd
