#include "profiler/stack_walker.h"

#include <algorithm>
#include <spdlog/spdlog.h>

#include <cstring>

namespace pyprofd {

namespace {

constexpr size_t kMaxChunkRead = 1 << 20;  // a stack chunk larger than this is not trusted
constexpr size_t kChunkSlack = 4096;       // read a little past the used part: the stack may grow
constexpr size_t kMaxSpeculation = 256;    // frame objects re-read speculatively (<=3.10)
constexpr size_t kMaxExtraGuess = 64;      // ... of which frames earlier walks saw, off the current stack

}  // namespace

const char* walk_status_name(WalkStatus s) {
  switch (s) {
    case WalkStatus::kOk: return "ok";
    case WalkStatus::kReadError: return "unreadable";
    case WalkStatus::kChanged: return "changing";
    case WalkStatus::kFreedFrame: return "freed frame";
    case WalkStatus::kNoBottom: return "no bottom frame";
    case WalkStatus::kBadChain: return "bad chain";
  }
  return "?";
}

StackWalker::StackWalker(RemoteMemory& mem, const Layout& layout)
    : mem_(mem), l_(layout), ts_buf_(layout.ts_size) {
  // Only the fields the walk uses are read: a frame object is much larger than they are.
  // Interpreter frames are read up to their owner byte (3.11 too, where it goes unused).
  // Frame objects up to their state byte (is the frame live?).
  const bool owner = l_.frame_linkage == FrameLinkage::kInterpreterFrames;
  frame_read_ = std::max({l_.fr_back + 8, l_.fr_code + 8, l_.fr_lasti + 8, owner ? l_.fr_owner + 1u : l_.fr_state + 1u});
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
  if (l_.ts_base_frame) out->base_frame = field<uint64_t>(b, l_.ts_base_frame);
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
  g.chunk_op = g.cframe_op = g.before_op = -1;
  // Order matters: the kernel copies in order while the target runs. The stack top
  // (3.11+) goes first, then the frames, then the pointers to the top of the stack: a
  // frame copied below both stack tops belongs to the stack the walk starts from.
  if (uint64_t before = before_address(tstate)) {
    g.before_op = static_cast<int>(ops->size());
    ops->push_back(ReadOp{before, &g.top_before, sizeof g.top_before});
  }
  if (l_.has_stack_chunks && g.chunk && g.chunk_len && g.chunk_len <= kMaxChunkRead) {
    g.chunk_buf.resize(g.chunk_len);
    g.chunk_op = static_cast<int>(ops->size());
    ops->push_back(ReadOp{g.chunk, g.chunk_buf.data(), g.chunk_len});
  }
  // Frame objects (<=3.10), or frames that lay outside the chunk last time (3.11+).
  g.batch.clear();
  for (size_t i = 0; i < g.frames.size() && i < kMaxSpeculation; ++i) g.batch.add(g.frames[i], frame_read_);
  g.batch.plan(ops);
  if (l_.frame_linkage == FrameLinkage::kFrameObjects && g.sorted_stale) index_guess(g);
  g.ts_buf.resize(l_.ts_size);
  g.ts_op = static_cast<int>(ops->size());
  ops->push_back(ReadOp{tstate, g.ts_buf.data(), g.ts_buf.size()});
  // 3.11–3.12: the top frame pointer after the stack top, as 3.13 reads both at once.
  if (l_.has_cframe && g.cframe) {
    g.cframe_op = static_cast<int>(ops->size());
    ops->push_back(ReadOp{g.cframe + l_.cframe_current_frame, &g.top, sizeof g.top});
  }
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
  last_unchanged_ = false;
  Guess& g = guesses_[tstate];
  if (g.ts_op < 0 || static_cast<size_t>(g.ts_op) >= ops.size() || !ops[g.ts_op].ok) return WalkStatus::kReadError;
  uint64_t native = ts->native_id;
  parse_thread(g.ts_buf.data(), tstate, ts);
  if (!l_.ts_native_thread_id) ts->native_id = native;
  late_reads_ = 0;
  grown_lo_ = grown_hi_ = 0;
  if (same_as_memo(g, *ts, ops)) {
    *frames = g.memo.frames;
    last_unchanged_ = true;
    // An idle stack does not grow: read only its used part from now on (the slack is
    // a page more; it comes back with the re-read when the stack grows).
    // The thread state may be torn or freed (thread churn): its chunk pointers are untrusted.
    size_t used = chunk_used(*ts);
    if (ts->chunk == g.chunk && used) g.chunk_len = used;
    return WalkStatus::kOk;
  }
  WalkStatus status;
  if (l_.frame_linkage == FrameLinkage::kFrameObjects) {
    status = check_top(tstate, *ts, ts->frame, walk_frame_objects(*ts, g, ops, frames));
  } else {
    uint64_t top = l_.has_cframe ? top_through_cframe(*ts, g, ops) : ts->frame;
    bool chunk_ok = g.chunk_op >= 0 && ops[g.chunk_op].ok && g.chunk == ts->chunk;
    // Frames of the copy are trusted below the lower of the stack tops before and after it.
    stack_top_ = ts->chunk_top;
    if (g.before_op < 0 || !ops[g.before_op].ok) chunk_ok = false;
    else if (g.top_before > ts->chunk && g.top_before < stack_top_) stack_top_ = g.top_before;
    status = check_top(tstate, *ts, top, walk_interpreter_frames(*ts, g, top, chunk_ok, ops, frames));
  }
  remember_walk(g, *ts, ops, status, *frames);
  return status;
}

// True when every byte the last walk decoded is the same now: the thread state's
// pointers, the stack tops, the chunk's used part and the batched frames (at the same
// addresses). Only a walk that read nothing else is remembered (Memo::ok).
bool StackWalker::same_as_memo(const Guess& g, const ThreadState& ts, const Ops& ops) const {
  const Guess::Memo& m = g.memo;
  if (!m.ok || ts.frame != m.frame || ts.chunk != m.chunk || ts.chunk_top != m.chunk_top ||
      ts.base_frame != m.base_frame)
    return false;
  if (l_.has_stack_chunks) {
    if (g.before_op < 0 || !ops[g.before_op].ok || g.top_before != m.top_before) return false;
    bool chunk_read = g.chunk_op >= 0 && ops[g.chunk_op].ok && g.chunk == ts.chunk;
    if (chunk_read != m.chunk_read) return false;
    size_t used = chunk_used(ts);
    if (chunk_read && (used > g.chunk_buf.size() || used > m.chunk_bytes.size() ||
                       std::memcmp(g.chunk_buf.data(), m.chunk_bytes.data(), used) != 0))
      return false;
  }
  if (l_.has_cframe && !(g.cframe_op >= 0 && ops[g.cframe_op].ok && g.cframe == ts.frame && g.top == m.top))
    return false;
  if (g.batch.size() != m.batch_addrs.size() || !g.batch.all_read(ops)) return false;
  for (size_t i = 0; i < g.batch.size(); ++i)
    if (g.batch.addr(i) != m.batch_addrs[i]) return false;
  return g.batch.bytes() == m.batch_bytes;
}

// Keeps what a walk decoded for same_as_memo, if it decoded nothing but the batch: no
// late read, no re-read of a grown part. (A bottom frame object a second read confirmed
// stays confirmed: the same bytes would pass again.)
void StackWalker::remember_walk(Guess& g, const ThreadState& ts, const Ops& ops, WalkStatus status,
                                const std::vector<RawFrame>& frames) {
  Guess::Memo& m = g.memo;
  m.ok = status == WalkStatus::kOk && late_reads_ == 0 && grown_hi_ == 0;
  if (!m.ok) return;
  m.frame = ts.frame;
  m.chunk = ts.chunk;
  m.chunk_top = ts.chunk_top;
  m.base_frame = ts.base_frame;
  m.top_before = g.top_before;
  m.top = g.top;
  m.chunk_read = l_.has_stack_chunks && g.chunk_op >= 0 && ops[g.chunk_op].ok && g.chunk == ts.chunk;
  if (m.chunk_read) std::swap(m.chunk_bytes, g.chunk_buf);  // the next read lands in the other buffer
  m.batch_addrs.clear();
  for (size_t i = 0; i < g.batch.size(); ++i) m.batch_addrs.push_back(g.batch.addr(i));
  m.batch_bytes = g.batch.bytes();
  m.frames = frames;
}

// 3.11+: the thread's datastack_top, read before the chunk: a frame at or above it may
// be a stale copy of a slot the stack grew into while it was read. (<=3.10 reads nothing
// before: frame objects prove themselves live one by one.)
uint64_t StackWalker::before_address(uint64_t tstate) const {
  return l_.has_stack_chunks ? tstate + l_.ts_datastack_chunk + 8 : 0;
}

// A walk that read something after the thread state (a frame it had not guessed, a
// moved chunk or cframe) stands only if the top it started from is still the top.
WalkStatus StackWalker::check_top(uint64_t tstate, const ThreadState& ts, uint64_t top, WalkStatus walked) {
  if (walked != WalkStatus::kOk) return walked;
  if (late_reads_ && !top_still(tstate, ts, top)) return WalkStatus::kChanged;
  return WalkStatus::kOk;
}

// Re-reads the top-of-stack pointer (through the cframe on 3.11–3.12).
// 3.11–3.12: both pointers in one call (the thread state's first, as before): the
// cframe's is only looked at when the thread state still names the same cframe.
bool StackWalker::top_still(uint64_t tstate, const ThreadState& ts, uint64_t top) {
  uint64_t now = 0;
  if (!l_.has_cframe) return mem_.read(tstate + l_.ts_frame, &now, sizeof now) && now == top;
  if (!ts.frame) return false;
  uint64_t current = 0;
  ReadOp ops[2] = {{tstate + l_.ts_frame, &now, sizeof now}, {ts.frame + l_.cframe_current_frame, &current, sizeof current}};
  mem_.readv(ops, 2);
  return ops[0].ok && ops[1].ok && now == ts.frame && current == top;
}

// kFrameObjects: executing (or unwinding) frames only; a freed frame keeps its f_back
// (into the free list or a stale caller) and its code, but not this state.
bool StackWalker::frame_live(const uint8_t* f) const {
  int8_t state = static_cast<int8_t>(f[l_.fr_state]);
  return state == l_.fr_live_a || state == l_.fr_live_b;
}

// The last frame of a chain must be one a thread starts with: on 3.12+ the C-stack shim
// that every evaluation loop entry pushes, elsewhere anything but a generator's frame.
// Where threads have a base frame (3.15+) a complete chain stops there, never at NULL.
WalkStatus StackWalker::check_bottom(const uint8_t* f, bool shim) const {
  if (l_.ts_base_frame) return WalkStatus::kNoBottom;
  if (l_.has_shim_frames) return shim ? WalkStatus::kOk : WalkStatus::kNoBottom;
  if (l_.owned_by_generator >= 0 && static_cast<int>(f[l_.fr_owner]) == l_.owned_by_generator)
    return WalkStatus::kNoBottom;
  return WalkStatus::kOk;
}

// 3.11–3.12: tstate->cframe (on the thread's C stack) -> current_frame, from the
// batched read when the cframe is the one guessed, else read singly.
uint64_t StackWalker::top_through_cframe(const ThreadState& ts, Guess& g, const Ops& ops) {
  bool cframe_read = g.cframe_op >= 0 && g.cframe == ts.frame && ops[g.cframe_op].ok;
  uint64_t top = cframe_read ? g.top : 0;
  if (!cframe_read) SPDLOG_DEBUG("cframe re-read: guessed {:#x}, now {:#x}", g.cframe, ts.frame);
  if (!cframe_read) ++late_reads_;
  if (!cframe_read && ts.frame && !mem_.read(ts.frame + l_.cframe_current_frame, &top, sizeof top)) top = 0;
  g.cframe = ts.frame;
  return top;
}

// 3.8–3.10: PyFrameObject chain. The batch holds the frames recent walks saw (frame
// objects are recycled through free lists, so a fast-changing stack reuses the same
// few addresses); frames the chain reaches that are not in it are read singly.
WalkStatus StackWalker::walk_frame_objects(const ThreadState& ts, Guess& g, const Ops& ops,
                                           std::vector<RawFrame>* frames) {
  uint64_t addr = ts.frame;
  WalkStatus status = WalkStatus::kOk;
  size_t misses = 0;  // frames that were not in the guess
  size_t hint = 0;    // where in the guess the next frame probably is
  while (addr != 0) {
    if (frames->size() >= kMaxDepth) {
      status = WalkStatus::kBadChain;
      break;
    }
    const uint8_t* f = batched_frame(g, ops, addr, &hint);
    if (!f) {
      ++late_reads_;
      ++misses;
      if (!mem_.read(addr, one_frame_.data(), frame_read_)) {
        status = WalkStatus::kFreedFrame;
        break;
      }
      f = one_frame_.data();
    }
    uint64_t code = field<uint64_t>(f, l_.fr_code);
    int32_t lasti = field<int32_t>(f, l_.fr_lasti);
    uint64_t back = field<uint64_t>(f, l_.fr_back);
    if (code == 0 || back == addr) {
      status = WalkStatus::kBadChain;
      break;
    }
    // The top frame may be entering or leaving (tstate->frame is set before f_executing
    // and cleared after it); every frame under it, and a thread's first, is executing.
    if ((!frames->empty() || back == 0) && !frame_live(f)) {
      status = WalkStatus::kFreedFrame;
      break;
    }
    // Garbage lasti from a torn read must not overflow: no real code is 16 M units long.
    int32_t offset = lasti < 0 || lasti > (1 << 24) ? -1 : lasti * l_.lasti_unit;
    frames->push_back(RawFrame{code, offset, addr, false, true});
    addr = back;
  }
  // A stack the guess covered keeps the guess (no work on a steady stack).
  if (misses || g.frames.size() > frames->size() + kMaxExtraGuess) remember_frames(g, *frames);
  if (status == WalkStatus::kOk && !frames->empty() && !bottom_holds(g, frames->back())) return WalkStatus::kChanged;
  return status;
}

// Sorted (address, batch index) of the guess, for lookups during the walk.
void StackWalker::index_guess(Guess& g) {
  g.sorted.clear();
  for (size_t i = 0; i < g.frames.size() && i < kMaxSpeculation; ++i) g.sorted.emplace_back(g.frames[i], i);
  std::sort(g.sorted.begin(), g.sorted.end());
  g.sorted_stale = false;
}

// A chain's last frame (no f_back) may be a frame read while it was set up: taken from
// the end of a free list (no f_back yet) and copied across the moment it starts running,
// its f_back before and its state after (CI: 'fail;fail' rooted at fail, 3.8). It stands
// if a second read still finds it a live bottom frame of the same code. The confirmed
// bottom is kept per thread: a steady root costs one read per thread, not one per walk.
bool StackWalker::bottom_holds(Guess& g, const RawFrame& f) {
  if (f.frame == g.bottom && f.code == g.bottom_code) return true;
  if (!mem_.read(f.frame, one_frame_.data(), frame_read_)) return false;
  const uint8_t* again = one_frame_.data();
  if (field<uint64_t>(again, l_.fr_back) != 0 || field<uint64_t>(again, l_.fr_code) != f.code || !frame_live(again))
    return false;
  g.bottom = f.frame;
  g.bottom_code = f.code;
  return true;
}

// The batched copy of the frame at addr, or nullptr if it was not guessed. The guess
// starts with the last walk's frames in walk order, so the next one is tried first.
const uint8_t* StackWalker::batched_frame(const Guess& g, const Ops& ops, uint64_t addr, size_t* hint) const {
  size_t i = *hint;
  if (i >= g.batch.size() || g.batch.addr(i) != addr) {
    auto it = std::lower_bound(g.sorted.begin(), g.sorted.end(), std::make_pair(addr, size_t{0}));
    if (it == g.sorted.end() || it->first != addr) return nullptr;
    i = it->second;
  }
  *hint = i + 1;
  return g.batch.get(i, ops);
}

// Next walk's guess: this walk's frames, then up to kMaxExtraGuess frames earlier walks
// saw and this one did not.
void StackWalker::remember_frames(Guess& g, const std::vector<RawFrame>& frames) {
  g.next.clear();
  for (const RawFrame& f : frames)
    if (g.next.size() < kMaxSpeculation) g.next.push_back(f.frame);
  walked_.assign(g.next.begin(), g.next.end());
  std::sort(walked_.begin(), walked_.end());  // for the lookups below
  const size_t cap = std::min(kMaxSpeculation, g.next.size() + kMaxExtraGuess);
  for (uint64_t a : g.frames) {
    if (g.next.size() >= cap) break;
    if (!std::binary_search(walked_.begin(), walked_.end(), a)) g.next.push_back(a);
  }
  g.frames.swap(g.next);
  g.sorted_stale = true;
}

// A frame's bytes: from the chunk copy, from the batch of frames that lay outside the
// chunk last time (remembered again for next time), or read singly.
const uint8_t* StackWalker::frame_bytes(uint64_t addr, Guess& g, const Ops& ops, size_t* n_outside) {
  if (chunk_data_ && addr >= chunk_base_ && addr - chunk_base_ <= chunk_len_ &&
      chunk_len_ - (addr - chunk_base_) >= frame_read_)
    return chunk_data_ + (addr - chunk_base_);
  // The guess holds the last walk's frames in walk order: the next one is tried first.
  const uint8_t* f = nullptr;
  if (outside_hint_ < g.batch.size() && g.batch.addr(outside_hint_) == addr) f = g.batch.get(outside_hint_++, ops);
  for (size_t j = 0; j < g.batch.size() && !f; ++j)
    if (g.batch.addr(j) == addr) f = g.batch.get(j, ops), outside_hint_ = j + 1;
  if (!f) {
    ++late_reads_;
    if (hints_) f = hints_->frame(addr, one_frame_.size());
  }
  if (!f) {
    if (!mem_.read(addr, one_frame_.data(), one_frame_.size())) return nullptr;
    f = one_frame_.data();
  }
  if (*n_outside < kMaxSpeculation) outside_.push_back(addr);
  ++*n_outside;
  return f;
}

// The stack grew past the stack top read before the chunk copy: the copy of the part it
// grew into may predate the frames now there. One more read of that part; a frame of it
// stands only if both reads agree on its code and caller (confirmed_frame).
bool StackWalker::reread_grown_part(uint64_t top) {
  grown_lo_ = grown_hi_ = 0;
  if (!chunk_data_ || top < stack_top_ || top >= chunk_end_ || top < chunk_base_) return true;
  uint64_t lo = std::max(stack_top_, chunk_base_), hi = top + frame_read_;
  if (hi - chunk_base_ > copied_len_ || hi - lo > kMaxChunkRead) return false;
  grown_buf_.resize(hi - lo);
  if (!mem_.read(lo, grown_buf_.data(), grown_buf_.size())) return false;
  grown_lo_ = lo;
  grown_hi_ = hi;
  return true;
}

// The chunk copy of the frame at addr in the grown part, if the second read agrees.
const uint8_t* StackWalker::confirmed_frame(uint64_t addr) const {
  if (addr < grown_lo_ || addr + frame_read_ > grown_hi_) return nullptr;
  const uint8_t* copy = chunk_data_ + (addr - chunk_base_);
  const uint8_t* again = grown_buf_.data() + (addr - grown_lo_);
  bool same = field<uint64_t>(copy, l_.fr_code) == field<uint64_t>(again, l_.fr_code) &&
              field<uint64_t>(copy, l_.fr_back) == field<uint64_t>(again, l_.fr_back);
  return same ? copy : nullptr;
}

// 3.11+: _PyInterpreterFrame chain through `previous`. Frames inside the used part of
// the current chunk come from the batched copy; generator frames and older chunks are
// read singly.
WalkStatus StackWalker::walk_interpreter_frames(const ThreadState& ts, Guess& g, uint64_t top, bool chunk_ok,
                                                const Ops& ops, std::vector<RawFrame>* frames) {
  outside_.clear();
  outside_hint_ = 0;
  size_t n_outside = 0;
  WalkStatus status = walk_chain(ts, g, top, chunk_ok, ops, frames, &n_outside);
  // Read with the others next time. (Adding frames that earlier walks saw, as for frame
  // objects, cost more than it saved under load: bench/load.py, BENCHMARKS.md.)
  g.frames.swap(outside_);
  return status;
}

// The bytes in use of the thread's top stack chunk, 0 when its pointers cannot be a chunk's
// (torn or freed thread state): fewer than the chunk's own header, or more than we trust.
size_t StackWalker::chunk_used(const ThreadState& ts) const {
  if (!ts.chunk || ts.chunk_top <= ts.chunk) return 0;
  uint64_t used = ts.chunk_top - ts.chunk;
  size_t header = std::max<size_t>(l_.chunk_data, l_.chunk_size + 8);
  return used < header || used > kMaxChunkRead ? 0 : static_cast<size_t>(used);
}

WalkStatus StackWalker::walk_chain(const ThreadState& ts, Guess& g, uint64_t top, bool chunk_ok, const Ops& ops,
                                   std::vector<RawFrame>* frames, size_t* n_outside) {
  chunk_data_ = nullptr;
  chunk_base_ = 0;
  chunk_len_ = 0;
  copied_len_ = 0;
  chunk_end_ = 0;
  size_t used = chunk_used(ts);
  chunk_ok = chunk_ok && used <= g.chunk_len;
  if (used && !chunk_ok) {
    SPDLOG_DEBUG("chunk re-read: guessed {:#x} len {}, now {:#x} used {}", g.chunk, g.chunk_len, ts.chunk, used);
    ++late_reads_;
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
    copied_len_ = std::min(g.chunk_buf.size(), kMaxChunkRead);
    uint64_t size = field<uint64_t>(chunk_data_, l_.chunk_size);
    chunk_end_ = size >= used && size <= kMaxChunkRead ? ts.chunk + size : ts.chunk_top;
  }
  if (top == 0) return WalkStatus::kOk;

  if (!reread_grown_part(top)) return WalkStatus::kChanged;
  uint64_t addr = top;
  while (addr != 0 && !(l_.ts_base_frame && addr == ts.base_frame)) {
    if (frames->size() >= kMaxDepth) return WalkStatus::kBadChain;
    const uint8_t* f = nullptr;
    if (addr >= stack_top_ && addr < chunk_end_) {
      // At or above a stack top but inside its chunk: pushed while the chunk was copied
      // or the tops were read; it stands only if the second read confirms it.
      f = confirmed_frame(addr);
      if (!f) return WalkStatus::kChanged;
    }
    if (!f) f = frame_bytes(addr, g, ops, n_outside);
    if (!f) return frames->empty() ? WalkStatus::kReadError : WalkStatus::kFreedFrame;
    uint64_t code = l_.code_of(field<uint64_t>(f, l_.fr_code));
    uint64_t back = field<uint64_t>(f, l_.fr_back);
    uint64_t instr = field<uint64_t>(f, l_.fr_lasti);
    bool shim = l_.shim_owner(static_cast<int>(f[l_.fr_owner]));
    // Frames are pushed upwards in a chunk: a `previous` above its frame in the same
    // chunk copy is a torn read.
    bool in_chunk = addr >= chunk_base_ && addr - chunk_base_ < chunk_len_;
    if (back == addr || (in_chunk && back > addr && back - chunk_base_ < chunk_len_)) return WalkStatus::kBadChain;
    if (back == 0 && check_bottom(f, shim) != WalkStatus::kOk) return WalkStatus::kNoBottom;
    if (!shim) {
      if (code == 0) return WalkStatus::kBadChain;
      uint64_t start = code + l_.co_code_adaptive;
      int32_t offset = -1;
      if (instr >= start && instr - start < (1u << 30)) offset = static_cast<int32_t>(instr - start);
      bool thread_owned = static_cast<int>(f[l_.fr_owner]) == l_.owned_by_thread;
      bool entry = l_.fr_is_entry && !l_.has_shim_frames && f[l_.fr_is_entry] != 0;
      frames->push_back(RawFrame{code, offset, addr, thread_owned, entry});
    } else if (!frames->empty()) {
      frames->back().entry = true;
      frames->back().shim = addr;
    }
    addr = back;
  }
  return WalkStatus::kOk;
}

}  // namespace pyprofd
