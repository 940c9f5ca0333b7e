// speedscope JSON (https://www.speedscope.app/file-format-schema.json). See
// shared/design/output-formats.md (speedscope).
//
// - shared.frames: one frame per function (name, file, first line), not per
//   (function, line): speedscope keys frames by index, so per-line frames would
//   split one function into several rows in its sandwich and left-heavy views.
//   Synthetic frames (file "~": tasks, built-ins) have no file or line. Frames
//   are sorted by (file, first line, name).
// - profiles: one "sampled" profile per (pid, thread id, task name), sorted by
//   those; named "pid P · NAME (tid T)", plus " · task X" for a task. A thread
//   seen under several names takes the one with most samples.
// - samples: frame-index lists, root first, one per distinct stack (the model
//   holds aggregates, so the time-order view has no real time order); weights
//   are weight_ns (CPU or wall per mode), unit "nanoseconds"; startValue 0,
//   endValue = the profile's weight total.
// - activeProfileIndex: the heaviest profile; exporter "pyprofd".
// Invalid UTF-8 in names becomes U+FFFD.
#pragma once
#include <string>

#include "model/profile.h"

namespace pyprofd {

// The file's bytes (compact JSON and a newline); "" when no stack has samples.
std::string export_speedscope(const Profile& p);

}  // namespace pyprofd
