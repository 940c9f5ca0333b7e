// CPython 3.13 starts _PyRuntime with _Py_DebugOffsets: a cookie, the version
// and the offsets a debugger needs, written by the interpreter itself. Reading
// them from the target beats a built-in table when they are there.
#pragma once
#include <cstdint>
#include <string>

#include "profiler/layout.h"
#include "profiler/remote_memory.h"

namespace pyprofd {

// Our mirror of 3.13's _Py_DebugOffsets (field order of
// include/python3.13/internal/pycore_runtime.h; every field is a uint64).
struct DebugOffsets313 {
  char cookie[8];
  uint64_t version;  // PY_VERSION_HEX
  uint64_t free_threaded;
  struct { uint64_t size, finalizing, interpreters_head; } runtime_state;
  struct {
    uint64_t size, id, next, threads_head, gc, imports_modules, sysdict, builtins, ceval_gil,
        gil_runtime_state, gil_runtime_state_enabled, gil_runtime_state_locked,
        gil_runtime_state_holder;
  } interpreter_state;
  struct {
    uint64_t size, prev, next, interp, current_frame, thread_id, native_thread_id,
        datastack_chunk, status;
  } thread_state;
  struct { uint64_t size, previous, executable, instr_ptr, localsplus, owner; } interpreter_frame;
  struct {
    uint64_t size, filename, name, qualname, linetable, firstlineno, argcount, localsplusnames,
        localspluskinds, co_code_adaptive;
  } code_object;
  struct { uint64_t size, ob_type; } pyobject;
  struct { uint64_t size, tp_name, tp_repr, tp_flags; } type_object;
  struct { uint64_t size, ob_item, ob_size; } tuple_object;
  struct { uint64_t size, ob_item, ob_size; } list_object;
  struct { uint64_t size, ma_keys, ma_values; } dict_object;
  struct { uint64_t size, ob_fval; } float_object;
  struct { uint64_t size, lv_tag, ob_digit; } long_object;
  struct { uint64_t size, ob_size, ob_sval; } bytes_object;
  struct { uint64_t size, state, length, asciiobject_size; } unicode_object;
  struct { uint64_t size, collecting; } gc;
};
static_assert(sizeof(DebugOffsets313) == 584, "mirror of 3.13 _Py_DebugOffsets");

constexpr char kDebugCookie[8] = {'x', 'd', 'e', 'b', 'u', 'g', 'p', 'y'};
constexpr uint64_t kMaxDebugOffset = 64 * 1024;        // any field offset we accept
constexpr uint64_t kMaxDebugStructSize = 16u << 20;    // runtime/interpreter are big

// Checks `d` against layout->major/minor (3.13 only) and, if every offset we use
// is sane, overrides the matching Layout fields. Leaves *layout untouched on error.
bool apply_debug_offsets(const DebugOffsets313& d, Layout* layout, std::string* error);

// Reads the struct at runtime_addr (the address of _PyRuntime) and applies it.
bool apply_debug_offsets(RemoteMemory& mem, uint64_t runtime_addr, Layout* layout,
                         std::string* error);

}  // namespace pyprofd
