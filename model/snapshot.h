// A one-off look at a process (`pyprofd dump`): every thread's Python stack and, when
// asked, the asyncio tasks. Plain data: the profiler fills it, exporters print it.
#pragma once
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace pyprofd {

struct SnapshotFrame {
  std::string function, file;
  int line = 0, first_line = 0;
  bool native = false;  // a C frame (--native): function "LIBRARY!NAME", file "" if DWARF has none
};

struct ThreadSnapshot {
  uint64_t native_id = 0;            // kernel TID, 0 if unknown
  uint64_t thread_id = 0;            // pthread id (threading.get_ident())
  std::optional<std::string> name;   // threading.Thread.name, if known
  bool holds_gil = false;
  bool active = false;               // on a CPU per the kernel ('R')
  bool torn = false;                 // the stack kept changing while read: frames are partial
  std::vector<SnapshotFrame> frames; // innermost first
  // --native: "" when the native stack was merged, else why not (e.g. "torn", "unwound
  // nothing"); the frames are then Python's alone.
  std::string native_error;
};

struct TaskSnapshot {
  std::string name;
  std::string state;                 // "running", "pending", "done" or "cancelled"
  std::string awaiting;              // what it awaits, "" if nothing
  bool running = false;
  uint64_t thread = 0;               // native id of the thread running its loop; 0: the loop is not running
  std::vector<std::string> awaits;      // tasks it waits on (directly, gather, TaskGroup, wait, ...)
  std::vector<std::string> awaited_by;  // tasks waiting on it
  std::vector<SnapshotFrame> frames; // the task's await chain, innermost first
};

struct ProcessSnapshot {
  int pid = 0;
  std::string python_version;  // "3.12.1"
  std::string command_line;    // spaces between arguments
  std::string image_path;      // file that holds the interpreter
  std::vector<ThreadSnapshot> threads;
  bool has_tasks = false;      // tasks were asked for (the list may still be empty)
  bool native = false;         // native frames were asked for (--native)
  uint64_t native_pauses = 0;  // threads stopped (ptrace) to read their native stacks
  std::vector<TaskSnapshot> tasks;
};

}  // namespace pyprofd
