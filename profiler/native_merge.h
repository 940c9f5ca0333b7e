// Merges a thread's native stack with its Python frames: each interpreter evaluation
// frame (_PyEval_EvalFrameDefault) in the native stack is replaced by the Python frames
// that loop was running. The walker's entry markers (RawFrame::entry) split the Python
// frames by loop: the innermost loop runs the innermost frames up to the first entry
// frame, and so on. On 3.12+ each loop is found by address (its shim frame lives in its
// native stack frame), which also finds loops whose function has no symbol (a stripped
// .cold part); before, by the function's name. Whatever does not pair is torn, never guessed.
#pragma once
#include <cstdint>
#include <vector>

#include "profiler/stack_walker.h"
#include "symbolizer/native_unwinder.h"

namespace pyprofd {

struct MergedFrame {
  int python = -1;                  // index into the Python frames, or -1: a native frame
  uint64_t pc = 0;                  // native: the address
  const NativeSymbol* sym = nullptr;  // native: its name
};

struct NativeFrameRef {
  uint64_t pc = 0;
  const NativeSymbol* sym = nullptr;
  uint64_t sp = 0;  // the frame's stack pointer, 0 if unknown
};

// True for the evaluation loop's own function (also its compiler-split parts: ".cold", ".lto_priv.0").
bool is_eval_function(const std::string& name);
// The interpreter's call machinery (vectorcall, PyObject_Call, ...) that --native hides
// between frames unless --native-all.
bool is_call_machinery(const std::string& name);

// Frames innermost first. complete: the native unwind reached the thread's first frame
// (if it was cut short, the Python frames of the loops it did not reach follow it).
// all: keep the call machinery and the native frames outside the outermost Python frame.
// False when the stacks cannot be paired.
bool merge_native(const std::vector<RawFrame>& python, const std::vector<NativeFrameRef>& native, bool complete,
                  bool all, std::vector<MergedFrame>* out);

// --async: how many of a merged stack's first frames are native, below its innermost Python
// frame (what that frame called into): the tail a running task's stack takes.
size_t leaf_tail(const std::vector<MergedFrame>& merged);

}  // namespace pyprofd
