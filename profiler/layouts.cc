// Built-in CPython layouts for x86_64, 3.8-3.15. Every number was printed by
// tests/unit/offsets_probe.c compiled against that version's own headers, and
// tests/unit/layout_offsets_test.cc re-checks them all; fields absent in a
// version stay 0. An explicit "= 0" marks a field that really is at offset 0.
// owned_by_cstack is -1 up to 3.11: no frame owner value means "C stack" there.
// Capability fields (has_*, frame_linkage, lasti_unit, tid_from_pthread) are set
// explicitly per version; see layout.h for what each one means.
// 3.8-3.10 keep PyDictKeysObject (and 3.8/3.9 PyModuleObject) out of the
// installed headers; the probe measures those on live objects instead.
#include "profiler/layout.h"

namespace pyprofd {
namespace {

// 3.8: the GIL is _PyRuntime.ceval.gil, after the pending-calls queue.
Layout make_3_8() {
  Layout l;
  l.minor = 8;
  l.rt_interpreters_head = 32; l.rt_main_thread = 72; l.rt_tstate_current = 1368; l.rt_gil = 1152;
  l.is_next = 0; l.is_threads_head = 8; l.is_modules = 56; l.gil_last_holder = 8; l.gil_locked = 16;
  l.ts_size = 264; l.ts_next = 8; l.ts_interp = 16; l.ts_frame = 24; l.ts_thread_id = 176;
  l.fr_size = 360; l.fr_back = 24; l.fr_code = 32; l.fr_lasti = 104; l.owned_by_cstack = -1;
  l.frame_linkage = FrameLinkage::kFrameObjects; l.lasti_unit = 1; l.tid_from_pthread = true;
  l.fr_state = 116; l.fr_live_a = 1; l.fr_live_b = 1;  // f_executing
  l.co_size = 176; l.co_filename = 104; l.co_name = 112; l.co_firstlineno = 40; l.co_flags = 36; l.co_linetable = 120;
  l.str_length = 16; l.str_state = 32; l.str_ascii_size = 48; l.str_compact_size = 72; l.str_data_any = 72;
  l.bytes_size = 16; l.bytes_sval = 32;
  l.ob_type = 8; l.tp_name = 24; l.tp_flags = 168; l.tp_basicsize = 32; l.tp_dictoffset = 288;
  l.mod_dict = 16;
  l.dict_used = 16; l.dict_keys = 32; l.dict_values = 40; l.dk_size = 8; l.dk_nentries = 32;
  l.dk_indices = 40;
  l.str_has_ready_bit = true; l.long_size = 16; l.long_digits = 24; l.long_tagged = false; l.ht_cached_keys = 872;
  l.managed_dict_kind = Layout::ManagedDict::kNone;
  return l;
}

// 3.9/3.10: ceval shrank to {signals_pending, gil}; the GIL is still runtime-wide
// (it moves into the interpreter only with EXPERIMENTAL_ISOLATED_SUBINTERPRETERS).
Layout make_3_9() {
  Layout l;
  l.minor = 9;
  l.rt_interpreters_head = 32; l.rt_main_thread = 72; l.rt_tstate_current = 568; l.rt_gil = 352;
  l.is_next = 0; l.is_threads_head = 8; l.is_modules = 856; l.gil_last_holder = 8; l.gil_locked = 16;
  l.ts_size = 264; l.ts_next = 8; l.ts_interp = 16; l.ts_frame = 24; l.ts_thread_id = 176;
  l.fr_size = 360; l.fr_back = 24; l.fr_code = 32; l.fr_lasti = 104; l.owned_by_cstack = -1;
  l.frame_linkage = FrameLinkage::kFrameObjects; l.lasti_unit = 1; l.tid_from_pthread = true;
  l.fr_state = 116; l.fr_live_a = 1; l.fr_live_b = 1;  // f_executing
  l.co_size = 176; l.co_filename = 104; l.co_name = 112; l.co_firstlineno = 40; l.co_flags = 36; l.co_linetable = 120;
  l.str_length = 16; l.str_state = 32; l.str_ascii_size = 48; l.str_compact_size = 72; l.str_data_any = 72;
  l.bytes_size = 16; l.bytes_sval = 32;
  l.ob_type = 8; l.tp_name = 24; l.tp_flags = 168; l.tp_basicsize = 32; l.tp_dictoffset = 288;
  l.mod_dict = 16;
  l.dict_used = 16; l.dict_keys = 32; l.dict_values = 40; l.dk_size = 8; l.dk_nentries = 32;
  l.dk_indices = 40;
  l.str_has_ready_bit = true; l.long_size = 16; l.long_digits = 24; l.long_tagged = false; l.ht_cached_keys = 864;
  l.managed_dict_kind = Layout::ManagedDict::kNone;
  return l;
}

Layout make_3_10() {
  Layout l;
  l.minor = 10;
  l.rt_interpreters_head = 32; l.rt_main_thread = 72; l.rt_tstate_current = 568; l.rt_gil = 352;
  l.is_next = 0; l.is_threads_head = 8; l.is_modules = 856; l.gil_last_holder = 8; l.gil_locked = 16;
  l.ts_size = 280; l.ts_next = 8; l.ts_interp = 16; l.ts_frame = 24; l.ts_thread_id = 176;
  l.fr_size = 352; l.fr_back = 24; l.fr_code = 32; l.fr_lasti = 96; l.owned_by_cstack = -1;
  l.frame_linkage = FrameLinkage::kFrameObjects; l.lasti_unit = 2; l.tid_from_pthread = true;
  l.fr_state = 108; l.fr_live_a = 0; l.fr_live_b = 2;  // f_state: FRAME_EXECUTING, FRAME_UNWINDING
  l.co_size = 176; l.co_filename = 104; l.co_name = 112; l.co_firstlineno = 40; l.co_flags = 36; l.co_linetable = 120;
  l.str_length = 16; l.str_state = 32; l.str_ascii_size = 48; l.str_compact_size = 72; l.str_data_any = 72;
  l.bytes_size = 16; l.bytes_sval = 32;
  l.ob_type = 8; l.tp_name = 24; l.tp_flags = 168; l.tp_basicsize = 32; l.tp_dictoffset = 288;
  l.mod_dict = 16;
  l.dict_used = 16; l.dict_keys = 32; l.dict_values = 40; l.dk_size = 8; l.dk_nentries = 32;
  l.dk_indices = 40;
  l.str_has_ready_bit = true; l.long_size = 16; l.long_digits = 24; l.long_tagged = false; l.ht_cached_keys = 872;
  l.managed_dict_kind = Layout::ManagedDict::kNone;
  return l;
}

Layout make_3_11() {
  Layout l;
  l.minor = 11;
  l.rt_interpreters_head = 40; l.rt_main_thread = 80; l.rt_tstate_current = 576; l.rt_gil = 360;
  l.is_next = 0; l.is_threads_head = 16; l.is_modules = 888; l.gil_last_holder = 8; l.gil_locked = 16;
  l.ts_size = 360; l.ts_next = 8; l.ts_interp = 16; l.ts_frame = 56; l.ts_thread_id = 152;
  l.ts_native_thread_id = 160; l.ts_datastack_chunk = 296; l.cframe_current_frame = 8;
  l.fr_size = 72; l.fr_back = 48; l.fr_code = 32; l.fr_lasti = 56; l.fr_owner = 69; l.fr_is_entry = 68;
  l.owned_by_cstack = -1;
  l.owned_by_generator = 1; l.owned_by_thread = 0;
  l.frame_linkage = FrameLinkage::kInterpreterFrames; l.has_cframe = true; l.has_stack_chunks = true;
  l.chunk_previous = 0; l.chunk_size = 8; l.chunk_top = 16; l.chunk_data = 24;
  l.co_size = 184; l.co_filename = 112; l.co_name = 120; l.co_qualname = 128; l.co_firstlineno = 72; l.co_flags = 48;
  l.co_linetable = 136; l.co_code_adaptive = 184;
  l.str_length = 16; l.str_state = 32; l.str_ascii_size = 48; l.str_compact_size = 72; l.str_data_any = 72;
  l.bytes_size = 16; l.bytes_sval = 32;
  l.ob_type = 8; l.tp_name = 24; l.tp_flags = 168; l.tp_basicsize = 32; l.tp_dictoffset = 288;
  l.mod_dict = 16;
  l.dict_used = 16; l.dict_keys = 32; l.dict_values = 40; l.dk_size = 8; l.dk_kind = 10; l.dk_nentries = 24;
  l.dk_indices = 32;
  l.str_has_ready_bit = true; l.long_size = 16; l.long_digits = 24; l.long_tagged = false; l.ht_cached_keys = 872;
  l.managed_dict_kind = Layout::ManagedDict::kValuesOrDict; l.managed_dict = -24; l.managed_values = -32;
  return l;
}

// 3.12+: no runtime GIL or tstate_current; interp->ceval.gil points at the GIL.
Layout make_3_12() {
  Layout l;
  l.minor = 12;
  l.rt_interpreters_head = 40; l.rt_main_thread = 64;
  l.is_next = 0; l.is_threads_head = 72; l.is_modules = 944; l.is_gil_ptr = 384; l.gil_last_holder = 8;
  l.gil_locked = 16;
  l.ts_size = 288; l.ts_next = 8; l.ts_interp = 16; l.ts_frame = 56; l.ts_thread_id = 136;
  l.ts_native_thread_id = 144; l.ts_datastack_chunk = 232;
  l.cframe_current_frame = 0;  // really 0: current_frame is _PyCFrame's first member in 3.12
  l.fr_size = 72; l.fr_back = 8; l.fr_code = 0; l.fr_lasti = 56; l.fr_owner = 70; l.owned_by_cstack = 3;
  l.owned_by_generator = 1; l.owned_by_thread = 0;
  l.frame_linkage = FrameLinkage::kInterpreterFrames; l.has_cframe = true; l.has_stack_chunks = true;
  l.has_shim_frames = true;
  l.chunk_previous = 0; l.chunk_size = 8; l.chunk_top = 16; l.chunk_data = 24;
  l.co_size = 192; l.co_filename = 112; l.co_name = 120; l.co_qualname = 128; l.co_firstlineno = 68; l.co_flags = 48;
  l.co_linetable = 136; l.co_code_adaptive = 192;
  l.str_length = 16; l.str_state = 32; l.str_ascii_size = 40; l.str_compact_size = 56; l.str_data_any = 56;
  l.bytes_size = 16; l.bytes_sval = 32;
  l.ob_type = 8; l.tp_name = 24; l.tp_flags = 168; l.tp_basicsize = 32; l.tp_dictoffset = 288;
  l.mod_dict = 16;
  l.dict_used = 16; l.dict_keys = 32; l.dict_values = 40; l.dk_size = 8; l.dk_kind = 10; l.dk_nentries = 24;
  l.dk_indices = 32;
  l.str_has_ready_bit = false; l.long_size = 16; l.long_digits = 24; l.long_tagged = true; l.ht_cached_keys = 880;
  l.managed_dict_kind = Layout::ManagedDict::kDictOrValues; l.managed_dict = -24;
  return l;
}

// 3.13: prefer _Py_DebugOffsets from the target (debug_offsets.h) over this table.
Layout make_3_13() {
  Layout l;
  l.minor = 13;
  l.has_debug_offsets = true;
  l.rt_interpreters_head = 632; l.rt_main_thread = 656;
  l.is_next = 7264; l.is_threads_head = 7344; l.is_modules = 7656; l.is_gil_ptr = 16; l.gil_last_holder = 8;
  l.gil_locked = 16;
  l.ts_size = 304; l.ts_next = 8; l.ts_interp = 16; l.ts_frame = 72; l.ts_thread_id = 152;
  l.ts_native_thread_id = 160; l.ts_datastack_chunk = 232;
  l.fr_size = 72; l.fr_back = 8; l.fr_code = 0; l.fr_lasti = 56; l.fr_owner = 70; l.owned_by_cstack = 3;
  l.owned_by_generator = 1; l.owned_by_thread = 0;
  l.frame_linkage = FrameLinkage::kInterpreterFrames; l.has_stack_chunks = true; l.has_shim_frames = true;
  l.chunk_previous = 0; l.chunk_size = 8; l.chunk_top = 16; l.chunk_data = 24;
  l.co_size = 200; l.co_filename = 112; l.co_name = 120; l.co_qualname = 128; l.co_firstlineno = 68; l.co_flags = 48;
  l.co_linetable = 136; l.co_code_adaptive = 200;
  l.str_length = 16; l.str_state = 32; l.str_ascii_size = 40; l.str_compact_size = 56; l.str_data_any = 56;
  l.bytes_size = 16; l.bytes_sval = 32;
  l.ob_type = 8; l.tp_name = 24; l.tp_flags = 168; l.tp_basicsize = 32; l.tp_dictoffset = 288;
  l.mod_dict = 16;
  l.dict_used = 16; l.dict_keys = 32; l.dict_values = 40; l.dk_size = 8; l.dk_kind = 10; l.dk_nentries = 24;
  l.dk_indices = 32;
  l.str_has_ready_bit = false; l.long_size = 16; l.long_digits = 24; l.long_tagged = true; l.ht_cached_keys = 880;
  l.managed_dict_kind = Layout::ManagedDict::kInlineValues; l.managed_dict = -24; l.values_header = 8;
  return l;
}

// 3.14: take _Py_DebugOffsets from the target (its 3.14 mirror) over this table. As
// 3.13 but frames hold a tagged code reference and have two non-Python owners
// (INTERPRETER 3: the entry frame every evaluation loop pushes; CSTACK 4), code objects
// gained _co_unique_id and tuples cache their hash before ob_item.
Layout make_3_14() {
  Layout l = make_3_13();
  l.minor = 14;
  l.rt_interpreters_head = 808; l.rt_main_thread = 832;
  l.is_next = 7272; l.is_modules = 7688;
  l.ts_size = 832;
  l.fr_size = 80; l.fr_owner = 74; l.owned_by_cstack = 4; l.owned_by_interpreter = 3; l.code_tag_bits = 3;
  l.co_size = 208; l.co_code_adaptive = 208;
  l.tuple_items = 32;
  return l;
}

// 3.15: as 3.14 but no C-stack owner, and every chain ends at the thread state's
// embedded base frame (PyThreadState.base_frame points at it).
Layout make_3_15() {
  Layout l = make_3_14();
  l.minor = 15;
  l.rt_interpreters_head = 936; l.rt_main_thread = 960;
  l.is_next = 7264; l.is_threads_head = 7336; l.is_modules = 7592;
  l.ts_size = 888; l.ts_thread_id = 176; l.ts_native_thread_id = 184; l.ts_datastack_chunk = 256;
  l.owned_by_cstack = -1; l.ts_base_frame = 80;
  l.ht_cached_keys = 888;
  return l;
}

}  // namespace

const Layout* builtin_layout(int major, int minor) {
  static const Layout k38 = make_3_8(), k39 = make_3_9(), k310 = make_3_10();
  static const Layout k311 = make_3_11(), k312 = make_3_12(), k313 = make_3_13();
  static const Layout k314 = make_3_14(), k315 = make_3_15();
  if (major != 3) return nullptr;
  switch (minor) {
    case 8: return &k38;
    case 9: return &k39;
    case 10: return &k310;
    case 11: return &k311;
    case 12: return &k312;
    case 13: return &k313;
    case 14: return &k314;
    case 15: return &k315;
    default: return nullptr;
  }
}

}  // namespace pyprofd
