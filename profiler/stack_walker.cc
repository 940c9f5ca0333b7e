#include "profiler/stack_walker.h"

#include <cstring>

namespace pyprofd {

namespace {

template <class T>
T field(const uint8_t* buf, uint32_t off) {
  T v;
  std::memcpy(&v, buf + off, sizeof v);
  return v;
}

constexpr size_t kMaxChunkRead = 1 << 20;  // a stack chunk larger than this is not trusted
constexpr size_t kMaxSpeculation = 256;    // frame addresses re-read speculatively (<=3.10)

}  // namespace

StackWalker::StackWalker(RemoteMemory& mem, const Layout& layout)
    : mem_(mem), l_(layout), ts_buf_(layout.ts_size), one_frame_(layout.fr_size) {
  chunk_buf_.reserve(64 * 1024);
}

bool StackWalker::read_thread(uint64_t addr, ThreadState* out) {
  if (addr == 0 || !mem_.read(addr, ts_buf_.data(), ts_buf_.size())) return false;
  const uint8_t* b = ts_buf_.data();
  out->addr = addr;
  out->next = field<uint64_t>(b, l_.ts_next);
  out->thread_id = field<uint64_t>(b, l_.ts_thread_id);
  out->native_id = l_.ts_native_thread_id ? field<uint64_t>(b, l_.ts_native_thread_id) : 0;
  out->top_frame = field<uint64_t>(b, l_.ts_frame);
  if (l_.ts_datastack_chunk) {
    out->chunk = field<uint64_t>(b, l_.ts_datastack_chunk);
    // datastack_top follows datastack_chunk in 3.11–3.13.
    out->chunk_top = field<uint64_t>(b, l_.ts_datastack_chunk + 8);
  }
  if ((l_.minor == 11 || l_.minor == 12) && out->top_frame) {
    // 3.11/3.12: tstate->cframe (on the thread's C stack) -> current_frame.
    uint64_t current = 0;
    if (!mem_.read(out->top_frame + l_.cframe_current_frame, &current, sizeof current)) current = 0;
    out->top_frame = current;
  }
  return true;
}

WalkStatus StackWalker::walk(const ThreadState& ts, std::vector<RawFrame>* frames) {
  frames->clear();
  if (l_.minor >= 11) return walk_interpreter_frames(ts, frames);
  return walk_frame_objects(ts, frames);
}

void StackWalker::retain_only(const std::vector<uint64_t>& live) {
  for (auto it = last_frames_.begin(); it != last_frames_.end();) {
    bool keep = false;
    for (uint64_t a : live) keep |= a == it->first;
    it = keep ? std::next(it) : last_frames_.erase(it);
  }
}

// 3.8–3.10: PyFrameObject chain. One readv fetches the top frame plus every frame the
// previous walk saw; frames the chain reaches that were not in the batch are read singly.
WalkStatus StackWalker::walk_frame_objects(const ThreadState& ts, std::vector<RawFrame>* frames) {
  if (ts.top_frame == 0) return WalkStatus::kOk;
  auto& last = last_frames_[ts.addr];
  batch_addrs_.clear();
  batch_addrs_.push_back(ts.top_frame);
  for (uint64_t a : last) {
    if (batch_addrs_.size() >= kMaxSpeculation) break;
    if (a != ts.top_frame) batch_addrs_.push_back(a);
  }
  const size_t fs = l_.fr_size;
  batch_buf_.resize(batch_addrs_.size() * fs);
  ops_.clear();
  for (size_t i = 0; i < batch_addrs_.size(); ++i) ops_.push_back(ReadOp{batch_addrs_[i], &batch_buf_[i * fs], fs});
  mem_.readv(ops_.data(), ops_.size());
  if (!ops_[0].ok) return WalkStatus::kReadError;

  last.clear();
  uint64_t addr = ts.top_frame;
  size_t pos = 0;  // index in batch of addr, if it is there
  bool in_batch = true;
  while (addr != 0) {
    if (frames->size() >= kMaxDepth) return WalkStatus::kTorn;
    const uint8_t* f = nullptr;
    if (in_batch && ops_[pos].ok) {
      f = &batch_buf_[pos * fs];
    } else {
      if (!mem_.read(addr, one_frame_.data(), fs)) return WalkStatus::kTorn;
      f = one_frame_.data();
    }
    uint64_t code = field<uint64_t>(f, l_.fr_code);
    int32_t lasti = field<int32_t>(f, l_.fr_lasti);
    uint64_t back = field<uint64_t>(f, l_.fr_back);
    if (code == 0 || back == addr) return WalkStatus::kTorn;
    int32_t offset = lasti < 0 ? -1 : (l_.minor >= 10 ? lasti * 2 : lasti);
    frames->push_back(RawFrame{code, offset, addr});
    last.push_back(addr);
    addr = back;
    // Usually the next frame is the next batch entry; otherwise search forward.
    in_batch = false;
    for (size_t j = pos + 1; j < batch_addrs_.size() && addr; ++j) {
      if (batch_addrs_[j] == addr) {
        pos = j;
        in_batch = true;
        break;
      }
    }
  }
  return WalkStatus::kOk;
}

const uint8_t* StackWalker::frame_bytes(uint64_t addr) {
  if (addr >= chunk_base_ && addr - chunk_base_ <= chunk_len_ && chunk_len_ - (addr - chunk_base_) >= l_.fr_size)
    return chunk_buf_.data() + (addr - chunk_base_);
  if (!mem_.read(addr, one_frame_.data(), one_frame_.size())) return nullptr;
  return one_frame_.data();
}

// 3.11+: _PyInterpreterFrame chain through `previous`. The used part of the current
// chunk is copied in one read; generator frames and older chunks are read singly.
WalkStatus StackWalker::walk_interpreter_frames(const ThreadState& ts, std::vector<RawFrame>* frames) {
  chunk_base_ = 0;
  chunk_len_ = 0;
  if (ts.top_frame == 0) return WalkStatus::kOk;
  if (ts.chunk && ts.chunk_top > ts.chunk && ts.chunk_top - ts.chunk <= kMaxChunkRead) {
    size_t len = ts.chunk_top - ts.chunk;
    chunk_buf_.resize(len);
    if (mem_.read(ts.chunk, chunk_buf_.data(), len)) {
      chunk_base_ = ts.chunk;
      chunk_len_ = len;
    }
  }

  uint64_t addr = ts.top_frame;
  while (addr != 0) {
    if (frames->size() >= kMaxDepth) return WalkStatus::kTorn;
    const uint8_t* f = frame_bytes(addr);
    if (!f) return frames->empty() ? WalkStatus::kReadError : WalkStatus::kTorn;
    uint64_t code = field<uint64_t>(f, l_.fr_code);
    uint64_t back = field<uint64_t>(f, l_.fr_back);
    uint64_t instr = field<uint64_t>(f, l_.fr_lasti);
    bool shim = l_.minor >= 12 && l_.fr_owner && static_cast<int>(f[l_.fr_owner]) == l_.owned_by_cstack;
    if (back == addr) return WalkStatus::kTorn;
    if (!shim) {
      if (code == 0) return WalkStatus::kTorn;
      if (l_.minor >= 14) code &= ~uint64_t{7};  // tagged _PyStackRef
      uint64_t start = code + l_.co_code_adaptive;
      int32_t offset = -1;
      if (instr >= start && instr - start < (1u << 30)) offset = static_cast<int32_t>(instr - start);
      frames->push_back(RawFrame{code, offset, addr});
    }
    addr = back;
  }
  return WalkStatus::kOk;
}

}  // namespace pyprofd
