#include "profiler/span_batch.h"

#include <algorithm>

namespace pyprofd {

void SpanBatch::plan(std::vector<ReadOp>* ops) {
  spans_.clear();
  order_.resize(items_.size());
  for (size_t i = 0; i < order_.size(); ++i) order_[i] = i;
  std::sort(order_.begin(), order_.end(), [this](size_t a, size_t b) { return items_[a].addr < items_[b].addr; });
  size_t total = 0;
  for (size_t i : order_) {
    Item& it = items_[i];
    uint64_t end = it.addr + it.len;
    if (!spans_.empty()) {
      Span& s = spans_.back();
      uint64_t s_end = s.start + s.len;
      if (it.addr <= s_end + kMaxGap && end - s.start <= kMaxSpan) {
        if (end > s_end) {
          total += end - s_end;
          s.len = end - s.start;
        }
        it.span = spans_.size() - 1;
        continue;
      }
    }
    spans_.push_back(Span{it.addr, it.len, total, 0});
    total += it.len;
    it.span = spans_.size() - 1;
  }
  buf_.resize(total);
  for (auto& s : spans_) {
    s.op = ops->size();
    ops->push_back(ReadOp{s.start, buf_.data() + s.buf_offset, s.len});
  }
}

const uint8_t* SpanBatch::get(size_t i, const std::vector<ReadOp>& ops) const {
  if (i >= items_.size() || items_[i].span >= spans_.size()) return nullptr;
  const Span& s = spans_[items_[i].span];
  if (s.op >= ops.size() || !ops[s.op].ok) return nullptr;
  return buf_.data() + s.buf_offset + (items_[i].addr - s.start);
}

}  // namespace pyprofd
