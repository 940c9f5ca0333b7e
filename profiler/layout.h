// CPython struct layouts as data: one table per minor version, one walker.
// Offsets are byte offsets. 0 in a field marked "optional" means "absent in this version";
// elsewhere 0 can be a real offset, so walkers decide by the capability fields (has_*,
// frame_linkage, ...), never by zero or by the version number. Offsets are checked against
// the real headers by tests/unit/layout_offsets_test.cc.
#pragma once
#include <cstdint>
#include <string>

namespace pyprofd {

// How a thread's Python frames are linked.
enum class FrameLinkage : uint8_t {
  kFrameObjects,       // <=3.10: heap PyFrameObjects chained by f_back, tstate->frame is the top
  kInterpreterFrames,  // 3.11+: _PyInterpreterFrames (mostly in stack chunks) chained by previous
};

struct Layout {
  int major = 3;
  int minor = 0;
  // 3.13+: _PyRuntime starts with _Py_DebugOffsets; attach takes the offsets from the
  // target (debug_offsets.h) over this table.
  bool has_debug_offsets = false;

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
  // <=3.10: no native_thread_id, the kernel TID is read from glibc's struct pthread
  // (thread_id is a pthread_t pointing at it).
  bool tid_from_pthread = false;
  uint32_t ts_datastack_chunk = 0;     // optional (3.11+)

  // _PyCFrame (3.11-3.12 only; 0 is a real offset on 3.12)
  uint32_t cframe_current_frame = 0;
  // 3.11-3.12: ts_frame points at a _PyCFrame on the C stack, whose current_frame is the
  // top frame; otherwise ts_frame is the top frame itself.
  bool has_cframe = false;

  // PyFrameObject (<=3.10) or _PyInterpreterFrame (3.11+)
  uint32_t fr_size = 0;                // bytes to read for one frame
  uint32_t fr_back = 0;                // f_back / previous
  uint32_t fr_code = 0;                // f_code / f_executable
  uint32_t fr_lasti = 0;               // f_lasti (int, <=3.10) / prev_instr (3.11-3.12) / instr_ptr (3.13)
  uint32_t fr_owner = 0;               // owner (char); optional (3.12+: 3.11 has it too but see is_entry)
  uint32_t fr_is_entry = 0;            // is_entry (bool); optional (3.11 only)
  int owned_by_cstack = 3;             // value of FRAME_OWNED_BY_CSTACK (3.12+)
  FrameLinkage frame_linkage = FrameLinkage::kFrameObjects;
  // kFrameObjects: bytes per f_lasti unit (1 on 3.8-3.9, 2 on 3.10 where f_lasti counts
  // code units). 0 for kInterpreterFrames: fr_lasti is an instruction pointer there.
  uint8_t lasti_unit = 0;
  // 3.12+: the C stack pushes shim frames (owner == owned_by_cstack) that are not Python
  // code and are skipped. 3.11 has none: its entry frames (is_entry) are real frames.
  bool has_shim_frames = false;
  // Is a frame on a thread's chain live, or a torn read? kFrameObjects: the int8 at
  // fr_state is f_executing (3.8-3.9) or f_state (3.10); a frame being executed holds
  // fr_live_a or fr_live_b there, one on a free list or kept as a zombie holds neither.
  uint32_t fr_state = 0;
  int8_t fr_live_a = 0, fr_live_b = 0;
  // kInterpreterFrames: the owner value of a generator's own frame (-1: none). A chain
  // never ends at one: a generator frame caught while it is resumed has no callers yet.
  int owned_by_generator = -1;
  // kInterpreterFrames: the owner value of a frame in a thread's stack chunk. Generator
  // code is only ever there while the generator is being created (then copied into the
  // generator and popped): under the top of a stack such a frame is a stale copy.
  int owned_by_thread = -1;

  // _PyStackChunk (3.11+)
  // 3.11+: frames live in per-thread stack chunks (tstate->datastack_chunk/_top),
  // which are read in one piece.
  bool has_stack_chunks = false;
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
  uint32_t co_flags = 0;               // int: CO_GENERATOR, CO_COROUTINE, ... (a generator's code runs in its own frame)
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

  // Objects: ints, dicts, strings (remote objects layer)
  bool str_has_ready_bit = false;      // PyASCIIObject.state.ready (bit 7), 3.8-3.11: clear on a not-yet-ready (wstr) str
  uint32_t long_size = 16;             // PyLongObject ob_size (<=3.11) / long_value.lv_tag (3.12+)
  uint32_t long_digits = 24;           // ob_digit / long_value.ob_digit (30-bit digits)
  bool long_tagged = false;            // 3.12+: lv_tag = ndigits << 3 | sign (0 +, 1 zero, 2 -); else ob_size = +-ndigits
  uint32_t ht_cached_keys = 0;         // PyHeapTypeObject.ht_cached_keys (shared keys of managed dicts)
  // How an instance with Py_TPFLAGS_MANAGED_DICT keeps its attributes (3.11+; kNone before):
  //   kValuesOrDict: 3.11, a values pointer at managed_values, else a dict at managed_dict;
  //   kDictOrValues: 3.12, one PyDictOrValues word at managed_dict (odd: values - 1);
  //   kInlineValues: 3.13, values after the object (Py_TPFLAGS_INLINE_VALUES), else a dict.
  enum class ManagedDict : uint8_t { kNone, kValuesOrDict, kDictOrValues, kInlineValues };
  ManagedDict managed_dict_kind = ManagedDict::kNone;
  int32_t managed_dict = 0;            // offset of the managed dict pointer, before the object
  int32_t managed_values = 0;          // 3.11: offset of the PyDictValues pointer, before the object
  uint32_t values_header = 0;          // 3.13: PyDictValues {capacity, size, embedded, valid} before values[]
  // Containers (same on every supported version)
  uint32_t var_size = 16;              // PyVarObject.ob_size (list, tuple)
  uint32_t list_items = 24;            // PyListObject.ob_item (pointer to the items)
  uint32_t tuple_items = 24;           // PyTupleObject.ob_item (items inline; 32 from 3.14: ob_hash before them)
  uint32_t set_mask = 32;              // PySetObject.mask
  uint32_t set_table = 40;             // PySetObject.table: setentry {key, hash}, mask + 1 of them

  // 3.14+ (issue 18)
  // f_executable is a tagged _PyStackRef: the code object is the value with these low
  // bits cleared (3 on 3.14+: Py_TAG_BITS; 0 before, a plain pointer).
  uint32_t code_tag_bits = 0;
  // FRAME_OWNED_BY_INTERPRETER (3.14+): the entry frame every evaluation loop pushes (and
  // 3.15's base frame). Like owned_by_cstack it holds no Python code: a shim. -1: none.
  int owned_by_interpreter = -1;
  // PyThreadState.base_frame (3.15+; optional, 0 = absent): the sentinel frame, embedded in
  // the thread state, that every complete chain ends at. A chain ending at NULL first is torn.
  uint32_t ts_base_frame = 0;

  // The code object a frame's f_code / f_executable word refers to.
  uint64_t code_of(uint64_t executable) const { return executable & ~static_cast<uint64_t>(code_tag_bits); }
  // A frame owner value that marks a shim (no Python code): C-stack or interpreter entry.
  bool shim_owner(int owner) const {
    return has_shim_frames && (owner == owned_by_cstack || owner == owned_by_interpreter);
  }

  std::string name() const { return std::to_string(major) + "." + std::to_string(minor); }
};

// The built-in table for 3.minor, or nullptr if that version is not supported.
const Layout* builtin_layout(int major, int minor);

}  // namespace pyprofd
