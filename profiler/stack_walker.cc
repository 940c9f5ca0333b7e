#include "profiler/stack_walker.h"

#include <algorithm>
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
constexpr size_t kChunkSlack = 4096;       // read a little past the used part: the stack may grow
constexpr size_t kMaxSpeculation = 256;    // frame objects re-read speculatively (<=3.10)

}  // namespace

StackWalker::StackWalker(RemoteMemory& mem, const Layout& layout)
    : mem_(mem), l_(layout), ts_buf_(layout.ts_size), one_frame_(layout.fr_size) {
  chunk_buf_.reserve(64 * 1024);
}

void StackWalker::parse_thread(const uint8_t* b, uint64_t addr, ThreadState* out) const {
  out->addr = addr;
  out->next = field<uint64_t>(b, l_.ts_next);
  out->thread_id = field<uint64_t>(b, l_.ts_thread_id);
  if (l_.ts_native_thread_id) out->native_id = field<uint64_t>(b, l_.ts_native_thread_id);
  out->frame = field<uint64_t>(b, l_.ts_frame);
  if (l_.minor >= 11) {
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

WalkStatus StackWalker::walk(uint64_t tstate, std::vector<RawFrame>* frames) {
  frames->clear();
  Guess& guess = guesses_[tstate];
  // Order matters: the kernel copies in order while the target runs, so the frames
  // go first and the pointers to the top of the stack last. The top is then never
  // older than the frames under it, which change least.
  ops_.clear();
  uint64_t top = 0;
  int cframe_op = -1;
  if (l_.minor >= 11) {
    if (guess.chunk && guess.chunk_len) {
      chunk_buf_.resize(guess.chunk_len);
      ops_.push_back(ReadOp{guess.chunk, chunk_buf_.data(), guess.chunk_len});
    }
    if (l_.minor <= 12 && guess.cframe) {
      cframe_op = static_cast<int>(ops_.size());
      ops_.push_back(ReadOp{guess.cframe + l_.cframe_current_frame, &top, sizeof top});
    }
  } else {
    size_t n = std::min(guess.frames.size(), kMaxSpeculation);
    batch_buf_.resize(n * l_.fr_size);
    for (size_t i = 0; i < n; ++i) ops_.push_back(ReadOp{guess.frames[i], &batch_buf_[i * l_.fr_size], l_.fr_size});
  }
  ops_.push_back(ReadOp{tstate, ts_buf_.data(), ts_buf_.size()});
  mem_.readv(ops_.data(), ops_.size());
  if (!ops_.back().ok) return WalkStatus::kReadError;
  ThreadState ts;
  parse_thread(ts_buf_.data(), tstate, &ts);
  if (l_.minor <= 10) return walk_frame_objects(ts, guess, frames);

  if (l_.minor <= 12) {
    // tstate->cframe (on the thread's C stack) -> current_frame.
    bool cframe_read = cframe_op >= 0 && guess.cframe == ts.frame && ops_[cframe_op].ok;
    if (!cframe_read) {
      top = 0;
      if (ts.frame && !mem_.read(ts.frame + l_.cframe_current_frame, &top, sizeof top)) top = 0;
    }
    guess.cframe = ts.frame;
  } else {
    top = ts.frame;
  }
  return walk_interpreter_frames(ts, guess, top, frames);
}

// 3.8–3.10: PyFrameObject chain. The batch holds the frames the previous walk saw;
// frames the chain reaches that are not in it are read singly.
WalkStatus StackWalker::walk_frame_objects(const ThreadState& ts, Guess& guess, std::vector<RawFrame>* frames) {
  const size_t fs = l_.fr_size;
  const size_t batched = ops_.size() - 1;  // the thread state is the last op
  std::vector<uint64_t>& seen = guess.frames;
  size_t pos = 0;  // batch index where the next frame is expected
  uint64_t addr = ts.frame;
  WalkStatus status = WalkStatus::kOk;
  // The new chain replaces the guess as we go; batch addresses stay readable in ops_.
  size_t n_seen = 0;
  while (addr != 0) {
    if (frames->size() >= kMaxDepth) {
      status = WalkStatus::kTorn;
      break;
    }
    const uint8_t* f = nullptr;
    for (size_t j = pos; j < batched; ++j) {
      if (ops_[j].addr == addr) {
        if (ops_[j].ok) f = &batch_buf_[j * fs];
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
    int32_t offset = lasti < 0 ? -1 : (l_.minor >= 10 ? lasti * 2 : lasti);
    frames->push_back(RawFrame{code, offset, addr});
    if (n_seen < kMaxSpeculation) {
      // Overwriting in place is safe: the batch's addresses live on in ops_.
      if (n_seen < seen.size()) seen[n_seen] = addr; else seen.push_back(addr);
      ++n_seen;
    }
    addr = back;
  }
  seen.resize(n_seen);
  return status;
}

const uint8_t* StackWalker::frame_bytes(uint64_t addr) {
  if (addr >= chunk_base_ && addr - chunk_base_ <= chunk_len_ && chunk_len_ - (addr - chunk_base_) >= l_.fr_size)
    return chunk_buf_.data() + (addr - chunk_base_);
  if (!mem_.read(addr, one_frame_.data(), one_frame_.size())) return nullptr;
  return one_frame_.data();
}

// 3.11+: _PyInterpreterFrame chain through `previous`. Frames inside the used part of
// the current chunk come from the batched copy; generator frames and older chunks are
// read singly.
WalkStatus StackWalker::walk_interpreter_frames(const ThreadState& ts, Guess& guess, uint64_t top,
                                                std::vector<RawFrame>* frames) {
  chunk_base_ = 0;
  chunk_len_ = 0;
  size_t used = ts.chunk && ts.chunk_top > ts.chunk ? ts.chunk_top - ts.chunk : 0;
  if (used > kMaxChunkRead) used = 0;
  // The chunk is the first op when it was guessed.
  bool chunk_read = guess.chunk && guess.chunk == ts.chunk && ops_.size() > 1 && ops_[0].ok &&
                    ops_[0].addr == ts.chunk && used <= guess.chunk_len;
  if (used && !chunk_read) {
    chunk_buf_.resize(used);
    chunk_read = mem_.read(ts.chunk, chunk_buf_.data(), used);
    if (chunk_read) {
      // Next time read this chunk with the others, a little past its used part but never past its end.
      uint64_t size = field<uint64_t>(chunk_buf_.data(), l_.chunk_size);
      guess.chunk = ts.chunk;
      guess.chunk_len = std::min<size_t>(std::min<uint64_t>(size, kMaxChunkRead), used + kChunkSlack);
      if (guess.chunk_len < used) guess.chunk_len = used;
    }
  }
  if (used && chunk_read) {
    chunk_base_ = ts.chunk;
    chunk_len_ = used;
  }
  if (top == 0) return WalkStatus::kOk;

  uint64_t addr = top;
  while (addr != 0) {
    if (frames->size() >= kMaxDepth) return WalkStatus::kTorn;
    const uint8_t* f = frame_bytes(addr);
    if (!f) return frames->empty() ? WalkStatus::kReadError : WalkStatus::kTorn;
    uint64_t code = field<uint64_t>(f, l_.fr_code);
    uint64_t back = field<uint64_t>(f, l_.fr_back);
    uint64_t instr = field<uint64_t>(f, l_.fr_lasti);
    bool shim = l_.minor >= 12 && static_cast<int>(f[l_.fr_owner]) == l_.owned_by_cstack;
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
