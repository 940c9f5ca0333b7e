// Copies of a thread's native state for the unwinder (symbolizer/native_unwinder.h): its
// registers and the top of its user stack, taken without stopping it where the kernel
// allows (perf_stacks.h; a thread blocked in a system call through /proc), else by
// stopping it for the shortest time (pause_capture).
#pragma once
#include <sys/types.h>

#include <cstdint>
#include <functional>

#include "symbolizer/native_unwinder.h"

namespace pyprofd {

constexpr size_t kNativeStackBytes = 48 * 1024;  // of user stack copied per sample

struct NativeCapture {
  NativeRegs regs;
  StackCopy stack;
  int64_t time_ns = 0;  // CLOCK_MONOTONIC
};

// A thread blocked in the kernel (a system call, a page fault): /proc/PID/task/TID/syscall
// gives its stack and instruction pointers, the stack is copied, and the file read again
// must say the same (the thread did not move meanwhile). The target is not stopped. False
// when the thread is running or moved. syscall_fd: /proc/PID/task/TID/syscall, opened
// once (open_syscall_file) and read again with pread.
bool capture_blocked(pid_t pid, int syscall_fd, NativeCapture* out);
int open_syscall_file(pid_t pid, pid_t tid);

// Stops thread tid (PTRACE_SEIZE + PTRACE_INTERRUPT), copies its registers and stack,
// calls while_stopped (to read its Python frames at the same instant), and lets it go.
// False with *err = errno when it could not be stopped.
bool pause_capture(pid_t pid, pid_t tid, NativeCapture* out, const std::function<void()>& while_stopped, int* err);

// Copies up to kNativeStackBytes of stack from sp (fewer where the mapping ends).
bool copy_stack(pid_t pid, uint64_t sp, StackCopy* out);

}  // namespace pyprofd
