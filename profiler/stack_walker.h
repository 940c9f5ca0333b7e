// Walks one thread's Python frames from outside: the f_back chain of frame objects
// (3.8–3.10) or the interpreter frames in the thread's stack chunks (3.11+).
//
// A walk is one readv, as close to a snapshot as the kernel gives: the thread state
// together with what the previous walk of that thread found — the cframe and the
// used part of the stack chunk (3.11+), or the frame objects' addresses (3.8–3.10,
// stacks change little between samples). What the fresh thread state contradicts is
// read again singly. Every pointer is untrusted; a broken chain is reported, never fatal.
#pragma once
#include <cstdint>
#include <unordered_map>
#include <vector>

#include "profiler/layout.h"
#include "profiler/remote_memory.h"
#include "profiler/span_batch.h"

namespace pyprofd {

struct RawFrame {
  uint64_t code = 0;         // code object address
  int32_t byte_offset = -1;  // instruction offset in bytes, -1 if unknown
  uint64_t frame = 0;        // the frame's own address (matches a coroutine's frame for asyncio)
  bool thread_owned = false; // 3.11+: a frame in the thread's stack chunk (not a generator's own)
  // The first frame an evaluation loop call ran (--native pairs it with a native
  // _PyEval_EvalFrameDefault): every frame object (<=3.10), is_entry (3.11), the frame
  // above a C-stack/interpreter shim (3.12+).
  bool entry = false;
  // 3.12+: an entry frame's shim. It is a local of the evaluation loop that runs the frame,
  // so its address lies in that loop's native stack frame: the exact pairing.
  uint64_t shim = 0;
};

struct ThreadState {
  uint64_t addr = 0;
  uint64_t next = 0;
  uint64_t thread_id = 0;     // pthread_t
  uint64_t native_id = 0;     // kernel TID (0 until known on <=3.10)
  uint64_t frame = 0;         // frame (<=3.10), cframe (3.11–3.12), current_frame (3.13)
  uint64_t chunk = 0;         // datastack_chunk (3.11+)
  uint64_t chunk_top = 0;     // datastack_top (3.11+)
  uint64_t base_frame = 0;    // 3.15+: the sentinel frame a complete chain ends at
};

// A walk is kOk only when it can be shown consistent; each other value is why not.
enum class WalkStatus {
  kOk,
  kReadError,   // the thread state or the top frame could not be read
  kChanged,     // the top of the stack moved while it was read
  kFreedFrame,  // a frame on the chain is not live (free list, zombie, above the stack top)
  kNoBottom,    // the chain ends at a frame that cannot be a thread's first
  kBadChain,    // a loop, a NULL code object, a link the wrong way, or deeper than kMaxDepth
};
constexpr int kWalkStatusCount = 6;
const char* walk_status_name(WalkStatus s);

// Frames read a moment earlier in the same tick by another reader (the asyncio reader's
// read of suspended coroutines, whose frames are on a thread's stack once their task
// runs): looked up before a frame outside the batch is read on its own. Such bytes are
// a late read like any other: the walk's top is checked again after it.
class FrameHints {
 public:
  virtual ~FrameHints() = default;
  // len bytes of the frame at addr, or nullptr.
  virtual const uint8_t* frame(uint64_t addr, size_t len) const = 0;
};

class StackWalker {
 public:
  static constexpr size_t kMaxDepth = 4096;

  StackWalker(RemoteMemory& mem, const Layout& layout);

  // Reads the thread state at addr (for listing threads).
  bool read_thread(uint64_t addr, ThreadState* out);

  // A walk in two halves, so one readv can serve many threads: prepare() appends the
  // reads for one thread state to ops (its frames first, the thread state last);
  // finish() completes the walk from those ops once the caller has read them.
  void prepare(uint64_t tstate, std::vector<ReadOp>* ops);
  WalkStatus finish(uint64_t tstate, const std::vector<ReadOp>& ops, ThreadState* ts, std::vector<RawFrame>* frames);

  // prepare + readv + finish for one thread. Frames innermost first.
  WalkStatus walk(uint64_t tstate, ThreadState* ts, std::vector<RawFrame>* frames);

  // True if the last finish() found every byte its walk depends on as the walk before
  // it did, and gave that walk's frames without walking (an idle thread).
  bool last_unchanged() const { return last_unchanged_; }

  // Forget per-thread state for thread states no longer alive.
  void retain_only(const std::vector<uint64_t>& live_tstates);

  // Frame bytes to try before a single read (nullptr: none); valid until changed.
  void set_hints(const FrameHints* hints) { hints_ = hints; }

