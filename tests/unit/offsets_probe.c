/* Prints the true CPython layout as name=value lines, one per pyprofd::Layout
 * field. Compiled by layout_offsets_test.cc against one version's headers
 * (with -DPy_BUILD_CORE) and linked with its libpython. A field absent in a
 * version prints 0. The few structs that 3.8-3.10 keep out of the installed
 * headers (PyDictKeysObject, 3.8/3.9 PyModuleObject) are measured from live
 * objects instead, so no struct definition is copied here. */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <frameobject.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>

#if PY_MINOR_VERSION == 8
#include "internal/pycore_pystate.h"
#else
#include "internal/pycore_interp.h"
#include "internal/pycore_runtime.h"
#endif
#if PY_MINOR_VERSION >= 10
#include "internal/pycore_moduleobject.h"
#endif
#if PY_MINOR_VERSION >= 11
#include "internal/pycore_dict.h"
#include "internal/pycore_frame.h"
#endif
#if PY_MINOR_VERSION >= 14
#include "internal/pycore_stackref.h"
#endif

#define P(name, value) printf("%s=%lld\n", (name), (long long)(value))
#define OFF(type, member) offsetof(type, member)

#if PY_MINOR_VERSION <= 10
/* PyDictKeysObject is private before 3.11: build {0: None, 1: None, 2: None}
 * (8 slots, 3 entries, 2 usable) and find the fields by their known values. */
static void measure_dict_keys(void) {
  PyObject* d = PyDict_New();
  long i;
  for (i = 0; i < 3; i++) {
    PyObject* k = PyLong_FromLong(i);
    PyDict_SetItem(d, k, Py_None);
    Py_DECREF(k);
  }
  const unsigned char* keys = (const unsigned char*)((PyDictObject*)d)->ma_keys;
  const unsigned char want_ix[8] = {0, 1, 2, 0xff, 0xff, 0xff, 0xff, 0xff};
  long size_off = -1, nentries_off = -1, indices_off = -1, off;
  for (off = 0; off < 64; off += 8) {
    Py_ssize_t w;
    memcpy(&w, keys + off, sizeof w);
    if (size_off < 0 && w == 8) size_off = off;
    else if (size_off >= 0 && nentries_off < 0 && w == 3) nentries_off = off;
    else if (nentries_off >= 0 && memcmp(keys + off, want_ix, 8) == 0) {
      indices_off = off;
      break;
    }
  }
  P("dk_size", size_off);
  P("dk_kind", 0);
  P("dk_nentries", nentries_off);
  P("dk_indices", indices_off);
  Py_DECREF(d);
}
#endif

/* The str state bit field cannot be offsetof'ed: set one field, find its bit. */
static int lowest_bit(unsigned int v) {
  int b;
  for (b = 0; b < 32; b++)
    if (v & (1u << b)) return b;
  return -1;
}

static void print_str_state_bits(void) {
  PyASCIIObject o;
  unsigned int word;
  memset(&o, 0, sizeof o);
  o.state.kind = 1;
  memcpy(&word, &o.state, sizeof word);
  P("state_kind_shift", lowest_bit(word));
  memset(&o, 0, sizeof o);
  o.state.compact = 1;
  memcpy(&word, &o.state, sizeof word);
  P("state_compact_shift", lowest_bit(word));
  memset(&o, 0, sizeof o);
  o.state.ascii = 1;
  memcpy(&word, &o.state, sizeof word);
  P("state_ascii_shift", lowest_bit(word));
}

