// Many small remote reads merged into few: objects that lie close together (frame
// objects from one allocator pool, frames in an older stack chunk) are read as one
// span, so a 50-frame stack costs a handful of iovecs instead of fifty. The kernel's
// cost grows with iovecs and pages pinned, not with bytes copied.
#pragma once
#include <cstdint>
#include <vector>

#include "profiler/remote_memory.h"

namespace pyprofd {

class SpanBatch {
 public:
  static constexpr uint64_t kMaxGap = 512;         // bytes between objects still read as one span
  static constexpr uint64_t kMaxSpan = 64 * 1024;  // no span longer than this

  void clear() { items_.clear(); }
  // Item i (in the order added) is len bytes at addr.
  void add(uint64_t addr, size_t len) { items_.push_back(Item{addr, len, 0}); }
  size_t size() const { return items_.size(); }
  uint64_t addr(size_t i) const { return items_[i].addr; }

  // Appends one read per span to ops; the spans' buffers live here until the next plan().
  void plan(std::vector<ReadOp>* ops);
  // Item i's bytes after the caller's readv, or nullptr if its span was not read.
  const uint8_t* get(size_t i, const std::vector<ReadOp>& ops) const;
  // True if every span was read; the bytes of all spans (in plan order) after the readv.
  bool all_read(const std::vector<ReadOp>& ops) const;
  const std::vector<uint8_t>& bytes() const { return buf_; }
  // True if item i's span holds other items too (so it may read alone where the span failed).
  bool shares_span(size_t i) const { return spans_[items_[i].span].items > 1; }

 private:
  struct Item {
    uint64_t addr;
    size_t len;
    size_t span;
  };
  struct Span {
    uint64_t start;
    size_t len;
    size_t buf_offset;
    size_t op;
    size_t items;
  };
  std::vector<Item> items_;
  std::vector<Span> spans_;
  std::vector<size_t> order_;
  std::vector<uint8_t> buf_;
};

// Reads caller ops (each into its own dst) as merged spans in one readv, then copies each
// op's bytes out. A merged span that fails (a hole in the mapping) is retried op by op.
// Zero-length ops are ok; ops at address 0 or wrapping around are not read.
class MergedReads {
 public:
  void read(RemoteMemory& mem, std::vector<ReadOp>* ops);

 private:
  SpanBatch batch_;
  std::vector<size_t> batched_;  // batch item -> op index
  std::vector<ReadOp> spans_, retry_;
  std::vector<size_t> retry_index_;
};

}  // namespace pyprofd
