#include "profiler/stack_walker.h"

#include <algorithm>
#include <spdlog/spdlog.h>

#include <cstring>

namespace pyprofd {

namespace {

constexpr size_t kMaxChunkRead = 1 << 20;  // a stack chunk larger than this is not trusted
constexpr size_t kChunkSlack = 4096;       // read a little past the used part: the stack may grow
constexpr size_t kMaxSpeculation = 256;    // frame objects re-read speculatively (<=3.10)

}  // namespace

StackWalker::StackWalker(RemoteMemory& mem, const Layout& layout)
    : mem_(mem), l_(layout), ts_buf_(layout.ts_size) {
  // Only the fields the walk uses are read: a frame object is much larger than they are.
  // Interpreter frames are read up to their owner byte (3.11 too, where it goes unused).
  const bool owner = l_.frame_linkage == FrameLinkage::kInterpreterFrames;
  frame_read_ = std::max({l_.fr_back + 8, l_.fr_code + 8, l_.fr_lasti + 8, owner ? l_.fr_owner + 1u : 0u});
  frame_read_ = std::min<size_t>(frame_read_, l_.fr_size);
  one_frame_.resize(frame_read_);
}

void StackWalker::parse_thread(const uint8_t* b, uint64_t addr, ThreadState* out) const {
  out->addr = addr;
  out->next = field<uint64_t>(b, l_.ts_next);
  out->thread_id = field<uint64_t>(b, l_.ts_thread_id);
  if (l_.ts_native_thread_id) out->native_id = field<uint64_t>(b, l_.ts_native_thread_id);
  out->frame = field<uint64_t>(b, l_.ts_frame);
  if (l_.has_stack_chunks) {
    out->chunk = field<uint64_t>(b, l_.ts_datastack_chunk);
    out->chunk_top = field<uint64_t>(b, l_.ts_datastack_chunk + 8);  // datastack_top follows
  }
}

bool StackWalker::read_thread(uint64_t addr, ThreadState* out) {
  if (addr == 0 || !mem_.read(addr, ts_buf_.data(), ts_buf_.size())) return false;
  uint64_t native = out->native_id;
  parse_thread(ts_buf_.data(), addr, out);
  if (!l_.ts_native_thread_id) out->native_id = native;
  return true;
}

void StackWalker::retain_only(const std::vector<uint64_t>& live) {
  for (auto it = guesses_.begin(); it != guesses_.end();) {
    bool keep = std::find(live.begin(), live.end(), it->first) != live.end();
    it = keep ? std::next(it) : guesses_.erase(it);
  }
}

void StackWalker::prepare(uint64_t tstate, std::vector<ReadOp>* ops) {
  Guess& g = guesses_[tstate];
  g.first_op = ops->size();
  g.chunk_op = g.cframe_op = -1;
  // Order matters: the kernel copies in order while the target runs, so the frames
  // go first and the pointers to the top of the stack last. The top is then never
  // older than the frames under it, which change least.
  if (l_.has_stack_chunks && g.chunk && g.chunk_len) {
    g.chunk_buf.resize(g.chunk_len);
    g.chunk_op = static_cast<int>(ops->size());
    ops->push_back(ReadOp{g.chunk, g.chunk_buf.data(), g.chunk_len});
  }
  // Frame objects (<=3.10), or frames that lay outside the chunk last time (3.11+).
  g.batch.clear();
  for (size_t i = 0; i < g.frames.size() && i < kMaxSpeculation; ++i) g.batch.add(g.frames[i], frame_read_);
  g.batch.plan(ops);
  if (l_.has_cframe && g.cframe) {
    g.cframe_op = static_cast<int>(ops->size());
    ops->push_back(ReadOp{g.cframe + l_.cframe_current_frame, &g.top, sizeof g.top});
  }
  g.ts_buf.resize(l_.ts_size);
  g.ts_op = static_cast<int>(ops->size());
  ops->push_back(ReadOp{tstate, g.ts_buf.data(), g.ts_buf.size()});
}

WalkStatus StackWalker::walk(uint64_t tstate, ThreadState* ts, std::vector<RawFrame>* frames) {
  own_ops_.clear();
  prepare(tstate, &own_ops_);
  mem_.readv(own_ops_.data(), own_ops_.size());
  return finish(tstate, own_ops_, ts, frames);
}

WalkStatus StackWalker::finish(uint64_t tstate, const std::vector<ReadOp>& ops, ThreadState* ts,
                               std::vector<RawFrame>* frames) {
  frames->clear();
  Guess& g = guesses_[tstate];
  if (g.ts_op < 0 || static_cast<size_t>(g.ts_op) >= ops.size() || !ops[g.ts_op].ok) return WalkStatus::kReadError;
  uint64_t native = ts->native_id;
  parse_thread(g.ts_buf.data(), tstate, ts);
  if (!l_.ts_native_thread_id) ts->native_id = native;
  if (l_.frame_linkage == FrameLinkage::kFrameObjects) return walk_frame_objects(*ts, g, ops, frames);

  uint64_t top = l_.has_cframe ? top_through_cframe(*ts, g, ops) : ts->frame;
  bool chunk_ok = g.chunk_op >= 0 && ops[g.chunk_op].ok && g.chunk == ts->chunk;
  return walk_interpreter_frames(*ts, g, top, chunk_ok, ops, frames);
}

// 3.11–3.12: tstate->cframe (on the thread's C stack) -> current_frame, from the
// batched read when the cframe is the one guessed, else read singly.
uint64_t StackWalker::top_through_cframe(const ThreadState& ts, Guess& g, const Ops& ops) {
  bool cframe_read = g.cframe_op >= 0 && g.cframe == ts.frame && ops[g.cframe_op].ok;
  uint64_t top = cframe_read ? g.top : 0;
  if (!cframe_read) SPDLOG_DEBUG("cframe re-read: guessed {:#x}, now {:#x}", g.cframe, ts.frame);
  if (!cframe_read && ts.frame && !mem_.read(ts.frame + l_.cframe_current_frame, &top, sizeof top)) top = 0;
  g.cframe = ts.frame;
  return top;
}

// 3.8–3.10: PyFrameObject chain. The batch holds the frames the previous walk saw;
// frames the chain reaches that are not in it are read singly.
WalkStatus StackWalker::walk_frame_objects(const ThreadState& ts, Guess& g, const Ops& ops,
                                           std::vector<RawFrame>* frames) {
  const size_t fs = frame_read_;
  const size_t batched = g.batch.size();
  std::vector<uint64_t>& seen = g.frames;  // rewritten as we go; the batch keeps its own addresses
  size_t pos = 0;                          // batch index where the next frame is expected
  size_t n_seen = 0;
  uint64_t addr = ts.frame;
  WalkStatus status = WalkStatus::kOk;
  while (addr != 0) {
    if (frames->size() >= kMaxDepth) {
      status = WalkStatus::kTorn;
      break;
    }
    const uint8_t* f = nullptr;
    for (size_t j = pos; j < batched; ++j) {
      if (g.batch.addr(j) == addr) {
        f = g.batch.get(j, ops);
        pos = j + 1;
        break;
      }
    }
    if (!f) {
      if (!mem_.read(addr, one_frame_.data(), fs)) {
        status = WalkStatus::kTorn;
        break;
      }
      f = one_frame_.data();
    }
    uint64_t code = field<uint64_t>(f, l_.fr_code);
    int32_t lasti = field<int32_t>(f, l_.fr_lasti);
    uint64_t back = field<uint64_t>(f, l_.fr_back);
    if (code == 0 || back == addr) {
      status = WalkStatus::kTorn;
      break;
    }
    // Garbage lasti from a torn read must not overflow: no real code is 16 M units long.
    int32_t offset = lasti < 0 || lasti > (1 << 24) ? -1 : lasti * l_.lasti_unit;
    frames->push_back(RawFrame{code, offset, addr});
    if (n_seen < kMaxSpeculation) {
      if (n_seen < seen.size()) seen[n_seen] = addr; else seen.push_back(addr);
      ++n_seen;
    }
    addr = back;
  }
  seen.resize(n_seen);
  return status;
}

// A frame's bytes: from the chunk copy, from the batch of frames that lay outside the
// chunk last time (remembered again for next time), or read singly.
const uint8_t* StackWalker::frame_bytes(uint64_t addr, Guess& g, const Ops& ops, size_t* n_outside) {
  if (chunk_data_ && addr >= chunk_base_ && addr - chunk_base_ <= chunk_len_ &&
      chunk_len_ - (addr - chunk_base_) >= frame_read_)
    return chunk_data_ + (addr - chunk_base_);
  const uint8_t* f = nullptr;
  for (size_t j = 0; j < g.batch.size() && !f; ++j)
    if (g.batch.addr(j) == addr) f = g.batch.get(j, ops);
  if (!f) {
    if (!mem_.read(addr, one_frame_.data(), one_frame_.size())) return nullptr;
    f = one_frame_.data();
  }
  if (*n_outside < kMaxSpeculation) outside_.push_back(addr);
  ++*n_outside;
  return f;
}

// 3.11+: _PyInterpreterFrame chain through `previous`. Frames inside the used part of
// the current chunk come from the batched copy; generator frames and older chunks are
// read singly.
WalkStatus StackWalker::walk_interpreter_frames(const ThreadState& ts, Guess& g, uint64_t top, bool chunk_ok,
                                                const Ops& ops, std::vector<RawFrame>* frames) {
  outside_.clear();
  size_t n_outside = 0;
  WalkStatus status = walk_chain(ts, g, top, chunk_ok, ops, frames, &n_outside);
  g.frames = outside_;  // read with the others next time
  return status;
}

WalkStatus StackWalker::walk_chain(const ThreadState& ts, Guess& g, uint64_t top, bool chunk_ok, const Ops& ops,
                                   std::vector<RawFrame>* frames, size_t* n_outside) {
  chunk_data_ = nullptr;
  chunk_base_ = 0;
  chunk_len_ = 0;
  size_t used = ts.chunk && ts.chunk_top > ts.chunk ? ts.chunk_top - ts.chunk : 0;
  if (used > kMaxChunkRead) used = 0;
  chunk_ok = chunk_ok && used <= g.chunk_len;
  if (used && !chunk_ok) {
    SPDLOG_DEBUG("chunk re-read: guessed {:#x} len {}, now {:#x} used {}", g.chunk, g.chunk_len, ts.chunk, used);
    g.chunk_buf.resize(used);
    chunk_ok = mem_.read(ts.chunk, g.chunk_buf.data(), used);
    if (chunk_ok) {
      // Next time read this chunk with the others, a little past its used part but never past its end.
      uint64_t size = field<uint64_t>(g.chunk_buf.data(), l_.chunk_size);
      g.chunk = ts.chunk;
      g.chunk_len = std::max<size_t>(used, std::min<size_t>(std::min<uint64_t>(size, kMaxChunkRead), used + kChunkSlack));
    }
  }
  if (used && chunk_ok) {
    chunk_data_ = g.chunk_buf.data();
    chunk_base_ = ts.chunk;
    chunk_len_ = used;
  }
  if (top == 0) return WalkStatus::kOk;

  uint64_t addr = top;
  while (addr != 0) {
    if (frames->size() >= kMaxDepth) return WalkStatus::kTorn;
    const uint8_t* f = frame_bytes(addr, g, ops, n_outside);
    if (!f) return frames->empty() ? WalkStatus::kReadError : WalkStatus::kTorn;
    uint64_t code = field<uint64_t>(f, l_.fr_code);
    uint64_t back = field<uint64_t>(f, l_.fr_back);
    uint64_t instr = field<uint64_t>(f, l_.fr_lasti);
    bool shim = l_.has_shim_frames && static_cast<int>(f[l_.fr_owner]) == l_.owned_by_cstack;
    // Frames are pushed upwards in a chunk: a `previous` above its frame in the same
    // chunk copy is a torn read.
    bool in_chunk = addr >= chunk_base_ && addr - chunk_base_ < chunk_len_;
    if (back == addr || (in_chunk && back > addr && back - chunk_base_ < chunk_len_)) return WalkStatus::kTorn;
    if (!shim) {
      if (code == 0) return WalkStatus::kTorn;
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