int main(void) {
  P("major", PY_MAJOR_VERSION);
  P("minor", PY_MINOR_VERSION);

  /* _PyRuntimeState */
  P("rt_interpreters_head", OFF(_PyRuntimeState, interpreters.head));
  P("rt_main_thread", OFF(_PyRuntimeState, main_thread));
#if PY_MINOR_VERSION <= 11
  P("rt_tstate_current", OFF(_PyRuntimeState, gilstate.tstate_current));
  P("rt_gil", OFF(_PyRuntimeState, ceval.gil));
#else
  P("rt_tstate_current", 0);
  P("rt_gil", 0);
#endif

  /* PyInterpreterState */
  P("is_next", OFF(PyInterpreterState, next));
#if PY_MINOR_VERSION <= 10
  P("is_threads_head", OFF(PyInterpreterState, tstate_head));
#else
  P("is_threads_head", OFF(PyInterpreterState, threads.head));
#endif
#if PY_MINOR_VERSION <= 11
  P("is_modules", OFF(PyInterpreterState, modules));
  P("is_gil_ptr", 0);
#else
  P("is_modules", OFF(PyInterpreterState, imports.modules));
  P("is_gil_ptr", OFF(PyInterpreterState, ceval.gil));
#endif

  P("gil_last_holder", OFF(struct _gil_runtime_state, last_holder));
  P("gil_locked", OFF(struct _gil_runtime_state, locked));

  /* PyThreadState */
  P("ts_size", sizeof(PyThreadState));
  P("ts_next", OFF(PyThreadState, next));
  P("ts_interp", OFF(PyThreadState, interp));
#if PY_MINOR_VERSION <= 10
  P("ts_frame", OFF(PyThreadState, frame));
#elif PY_MINOR_VERSION <= 12
  P("ts_frame", OFF(PyThreadState, cframe));
#else
  P("ts_frame", OFF(PyThreadState, current_frame));
#endif
  P("ts_thread_id", OFF(PyThreadState, thread_id));
#if PY_MINOR_VERSION >= 11
  P("ts_native_thread_id", OFF(PyThreadState, native_thread_id));
  P("ts_datastack_chunk", OFF(PyThreadState, datastack_chunk));
#else
  P("ts_native_thread_id", 0);
  P("ts_datastack_chunk", 0);
#endif

#if PY_MINOR_VERSION == 11 || PY_MINOR_VERSION == 12
  P("cframe_current_frame", OFF(_PyCFrame, current_frame));
#else
  P("cframe_current_frame", 0);
#endif

  /* Frames: the fixed part only (locals follow). */
#if PY_MINOR_VERSION <= 10
  P("fr_size", OFF(PyFrameObject, f_localsplus));
  P("fr_back", OFF(PyFrameObject, f_back));
  P("fr_code", OFF(PyFrameObject, f_code));
  P("fr_lasti", OFF(PyFrameObject, f_lasti));
  P("fr_owner", 0);
  P("fr_is_entry", 0);
  P("owned_by_cstack", -1);
  P("owned_by_generator", -1);
  P("owned_by_thread", -1);
#if PY_MINOR_VERSION <= 9
  P("fr_state", OFF(PyFrameObject, f_executing));
  P("fr_live_a", 1);
  P("fr_live_b", 1);
#else
  P("fr_state", OFF(PyFrameObject, f_state));
  P("fr_live_a", FRAME_EXECUTING);
  P("fr_live_b", FRAME_UNWINDING);
#endif
#else
  P("owned_by_generator", FRAME_OWNED_BY_GENERATOR);
  P("owned_by_thread", FRAME_OWNED_BY_THREAD);
  P("fr_state", 0);
  P("fr_live_a", 0);
  P("fr_live_b", 0);
  P("fr_size", OFF(_PyInterpreterFrame, localsplus));
  P("fr_back", OFF(_PyInterpreterFrame, previous));
  P("fr_owner", OFF(_PyInterpreterFrame, owner));
#if PY_MINOR_VERSION <= 12
  P("fr_code", OFF(_PyInterpreterFrame, f_code));
  P("fr_lasti", OFF(_PyInterpreterFrame, prev_instr));
#else
  P("fr_code", OFF(_PyInterpreterFrame, f_executable));
  P("fr_lasti", OFF(_PyInterpreterFrame, instr_ptr));
#endif
#if PY_MINOR_VERSION == 11
  P("fr_is_entry", OFF(_PyInterpreterFrame, is_entry));
  P("owned_by_cstack", -1);
#elif PY_MINOR_VERSION <= 14
  P("fr_is_entry", 0);
  P("owned_by_cstack", FRAME_OWNED_BY_CSTACK);
#else
  P("fr_is_entry", 0);
  P("owned_by_cstack", -1); /* 3.15 has no C-stack owner */
#endif
#endif
#if PY_MINOR_VERSION >= 14
  P("owned_by_interpreter", FRAME_OWNED_BY_INTERPRETER);
  P("code_tag_bits", Py_TAG_BITS);
#else
  P("owned_by_interpreter", -1);
  P("code_tag_bits", 0);
#endif
#if PY_MINOR_VERSION >= 15
  P("ts_base_frame", OFF(PyThreadState, base_frame));
#else
  P("ts_base_frame", 0);
#endif
  P("tuple_items", OFF(PyTupleObject, ob_item));

#if PY_MINOR_VERSION >= 11
  P("chunk_previous", OFF(_PyStackChunk, previous));
  P("chunk_size", OFF(_PyStackChunk, size));
  P("chunk_top", OFF(_PyStackChunk, top));
  P("chunk_data", OFF(_PyStackChunk, data));
#else
  P("chunk_previous", 0);
  P("chunk_size", 0);
  P("chunk_top", 0);
  P("chunk_data", 0);
#endif

  /* PyCodeObject */
#if PY_MINOR_VERSION >= 11
  P("co_size", OFF(PyCodeObject, co_code_adaptive));
  P("co_qualname", OFF(PyCodeObject, co_qualname));
  P("co_code_adaptive", OFF(PyCodeObject, co_code_adaptive));
#else
  P("co_size", sizeof(PyCodeObject));
  P("co_qualname", 0);
  P("co_code_adaptive", 0);
#endif
  P("co_filename", OFF(PyCodeObject, co_filename));
  P("co_name", OFF(PyCodeObject, co_name));
  P("co_firstlineno", OFF(PyCodeObject, co_firstlineno));
  P("co_flags", OFF(PyCodeObject, co_flags));
#if PY_MINOR_VERSION <= 9
  P("co_linetable", OFF(PyCodeObject, co_lnotab));
#else
  P("co_linetable", OFF(PyCodeObject, co_linetable));
#endif

  /* str / bytes */
  P("str_length", OFF(PyASCIIObject, length));
  P("str_state", OFF(PyASCIIObject, state));
  P("str_ascii_size", sizeof(PyASCIIObject));
  P("str_compact_size", sizeof(PyCompactUnicodeObject));
  P("str_data_any", OFF(PyUnicodeObject, data.any));
  print_str_state_bits();
  P("bytes_size", OFF(PyBytesObject, ob_base.ob_size));
  P("bytes_sval", OFF(PyBytesObject, ob_sval));

  /* PyObject / PyTypeObject */
  P("ob_type", OFF(PyObject, ob_type));
  P("tp_name", OFF(PyTypeObject, tp_name));
  P("tp_flags", OFF(PyTypeObject, tp_flags));
  P("tp_basicsize", OFF(PyTypeObject, tp_basicsize));
  P("tp_dictoffset", OFF(PyTypeObject, tp_dictoffset));

  /* dict */
  P("dict_used", OFF(PyDictObject, ma_used));
  P("dict_keys", OFF(PyDictObject, ma_keys));
  P("dict_values", OFF(PyDictObject, ma_values));
#if PY_MINOR_VERSION >= 11
  P("dk_size", OFF(PyDictKeysObject, dk_log2_size));
  P("dk_kind", OFF(PyDictKeysObject, dk_kind));
  P("dk_nentries", OFF(PyDictKeysObject, dk_nentries));
  P("dk_indices", OFF(PyDictKeysObject, dk_indices));
#else
  Py_InitializeEx(0);
  measure_dict_keys();
#endif

  /* module: the module type's own tp_dictoffset is offsetof(md_dict). */
#if PY_MINOR_VERSION >= 10
  P("mod_dict", OFF(PyModuleObject, md_dict));
#else
  P("mod_dict", PyModule_Type.tp_dictoffset);
#endif
  P("mod_type_dictoffset", PyModule_Type.tp_dictoffset);

#if PY_MINOR_VERSION >= 13
  /* Shape of _Py_DebugOffsets, to check pyprofd's mirror of it. */
  P("dbg_runtime_offset", OFF(_PyRuntimeState, debug_offsets));
  P("dbg_size", sizeof(_Py_DebugOffsets));
  P("dbg_interpreter_state", OFF(_Py_DebugOffsets, interpreter_state));
  P("dbg_thread_state", OFF(_Py_DebugOffsets, thread_state));
  P("dbg_interpreter_frame", OFF(_Py_DebugOffsets, interpreter_frame));
  P("dbg_code_object", OFF(_Py_DebugOffsets, code_object));
  P("dbg_unicode_object", OFF(_Py_DebugOffsets, unicode_object));
  P("dbg_gc", OFF(_Py_DebugOffsets, gc));
  P("dbg_type_object", OFF(_Py_DebugOffsets, type_object));
  P("dbg_tuple_object", OFF(_Py_DebugOffsets, tuple_object));
#endif
  return 0;
}
