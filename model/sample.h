// What one sample is made of: the functions of its stack, the frames, who it belongs to.
// Plain data shared by the sampler, the profile and the exporters.
#pragma once
#include <cstdint>
#include <string>
#include <tuple>

namespace pyprofd {

// A function as pstats keys it: (file, first line, name).
struct FunctionKey {
  std::string name;   // co_qualname where available (3.11+), else co_name; or "<task NAME>"
  std::string file;   // co_filename; "~" for synthetic frames
  int first_line = 0; // co_firstlineno
  // A C function (--native): name "LIBRARY!FUNCTION" (or "LIBRARY+0xOFFSET" without a
  // symbol), file the DWARF source file or else the library's path, first_line 0.
  bool native = false;
  bool operator<(const FunctionKey& o) const {
    return std::tie(file, first_line, name, native) < std::tie(o.file, o.first_line, o.name, o.native);
  }
  bool operator==(const FunctionKey& o) const {
    return name == o.name && file == o.file && first_line == o.first_line && native == o.native;
  }
};

struct StackFrame {
  uint32_t function = 0;  // index into Profile::functions
  int line = 0;           // current line in that function
  bool operator<(const StackFrame& o) const { return std::tie(function, line) < std::tie(o.function, o.line); }
  bool operator==(const StackFrame& o) const { return function == o.function && line == o.line; }
};

// Who a stack belongs to.
struct SampleLabels {
  int pid = 0;
  uint64_t thread_id = 0;   // native thread id (kernel TID)
  std::string thread_name;  // "" if unknown
  std::string task_name;    // "" unless --async
  bool operator<(const SampleLabels& o) const {
    return std::tie(pid, thread_id, thread_name, task_name) <
           std::tie(o.pid, o.thread_id, o.thread_name, o.task_name);
  }
};

// How a sample is weighted: CPU time of threads on a CPU, or elapsed time of every thread.
enum class ProfileMode { kCpu, kWall };

}  // namespace pyprofd
