// `dump`'s profiler side: attach, read every thread's stack (and the asyncio tasks)
// once, name the frames, and hand back a ProcessSnapshot.
#pragma once
#include <sys/types.h>

#include "model/snapshot.h"
#include "profiler/attach.h"
#include "profiler/native_stacks.h"

namespace pyprofd {

struct SnapshotOptions {
  bool async_tasks = false;  // also read the asyncio tasks (--async)
  NativeOptions native;      // --native: merge each thread's native stack
};

// False, with err (one line), when the process cannot be attached or its interpreter
// state cannot be read.
bool take_snapshot(pid_t pid, const SnapshotOptions& options, ProcessSnapshot* out, AttachError* err);

}  // namespace pyprofd
