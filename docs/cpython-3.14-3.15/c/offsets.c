/* Prints layout facts not covered by _Py_DebugOffsets, from the installed headers. */
#define Py_BUILD_CORE 1
#include <Python.h>
#include <stddef.h>
#include <stdio.h>
#include "internal/pycore_debug_offsets.h"
#include "internal/pycore_interp.h"
#include "internal/pycore_frame.h"
#include "internal/pycore_tstate.h"
#include "internal/pycore_code.h"
#include "internal/pycore_dict.h"
#define P(expr) printf("%-60s = %zu\n", #expr, (size_t)(expr))
int main(void) {
  P(sizeof(_Py_DebugOffsets));
  P(offsetof(_PyRuntimeState, debug_offsets));
  P(sizeof(PyThreadState));
  P(offsetof(PyThreadState, _status));
  P(offsetof(PyThreadState, holds_gil));
#if PY_VERSION_HEX >= 0x030f0000
  P(offsetof(PyThreadState, gil_requested));
  P(offsetof(PyThreadState, base_frame));
  P(offsetof(_PyThreadStateImpl, base_frame));
#endif
  P(offsetof(PyThreadState, current_frame));
  P(offsetof(PyThreadState, thread_id));
  P(offsetof(PyThreadState, native_thread_id));
  P(offsetof(PyThreadState, state));
  P(offsetof(PyThreadState, _whence));
  P(sizeof(_PyThreadStateImpl));
  P(sizeof(PyInterpreterState));
  P(offsetof(_PyThreadStateImpl, asyncio_running_loop));
  P(offsetof(_PyThreadStateImpl, asyncio_running_task));
  P(offsetof(_PyThreadStateImpl, asyncio_tasks_head));
  P(offsetof(PyInterpreterState, asyncio_tasks_head));
  P(offsetof(PyInterpreterState, threads.head));
  P(offsetof(PyInterpreterState, _gil.last_holder));
  P(offsetof(PyInterpreterState, _gil.locked));
  P(sizeof(_PyInterpreterFrame));
  P(offsetof(_PyInterpreterFrame, f_funcobj));
  P(offsetof(_PyInterpreterFrame, f_globals));
  P(offsetof(_PyInterpreterFrame, frame_obj));
  P(offsetof(_PyInterpreterFrame, return_offset));
  P(offsetof(_PyInterpreterFrame, owner));
  P(offsetof(_PyInterpreterFrame, visited));
  P(offsetof(PyCodeObject, co_flags));
  P(offsetof(PyCodeObject, co_nlocalsplus));
  P(offsetof(PyCodeObject, co_framesize));
  P(offsetof(PyCodeObject, co_firstlineno));
  P(offsetof(PyCodeObject, co_linetable));
  P(offsetof(PyCodeObject, co_code_adaptive));
  P(offsetof(PyCodeObject, co_executors));
  P(offsetof(PyCodeObject, _co_monitoring));
  P(offsetof(PyCodeObject, co_extra));
  P(sizeof(PyASCIIObject));
  P(sizeof(PyCompactUnicodeObject));
  P(offsetof(PyASCIIObject, hash));
  P(offsetof(PyASCIIObject, state));
  P(sizeof(PyDictKeysObject));
  P(offsetof(PyDictKeysObject, dk_log2_size));
  P(offsetof(PyDictKeysObject, dk_log2_index_bytes));
  P(offsetof(PyDictKeysObject, dk_kind));
  P(offsetof(PyDictKeysObject, dk_nentries));
  P(offsetof(PyDictKeysObject, dk_indices));
  P(offsetof(PyDictObject, ma_used));
  P(sizeof(PyGenObject));
  P(offsetof(PyGenObject, gi_frame_state));
  P(offsetof(PyGenObject, gi_iframe));
  P(offsetof(PyGenObject, gi_qualname));
  P(offsetof(PyFrameObject, f_frame));
  P(_PyLong_NON_SIZE_BITS);
  P(_PyLong_SIGN_MASK);
  P(PyLong_SHIFT);
  return 0;
}
