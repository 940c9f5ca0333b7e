// Offsets of asyncio's C objects and of the generator/frame fields needed to follow a
// coroutine's await chain from outside, per CPython minor version (x86-64), as data.
// TaskObj/FutureObj live in Modules/_asynciomodule.c (no installed header): their
// offsets were found by scanning live tasks for known pointers and are re-checked
// against every interpreter by tests/unit/asyncio_tasks_test.cc. Generator, frame and
// container offsets come from offsetof() against each version's own headers.
#pragma once
#include <cstdint>

namespace pyprofd {

struct AsyncioLayout {
  int minor = 0;

  // Where tasks are registered in asyncio.tasks: a WeakSet of every task (<=3.11
  // _all_tasks, 3.12+ _scheduled_tasks) and, 3.12+, a plain set of eager tasks.
  const char* weak_registry = "_all_tasks";
  const char* eager_registry = nullptr;  // nullptr: none

  // How a suspended coroutine's frame is found and read
  bool coro_frame_object = false;   // <=3.10: gi_frame points at a PyFrameObject; 3.11+: embedded interpreter frame
  bool frame_stacktop = false;      // 3.8/3.9: f_stacktop (non-NULL while suspended); 3.10: f_state + f_stackdepth
  bool resume_marks_await = false;  // 3.11/3.12: the RESUME after the yield says "await" (oparg >= 2)
  bool state_marks_await = false;   // 3.13: gi_frame_state says "suspended in yield from"
  int8_t state_suspended_yield_from = -1;  // 3.13: FRAME_SUSPENDED_YIELD_FROM

  // FutureObj / TaskObj (C accelerator)
  uint32_t fut_loop = 16;
  uint32_t fut_callback0 = 24;   // first done callback (others in fut_callbacks)
  uint32_t fut_callbacks = 40;   // list of (callback, context) tuples, or NULL
  uint32_t fut_state = 0;        // int: 0 pending, 1 cancelled, 2 finished
  uint32_t task_fut_waiter = 0;
  uint32_t task_coro = 0;
  uint32_t task_name = 0;        // str; from 3.12 an int counter until first read
  uint32_t task_size = 0;        // tp_basicsize of _asyncio.Task

  // PyGenObject / PyCoroObject
  uint32_t gen_frame = 16;       // gi_frame pointer (<=3.10) / embedded gi_iframe (3.11+)
  uint32_t gen_frame_state = 0;  // int8 gi_frame_state (3.11+)
  int8_t state_created = 0;      // 3.11+: FRAME_CREATED
  int8_t state_suspended = 0;    // 3.11+: FRAME_SUSPENDED (3.13: plain yield; -1 is SUSPENDED_YIELD_FROM)
  int8_t state_executing = 0;    // 3.10+: FRAME_EXECUTING

  // PyFrameObject (<=3.10) and PyCodeObject.co_code
  uint32_t f_valuestack = 64;
  uint32_t f_stacktop = 0;       // 3.8/3.9: non-NULL while suspended
  uint32_t f_stackdepth = 0;     // 3.10 (int)
  uint32_t f_state = 0;          // 3.10 (int8): -2 created, -1 suspended, 0 executing
  uint32_t co_code = 48;         // bytes object
  uint8_t op_yield_from = 72;

  // _PyInterpreterFrame (3.11+)
  uint32_t if_stacktop = 64;     // int, index of TOS + 1 in localsplus
  uint32_t if_localsplus = 72;
  uint8_t op_resume = 151;       // 3.11/3.12: the code unit after the yield; oparg >= 2 means "await"
  uint8_t op_resume_alt = 0;     // RESUME_QUICK (3.11) / INSTRUMENTED_RESUME (3.12)

  // Callables and weak references (same on every supported version unless noted;
  // containers and ints are in Layout)
  uint32_t weakref_object = 16;  // wr_object (Py_None once dead)
  uint32_t cell_ref = 16;
  uint32_t method_self = 24;     // PyMethodObject.im_self
  uint32_t partial_args = 24;    // functools.partial args tuple
  uint32_t func_closure = 0;     // PyFunctionObject.func_closure
  uint32_t tp_base = 256;

  // The loop a thread runs, so that each pending task is shown on its loop's thread:
  // <=3.12 tstate->dict["__asyncio_running_event_loop__"]; 3.13+ the loop pointer that
  // _PyThreadStateImpl keeps (right after PyThreadState in 3.13). 0: not known for this version.
  uint32_t ts_dict = 0;
  uint32_t ts_running_loop = 0;
  bool running_loop_follows_tstate = false;  // 3.13: right after PyThreadState (its size from the debug offsets)
  uint32_t frame_local0 = 0;  // a suspended frame's first local (self of a method): f_localsplus / localsplus
  uint32_t holder_loop = 0;  // <=3.11: the dict holds a _RunningLoopHolder, its rl_loop here; 0: the loop itself

  // 3.14+ (issue 18). Offsets of _PyThreadStateImpl / PyInterpreterState / TaskObj as
  // _asyncio's .AsyncioDebug section states them (docs/cpython-3.14-3.15); the reader
  // replaces them with the target's own section where it has one (asyncio_debug.h).
  // C tasks sit in per-thread circular lists (struct llist_node {next, prev} at task_node),
  // not in asyncio's registries; a finished thread's tasks move to the interpreter's list.
  uint32_t task_node = 0;            // 0: no task lists (<=3.13)
  uint32_t tstate_tasks_head = 0;    // _PyThreadStateImpl.asyncio_tasks_head (the list's sentinel)
  uint32_t tstate_running_task = 0;  // _PyThreadStateImpl.asyncio_running_task (C tasks' current task)
  uint32_t interp_tasks_head = 0;    // PyInterpreterState.asyncio_tasks_head
  // FutureObj.fut_awaited_by: the one task awaiting it, or a set of them (the char at
  // task_awaited_by_is_set says which); 0: not kept (<=3.13).
  uint32_t task_awaited_by = 0;
  uint32_t task_awaited_by_is_set = 0;
  // The frame's if_stacktop word is a pointer (stackpointer), not an index; the awaited
  // object is the tagged reference awaited_slot words below it.
  bool frame_stackpointer = false;
  uint8_t awaited_slot = 1;
  // gi_frame_state at or above this: the coroutine has finished (3.11-3.14: COMPLETED 1,
  // CLEARED 4; 3.15 renumbers the states from CREATED 0 up to CLEARED 5).
  int8_t state_finished = 1;
};

// The table for 3.minor, or nullptr if unsupported.
const AsyncioLayout* asyncio_layout(int minor);

}  // namespace pyprofd
