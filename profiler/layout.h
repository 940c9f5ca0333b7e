// CPython struct layouts as data: one table per minor version, one walker.
// Offsets are byte offsets. 0 in a field marked "optional" means "absent in this version";
// elsewhere 0 can be a real offset, so walkers decide by version, not by zero. Checked against the real headers by
// tests/unit/layout_offsets_test.cc.
#pragma once
#include <cstdint>
#include <string>

namespace pyprofd {

struct Layout {
  int major = 3;
  int minor = 0;
  bool has_debug_offsets = false;  // _PyRuntime starts with _Py_DebugOffsets (3.13+): prefer them to this table

  // _PyRuntimeState
  uint32_t rt_interpreters_head = 0;   // interpreters.head
  uint32_t rt_main_thread = 0;         // main_thread (pthread_t of the main thread)
  uint32_t rt_tstate_current = 0;      // gilstate.tstate_current; optional (<=3.11 only)
  uint32_t rt_gil = 0;                 // ceval.gil (embedded struct); optional (<=3.11 only)

  // PyInterpreterState
  uint32_t is_next = 0;
  uint32_t is_threads_head = 0;        // tstate_head (<=3.10) / threads.head (3.11+)
  uint32_t is_modules = 0;             // modules (sys.modules dict); optional (0 = absent)
  uint32_t is_gil_ptr = 0;             // ceval.gil (pointer); optional (3.12+ only)

  // struct _gil_runtime_state
  uint32_t gil_last_holder = 0;
  uint32_t gil_locked = 0;

  // PyThreadState
  uint32_t ts_size = 0;                // bytes to read for one thread state
  uint32_t ts_next = 0;
  uint32_t ts_interp = 0;
  uint32_t ts_frame = 0;               // frame (<=3.10) / cframe (3.11-3.12) / current_frame (3.13)
  uint32_t ts_thread_id = 0;
  uint32_t ts_native_thread_id = 0;    // optional (3.11+)
  uint32_t ts_datastack_chunk = 0;     // optional (3.11+)

  // _PyCFrame (3.11-3.12 only; 0 is a real offset on 3.12)
  uint32_t cframe_current_frame = 0;

  // PyFrameObject (<=3.10) or _PyInterpreterFrame (3.11+)
  uint32_t fr_size = 0;                // bytes to read for one frame
  uint32_t fr_back = 0;                // f_back / previous
  uint32_t fr_code = 0;                // f_code / f_executable
  uint32_t fr_lasti = 0;               // f_lasti (int, <=3.10) / prev_instr (3.11-3.12) / instr_ptr (3.13)
  uint32_t fr_owner = 0;               // owner (char); optional (3.12+: 3.11 has it too but see is_entry)
  uint32_t fr_is_entry = 0;            // is_entry (bool); optional (3.11 only)
  int owned_by_cstack = 3;             // value of FRAME_OWNED_BY_CSTACK (3.12+)

  // _PyStackChunk (3.11+)
  uint32_t chunk_previous = 0;
  uint32_t chunk_size = 0;
  uint32_t chunk_top = 0;
  uint32_t chunk_data = 0;

  // PyCodeObject
  uint32_t co_size = 0;                // bytes to read for the fields below
  uint32_t co_filename = 0;
  uint32_t co_name = 0;
  uint32_t co_qualname = 0;            // optional (3.11+)
  uint32_t co_firstlineno = 0;         // int
  uint32_t co_linetable = 0;           // co_lnotab (<=3.9) / co_linetable (3.10+): a bytes object
  uint32_t co_code_adaptive = 0;       // optional (3.11+): start of the instructions

  // PyUnicodeObject
  uint32_t str_length = 0;             // PyASCIIObject.length
  uint32_t str_state = 0;              // PyASCIIObject.state (bit field: kind bits 2-4, compact bit 5, ascii bit 6)
  uint32_t str_ascii_size = 0;         // sizeof(PyASCIIObject): compact ASCII data follows
  uint32_t str_compact_size = 0;       // sizeof(PyCompactUnicodeObject): other compact data follows
  uint32_t str_data_any = 0;           // PyUnicodeObject.data.any (non-compact strings)

  // PyBytesObject
  uint32_t bytes_size = 0;             // ob_size
  uint32_t bytes_sval = 0;             // ob_sval

  // PyObject / PyTypeObject
  uint32_t ob_type = 8;
  uint32_t tp_name = 0;
  uint32_t tp_flags = 0;
  uint32_t tp_basicsize = 0;
  uint32_t tp_dictoffset = 0;

  // PyDictObject / PyDictKeysObject (for module and instance attribute lookups)
  uint32_t dict_used = 0;              // ma_used
  uint32_t dict_keys = 0;              // ma_keys
  uint32_t dict_values = 0;            // ma_values
  uint32_t dk_size = 0;                // dk_size (<=3.10, Py_ssize_t) / dk_log2_size (3.11+, uint8)
  uint32_t dk_kind = 0;                // dk_kind (3.11+, uint8); optional
  uint32_t dk_nentries = 0;
  uint32_t dk_indices = 0;             // start of dk_indices

  // PyModuleObject
  uint32_t mod_dict = 0;               // md_dict

  std::string name() const { return std::to_string(major) + "." + std::to_string(minor); }
};

// The built-in table for 3.minor, or nullptr if that version is not supported.
const Layout* builtin_layout(int major, int minor);

}  // namespace pyprofd