 private:
  // Per thread state: what the previous walk saw, and the buffers its reads land in.
  struct Guess {
    uint64_t cframe = 0;          // 3.11–3.12
    uint64_t chunk = 0;           // 3.11+
    size_t chunk_len = 0;         // bytes of the chunk worth reading (used part + slack, within the chunk)
    std::vector<uint64_t> frames; // <=3.10: frame objects of recent walks, the last walk's first;
                                  // 3.11+: frames outside the chunk (C-stack shims, generators)
    // Where prepare() put this thread's reads in the ops vector.
    size_t first_op = 0;
    int chunk_op = -1, cframe_op = -1, ts_op = -1;
    SpanBatch batch;              // the guessed frames, read as merged spans
    std::vector<std::pair<uint64_t, size_t>> sorted;  // (address, batch index), for lookups
    bool sorted_stale = true;     // frames changed since sorted was built
    std::vector<uint64_t> next;   // the guess being built (swapped with frames)
    uint64_t top = 0;             // cframe->current_frame lands here
    int before_op = -1;           // 3.11+: datastack_top, read before everything else
    uint64_t top_before = 0;
    uint64_t bottom = 0, bottom_code = 0;  // <=3.10: the last bottom frame a second read confirmed
    std::vector<uint8_t> ts_buf, chunk_buf;
    // The last walk, if it read nothing beyond the batch: its inputs and its frames. A
    // walk is a function of these bytes, so the same bytes give the same frames.
    struct Memo {
      bool ok = false;
      uint64_t frame = 0, chunk = 0, chunk_top = 0, base_frame = 0, top_before = 0, top = 0;
      bool chunk_read = false;
      std::vector<uint8_t> chunk_bytes;  // the chunk copy it decoded (swapped, not copied)
      std::vector<uint64_t> batch_addrs;
      std::vector<uint8_t> batch_bytes;
      std::vector<RawFrame> frames;
    } memo;
  };

  void parse_thread(const uint8_t* buf, uint64_t addr, ThreadState* out) const;
  using Ops = std::vector<ReadOp>;
  uint64_t top_through_cframe(const ThreadState& ts, Guess& g, const Ops& ops);
  uint64_t before_address(uint64_t tstate) const;
  bool top_still(uint64_t tstate, const ThreadState& ts, uint64_t top);
  WalkStatus check_top(uint64_t tstate, const ThreadState& ts, uint64_t top, WalkStatus walked);
  bool frame_live(const uint8_t* f) const;
  bool bottom_holds(Guess& g, const RawFrame& f);
  const uint8_t* batched_frame(const Guess& g, const Ops& ops, uint64_t addr, size_t* hint) const;
  void remember_frames(Guess& g, const std::vector<RawFrame>& frames);
  static void index_guess(Guess& g);
  WalkStatus check_bottom(const uint8_t* f, bool shim) const;
  bool same_as_memo(const Guess& g, const ThreadState& ts, const Ops& ops) const;
  void remember_walk(Guess& g, const ThreadState& ts, const Ops& ops, WalkStatus status,
                     const std::vector<RawFrame>& frames);
  WalkStatus walk_frame_objects(const ThreadState& ts, Guess& guess, const Ops& ops, std::vector<RawFrame>* frames);
  WalkStatus walk_interpreter_frames(const ThreadState& ts, Guess& guess, uint64_t top, bool chunk_ok,
                                     const Ops& ops, std::vector<RawFrame>* frames);
  size_t chunk_used(const ThreadState& ts) const;
  WalkStatus walk_chain(const ThreadState& ts, Guess& g, uint64_t top, bool chunk_ok, const Ops& ops,
                        std::vector<RawFrame>* frames, size_t* n_outside);
  const uint8_t* frame_bytes(uint64_t addr, Guess& g, const Ops& ops, size_t* n_outside);
  bool reread_grown_part(uint64_t top);
  const uint8_t* confirmed_frame(uint64_t addr) const;

  RemoteMemory& mem_;
  const Layout& l_;
  std::vector<uint8_t> ts_buf_;
  std::unordered_map<uint64_t, Guess> guesses_;
  // The chunk copy the current walk decodes from (3.11+).
  const uint8_t* chunk_data_ = nullptr;
  uint64_t chunk_base_ = 0;
  size_t chunk_len_ = 0;
  size_t copied_len_ = 0;    // bytes of the chunk copy (the used part and some slack)
  uint64_t grown_lo_ = 0, grown_hi_ = 0;  // the part of the chunk read again (reread_grown_part)
  std::vector<uint8_t> grown_buf_;
  uint64_t chunk_end_ = 0;
  uint64_t stack_top_ = 0;   // frames of the chunk copy at or above this may be stale   // end of the current chunk: frames between the stack top and it are dead
  bool last_unchanged_ = false;
  size_t late_reads_ = 0;    // reads of this walk made after the thread state (not covered by the before/after check)
  size_t frame_read_ = 0;  // bytes read per frame: up to the last field used
  std::vector<uint8_t> one_frame_;
  std::vector<ReadOp> own_ops_;
  std::vector<uint64_t> walked_;   // remember_frames: this walk's frames, sorted
  std::vector<uint64_t> outside_;  // 3.11+: frames of this walk outside the chunk
  size_t outside_hint_ = 0;        // 3.11+: the guess entry frame_bytes tries first
  const FrameHints* hints_ = nullptr;
};

}  // namespace pyprofd
