#include "profiler/native_capture.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/ptrace.h>
#include <sys/uio.h>
#include <sys/user.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <cstring>
#include <string>

#include "profiler/clock.h"

namespace pyprofd {

namespace {

// The file's text ("running", "-1 SP PC" or "NR ARG1..ARG6 SP PC"), generated anew by each read.
bool read_syscall_file(int fd, std::string* out) {
  char buf[256];
  ssize_t n = pread(fd, buf, sizeof buf - 1, 0);
  if (n <= 0) return false;
  out->assign(buf, static_cast<size_t>(n));
  return true;
}

// SP and PC: the last two fields.
bool parse_sp_pc(const std::string& text, uint64_t* sp, uint64_t* pc) {
  if (text.compare(0, 7, "running") == 0) return false;
  unsigned long long v[9];
  int n = std::sscanf(text.c_str(), "%llx %llx %llx %llx %llx %llx %llx %llx %llx", &v[0], &v[1], &v[2], &v[3],
                      &v[4], &v[5], &v[6], &v[7], &v[8]);
  if (n != 9 && n != 3) return false;
  *sp = v[n - 2];
  *pc = v[n - 1];
  return *sp != 0 && *pc != 0;
}

}  // namespace

int open_syscall_file(pid_t pid, pid_t tid) {
  char path[64];
  std::snprintf(path, sizeof path, "/proc/%d/task/%d/syscall", pid, tid);
  return open(path, O_RDONLY | O_CLOEXEC);
}

bool copy_stack(pid_t pid, uint64_t sp, StackCopy* out) {
  out->addr = sp;
  out->bytes.resize(kNativeStackBytes);
  // Page by page from the end we may not reach: one readv stops at the first unmapped page.
  iovec local{out->bytes.data(), out->bytes.size()};
  iovec remote{reinterpret_cast<void*>(sp), out->bytes.size()};
  ssize_t n = process_vm_readv(pid, &local, 1, &remote, 1, 0);
  if (n <= 0) {
    out->bytes.clear();
    return false;
  }
  out->bytes.resize(static_cast<size_t>(n));
  return true;
}

bool capture_blocked(pid_t pid, int fd, NativeCapture* out) {
  std::string before, after;
  uint64_t sp = 0, pc = 0;
  if (fd < 0 || !read_syscall_file(fd, &before) || !parse_sp_pc(before, &sp, &pc)) return false;
  out->time_ns = monotonic_ns();
  if (!copy_stack(pid, sp, &out->stack)) return false;
  if (!read_syscall_file(fd, &after) || after != before) return false;
  out->regs = NativeRegs{};
  out->regs.r[kDwarfSp] = sp;
  out->regs.r[kDwarfIp] = pc;
  out->regs.known = (1u << kDwarfSp) | (1u << kDwarfIp);
  return true;
}

bool pause_capture(pid_t pid, pid_t tid, NativeCapture* out, const std::function<void()>& while_stopped, int* err) {
  if (ptrace(PTRACE_SEIZE, tid, nullptr, nullptr) != 0 || ptrace(PTRACE_INTERRUPT, tid, nullptr, nullptr) != 0) {
    *err = errno;
    ptrace(PTRACE_DETACH, tid, nullptr, nullptr);
    return false;
  }
  int status = 0;
  if (waitpid(tid, &status, __WALL) != tid || !WIFSTOPPED(status)) {
    *err = errno ? errno : ESRCH;
    return false;  // it exited: nothing to detach from
  }
  // A signal that arrived meanwhile stopped it instead: handed back on detach.
  int sig = WSTOPSIG(status);
  bool event_stop = (status >> 16) == PTRACE_EVENT_STOP;
  int pass = (event_stop || sig == SIGTRAP) ? 0 : sig;
  user_regs_struct r{};
  bool ok = ptrace(PTRACE_GETREGS, tid, nullptr, &r) == 0;
  if (ok) {
    out->time_ns = monotonic_ns();
    const uint64_t dwarf[kDwarfRegs] = {r.rax, r.rdx, r.rcx, r.rbx, r.rsi, r.rdi, r.rbp, r.rsp, r.r8,
                                        r.r9,  r.r10, r.r11, r.r12, r.r13, r.r14, r.r15, r.rip};
    std::memcpy(out->regs.r, dwarf, sizeof dwarf);
    out->regs.known = (1u << kDwarfRegs) - 1;
    ok = copy_stack(pid, r.rsp, &out->stack);
    if (ok && while_stopped) while_stopped();
  } else {
    *err = errno;
  }
  ptrace(PTRACE_DETACH, tid, nullptr, reinterpret_cast<void*>(static_cast<intptr_t>(pass)));
  return ok;
}

}  // namespace pyprofd
