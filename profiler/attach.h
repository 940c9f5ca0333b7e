// Attaching to a running CPython: find the image holding _PyRuntime, its load bias,
// the interpreter version and the matching layout. Nothing is written to the target.
#pragma once
#include <sys/types.h>

#include <memory>
#include <string>

#include "profiler/layout.h"
#include "profiler/remote_memory.h"

namespace pyprofd {

enum class AttachErrorKind { kNone, kNoSuchProcess, kPermission, kNotPython, kUnsupportedVersion, kOther };

struct AttachError {
  AttachErrorKind kind = AttachErrorKind::kNone;
  std::string message;  // one line, names the cause
};

struct PythonProcess {
  pid_t pid = 0;
  std::string command_line;  // /proc/PID/cmdline, spaces between arguments
  std::string image_path;    // file that holds _PyRuntime (libpython or the executable)
  std::string version;       // "3.12.1"
  uint64_t runtime_addr = 0; // address of _PyRuntime in the target
  uint64_t code_type = 0;    // address of PyCode_Type (0 if the image does not export it)
  Layout layout;
  std::unique_ptr<RemoteMemory> memory;  // live; tests may swap in a recorded snapshot
};

// Attaches to pid. On failure returns nullptr and fills err.
std::unique_ptr<PythonProcess> attach_python(pid_t pid, AttachError* err);

// The sentence that explains a permission failure (CAP_SYS_PTRACE, kernel.yama.ptrace_scope).
std::string permission_hint();

// True if pid is a live process (not gone, not a zombie).
bool process_exists(pid_t pid);

}  // namespace pyprofd
