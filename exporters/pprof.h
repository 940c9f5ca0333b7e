// pprof export: a gzip-compressed perftools.profiles.Profile protobuf, read by
// `go tool pprof`, Pyroscope and speedscope. See shared/design/output-formats.md (pprof).
//
// Mapping from the model:
//   sample_type  [samples/count, cpu|wall/nanoseconds]; pprof shows the last by default
//   period_type  cpu|wall/nanoseconds, period = 1e9 / rate_hz (0 if rate_hz <= 0)
//   Function     one per (name, file, first_line); system_name unset, so pprof
//                prints names like "<module>" as they are
//   Location     one per (function, line), holding one Line; no mappings, no addresses
//                (pprof then notes "Main binary filename not available" on stderr)
//   Sample       one per distinct (frames, labels): location ids leaf first,
//                values [samples, weight_ns], labels pid and thread_id (num),
//                thread_name and task_name (str, only when not empty), then
//                p.labels and p.process_labels[pid] (str; the daemon's, empty for record)
// Stacks naming a function outside p.functions are left out; stacks without
// frames are kept (their time stays in the total). Invalid UTF-8 becomes U+FFFD.
// Ids and string indices count from 1 in order of first use (stacks in order,
// each walked leaf first), so equal models give equal bytes.
#pragma once
#include <string>

#include "model/profile.h"

namespace pyprofd {

// The file's bytes. A profile without samples still gives a valid (empty)
// profile; callers decide whether to write it. Throws std::runtime_error only
// if zlib fails.
std::string export_pprof(const Profile& p);

}  // namespace pyprofd
