// CPython 3.13+ starts _PyRuntime with _Py_DebugOffsets: a cookie, the version
// and the offsets a debugger needs, written by the interpreter itself. Reading
// them from the target beats a built-in table when they are there.
#pragma once
#include <cstdint>
#include <string>

#include "profiler/layout.h"
#include "profiler/remote_memory.h"

namespace pyprofd {

// Our mirrors of _Py_DebugOffsets, one per structure version: fields are inserted in
// the middle of sections from one version to the next, so each version needs its own.
// The field order is that of the version's own header (every field is a uint64):
// 3.13 internal/pycore_runtime.h, 3.14/3.15 internal/pycore_debug_offsets.h.
// Sections that several versions share have one type here.
namespace dbg {
struct Runtime { uint64_t size, finalizing, interpreters_head; };
struct PyObject { uint64_t size, ob_type; };
struct Sequence { uint64_t size, ob_item, ob_size; };  // tuple_object, list_object
struct Dict { uint64_t size, ma_keys, ma_values; };
struct Float { uint64_t size, ob_fval; };
struct Long { uint64_t size, lv_tag, ob_digit; };
struct Bytes { uint64_t size, ob_size, ob_sval; };
struct Set { uint64_t size, used, table, mask; };  // 3.14+
struct Gen { uint64_t size, gi_name, gi_iframe, gi_frame_state; };
struct LlistNode { uint64_t next, prev; };
struct DebuggerSupport {
  uint64_t eval_breaker, remote_debugger_support, remote_debugging_enabled, debugger_pending_call,
      debugger_script_path, debugger_script_path_size;
};
// 3.14 and 3.15: threads_main, code_object_generation and tlbc_generation are new.
struct Interpreter314 {
  uint64_t size, id, next, threads_head, threads_main, gc, imports_modules, sysdict, builtins, ceval_gil,
      gil_runtime_state, gil_runtime_state_enabled, gil_runtime_state_locked, gil_runtime_state_holder,
      code_object_generation, tlbc_generation;
};
struct Frame314 { uint64_t size, previous, executable, instr_ptr, localsplus, owner, stackpointer, tlbc_index; };
// 3.13 and 3.14 (3.15 inserts fields in these).
struct Thread313 {
  uint64_t size, prev, next, interp, current_frame, thread_id, native_thread_id, datastack_chunk, status;
};
struct Type313 { uint64_t size, tp_name, tp_repr, tp_flags; };
struct Unicode313 { uint64_t size, state, length, asciiobject_size; };
struct Gc313 { uint64_t size, collecting; };
struct Code314 {
  uint64_t size, filename, name, qualname, linetable, firstlineno, argcount, localsplusnames, localspluskinds,
      co_code_adaptive, co_tlbc;
};
}  // namespace dbg

struct DebugOffsets313 {
  char cookie[8];
  uint64_t version;  // PY_VERSION_HEX
  uint64_t free_threaded;
  dbg::Runtime runtime_state;
  struct {
    uint64_t size, id, next, threads_head, gc, imports_modules, sysdict, builtins, ceval_gil,
        gil_runtime_state, gil_runtime_state_enabled, gil_runtime_state_locked,
        gil_runtime_state_holder;
  } interpreter_state;
  dbg::Thread313 thread_state;
  struct { uint64_t size, previous, executable, instr_ptr, localsplus, owner; } interpreter_frame;
  struct {
    uint64_t size, filename, name, qualname, linetable, firstlineno, argcount, localsplusnames,
        localspluskinds, co_code_adaptive;
  } code_object;
  dbg::PyObject pyobject;
  dbg::Type313 type_object;
  dbg::Sequence tuple_object, list_object;
  dbg::Dict dict_object;
  dbg::Float float_object;
  dbg::Long long_object;
  dbg::Bytes bytes_object;
  dbg::Unicode313 unicode_object;
  dbg::Gc313 gc;
};
static_assert(sizeof(DebugOffsets313) == 584, "mirror of 3.13 _Py_DebugOffsets");

// 3.14 (H314 internal/pycore_debug_offsets.h:67-236): set_object, gen_object, llist_node
// and debugger_support are new sections; frames and code objects gained fields.
struct DebugOffsets314 {
  char cookie[8];
  uint64_t version;
  uint64_t free_threaded;
  dbg::Runtime runtime_state;
  dbg::Interpreter314 interpreter_state;
  dbg::Thread313 thread_state;
  dbg::Frame314 interpreter_frame;
  dbg::Code314 code_object;
  dbg::PyObject pyobject;
  dbg::Type313 type_object;
  dbg::Sequence tuple_object, list_object;
  dbg::Set set_object;
  dbg::Dict dict_object;
  dbg::Float float_object;
  dbg::Long long_object;
  dbg::Bytes bytes_object;
  dbg::Unicode313 unicode_object;
  dbg::Gc313 gc;
  dbg::Gen gen_object;
  dbg::LlistNode llist_node;
  dbg::DebuggerSupport debugger_support;
};
static_assert(sizeof(DebugOffsets314) == 760, "mirror of 3.14 _Py_DebugOffsets");

// 3.15 (H315 internal/pycore_debug_offsets.h:67-260): thread_state gains base_frame,
// last_profiled_frame(_seq) after current_frame and holds_gil ... exc_state after status;
// err_stackitem, tp_basicsize/tp_dictoffset, heap_type_object, compactunicodeobject_size
// and three gc fields are new.
struct DebugOffsets315 {
  char cookie[8];
  uint64_t version;
  uint64_t free_threaded;
  dbg::Runtime runtime_state;
  dbg::Interpreter314 interpreter_state;
  struct {
    uint64_t size, prev, next, interp, current_frame, base_frame, last_profiled_frame,
        last_profiled_frame_seq, thread_id, native_thread_id, datastack_chunk, status, holds_gil,
        gil_requested, current_exception, exc_state;
  } thread_state;
  struct { uint64_t exc_value; } err_stackitem;
  dbg::Frame314 interpreter_frame;
  dbg::Code314 code_object;
  dbg::PyObject pyobject;
  struct { uint64_t size, tp_name, tp_repr, tp_flags, tp_basicsize, tp_dictoffset; } type_object;
  struct { uint64_t size, ht_cached_keys; } heap_type_object;
  dbg::Sequence tuple_object, list_object;
  dbg::Set set_object;
  dbg::Dict dict_object;
  dbg::Float float_object;
  dbg::Long long_object;
  dbg::Bytes bytes_object;
  struct { uint64_t size, state, length, asciiobject_size, compactunicodeobject_size; } unicode_object;
  struct { uint64_t size, collecting, frame, generation_stats_size, generation_stats; } gc;
  dbg::Gen gen_object;
  dbg::LlistNode llist_node;
  dbg::DebuggerSupport debugger_support;
};
static_assert(sizeof(DebugOffsets315) == 888, "mirror of 3.15 _Py_DebugOffsets");

constexpr char kDebugCookie[8] = {'x', 'd', 'e', 'b', 'u', 'g', 'p', 'y'};
constexpr uint64_t kMaxDebugOffset = 64 * 1024;        // any field offset we accept
constexpr uint64_t kMaxDebugStructSize = 16u << 20;    // runtime/interpreter are big

// Checks `d` against layout->major/minor (the mirror's own version) and, if every
// offset we use is sane, overrides the matching Layout fields. Leaves *layout
// untouched on error. A free-threaded build is refused (kFreeThreadedError in *error).
bool apply_debug_offsets(const DebugOffsets313& d, Layout* layout, std::string* error);
bool apply_debug_offsets(const DebugOffsets314& d, Layout* layout, std::string* error);
bool apply_debug_offsets(const DebugOffsets315& d, Layout* layout, std::string* error);

// The error text apply_debug_offsets gives for a free-threaded (Py_GIL_DISABLED) build.
constexpr const char* kFreeThreadedError = "free-threaded build (Py_GIL_DISABLED)";

// Reads the struct at runtime_addr (the address of _PyRuntime): its cookie and version
// first, then the mirror that version's structure has; a version without a mirror is
// refused, never guessed.
bool apply_debug_offsets(RemoteMemory& mem, uint64_t runtime_addr, Layout* layout,
                         std::string* error);

}  // namespace pyprofd
