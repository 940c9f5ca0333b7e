// Per-version asyncio offsets (x86-64). FutureObj grew cancel_msg (3.9),
// exception_tb (3.10), lost its _PyErr_StackItem for one pointer (3.11) and its
// dict/weakref slots to managed ones (3.13), which moves every Task field.
#include "profiler/asyncio_layout.h"

namespace pyprofd {
namespace {

// The table for 3.minor; minor 0 (no table) for versions it does not know.
AsyncioLayout make(int minor) {
  AsyncioLayout l;
  l.minor = minor;
  switch (minor) {
    case 8:
      l.fut_state = 72; l.task_fut_waiter = 104; l.task_coro = 112; l.task_name = 120; l.task_size = 144;
      l.coro_frame_object = true; l.frame_stacktop = true; l.f_stacktop = 72; l.func_closure = 48;
      l.ts_dict = 152; l.holder_loop = 16; l.frame_local0 = 360;
      break;
    case 9:
      l.fut_state = 80; l.task_fut_waiter = 144; l.task_coro = 152; l.task_name = 160; l.task_size = 184;
      l.coro_frame_object = true; l.frame_stacktop = true; l.f_stacktop = 72; l.func_closure = 48;
      l.ts_dict = 152; l.holder_loop = 16; l.frame_local0 = 360;
      break;
    case 10:
      l.fut_state = 88; l.task_fut_waiter = 152; l.task_coro = 160; l.task_name = 168; l.task_size = 192;
      l.f_stackdepth = 80; l.f_state = 108; l.state_created = -2; l.state_suspended = -1; l.func_closure = 72;
      l.coro_frame_object = true; l.ts_dict = 152; l.holder_loop = 16; l.frame_local0 = 352;
      break;
    case 11:
      l.fut_state = 88; l.task_fut_waiter = 128; l.task_coro = 136; l.task_name = 144; l.task_size = 176;
      l.gen_frame = 80; l.gen_frame_state = 75; l.state_created = -2; l.state_suspended = -1;
      l.resume_marks_await = true; l.op_resume_alt = 150; l.func_closure = 72;
      l.ts_dict = 128; l.holder_loop = 16; l.frame_local0 = 72;
      break;
    case 12:
      l.fut_state = 88; l.task_fut_waiter = 128; l.task_coro = 136; l.task_name = 144; l.task_size = 176;
      l.gen_frame = 72; l.gen_frame_state = 67; l.state_created = -2; l.state_suspended = -1;
      l.resume_marks_await = true; l.op_resume_alt = 240; l.func_closure = 72;
      l.weak_registry = "_scheduled_tasks"; l.eager_registry = "_eager_tasks";
      l.ts_dict = 112; l.frame_local0 = 72;
      break;
    case 13:
      l.fut_state = 96; l.task_fut_waiter = 112; l.task_coro = 120; l.task_name = 128; l.task_size = 144;
      l.gen_frame = 72; l.gen_frame_state = 67; l.state_created = -3; l.state_suspended = -2;
      l.op_resume = 0; l.func_closure = 72;
      l.state_marks_await = true; l.state_suspended_yield_from = -1;
      l.weak_registry = "_scheduled_tasks"; l.eager_registry = "_eager_tasks";
      l.running_loop_follows_tstate = true; l.frame_local0 = 72;  // 304 in 3.13.0, 312 in 3.13.18
      break;
    case 14:  // C tasks in per-thread lists; TaskObj gained fut_awaited_by and task_node
      l.fut_state = 104; l.task_fut_waiter = 120; l.task_coro = 128; l.task_name = 136; l.task_size = 168;
      l.gen_frame = 72; l.gen_frame_state = 67; l.state_created = -3; l.state_suspended = -2;
      l.op_resume = 0; l.func_closure = 72;
      l.state_marks_await = true; l.state_suspended_yield_from = -1;
      l.weak_registry = "_scheduled_tasks"; l.eager_registry = "_eager_tasks";  // pure-Python tasks only
      l.task_awaited_by = 96; l.task_awaited_by_is_set = 109;
      l.task_node = 152; l.tstate_tasks_head = 880; l.tstate_running_task = 872; l.interp_tasks_head = 10880;
      l.frame_stackpointer = true; l.awaited_slot = 1; l.if_localsplus = 80;
      l.ts_running_loop = 864; l.frame_local0 = 80;  // _PyThreadStateImpl.asyncio_running_loop
      break;
    case 15:  // as 3.14, but frame states renumbered (H315 pycore_frame.h:48-53) and the
              // awaited object one slot lower (stackpointer[-2]); _PyThreadStateImpl grew
      l.fut_state = 104; l.task_fut_waiter = 120; l.task_coro = 128; l.task_name = 136; l.task_size = 168;
      l.gen_frame = 72; l.gen_frame_state = 67; l.state_created = 0; l.state_suspended = 1;
      l.state_executing = 4; l.state_finished = 5;
      l.op_resume = 0; l.func_closure = 72;
      l.state_marks_await = true; l.state_suspended_yield_from = 2;
      l.weak_registry = "_scheduled_tasks"; l.eager_registry = "_eager_tasks";
      l.task_awaited_by = 96; l.task_awaited_by_is_set = 109;
      l.task_node = 152; l.tstate_tasks_head = 1048; l.tstate_running_task = 1032; l.interp_tasks_head = 10856;
      l.frame_stackpointer = true; l.awaited_slot = 2; l.if_localsplus = 80;
      l.ts_running_loop = 1024; l.frame_local0 = 80;
      break;
    default:  // unknown: no table
      l.minor = 0;
      break;
  }
  return l;
}

}  // namespace

const AsyncioLayout* asyncio_layout(int minor) {
  static const AsyncioLayout k[] = {make(8), make(9), make(10), make(11), make(12), make(13), make(14), make(15)};
  if (minor < 8 || minor >= 8 + static_cast<int>(sizeof k / sizeof k[0])) return nullptr;
  return k[minor - 8].minor == minor ? &k[minor - 8] : nullptr;
}

}  // namespace pyprofd
