#include "profiler/span_batch.h"

#include <algorithm>
#include <cstring>

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
        ++s.items;
        continue;
      }
    }
    spans_.push_back(Span{it.addr, it.len, total, 0, 1});
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

bool SpanBatch::all_read(const std::vector<ReadOp>& ops) const {
  for (const Span& s : spans_)
    if (s.op >= ops.size() || !ops[s.op].ok) return false;
  return true;
}

void MergedReads::read(RemoteMemory& mem, std::vector<ReadOp>* ops) {
  if (ops->empty()) return;
  batch_.clear();
  batched_.clear();
  for (size_t i = 0; i < ops->size(); ++i) {
    ReadOp& op = (*ops)[i];
    op.ok = op.len == 0;
    if (op.len == 0 || op.addr == 0 || op.addr + op.len <= op.addr) continue;
    batch_.add(op.addr, op.len);
    batched_.push_back(i);
  }
  spans_.clear();
  batch_.plan(&spans_);
  mem.readv(spans_.data(), spans_.size());
  retry_.clear();
  retry_index_.clear();
  for (size_t k = 0; k < batched_.size(); ++k) {
    ReadOp& op = (*ops)[batched_[k]];
    if (const uint8_t* p = batch_.get(k, spans_)) {
      std::memcpy(op.dst, p, op.len);
      op.ok = true;
    } else if (batch_.shares_span(k)) {
      retry_.push_back(op);
      retry_index_.push_back(batched_[k]);
    }
  }
  if (retry_.empty()) return;
  mem.readv(retry_.data(), retry_.size());
  for (size_t k = 0; k < retry_.size(); ++k) (*ops)[retry_index_[k]].ok = retry_[k].ok;
}

}  // namespace pyprofd
