// callgrind profile text, read by kcachegrind/qcachegrind and callgrind_annotate.
// See shared/design/output-formats.md (callgrind) and valgrind's cl-format.
//
// All pids/threads/tasks merge (callgrind_annotate reads one part only).
// Events: "Samples" and "CpuNs" or "WallNs" (weight_ns, per mode).
// - A function is fl=file, fn=name; positions are source lines. Names that
//   occur with several first lines in one file get ":FIRST_LINE" appended
//   (kcachegrind keys functions by file and name). Synthetic frames (file "~")
//   merge by name. Names and files are compressed: "(id) name" on first use.
// - Self cost: the leaf's function at the leaf's current line.
// - Calls: each distinct (caller, callee) function pair in a stack counts once
//   per sample, at the call site (caller's current line) of its outermost
//   occurrence, so recursion never counts a sample twice on one edge:
//   calls=SAMPLES CALLEE_FIRST_LINE then "CALL_SITE_LINE SAMPLES NS".
// - summary: and totals: are the sample and weight totals (= sum of self costs).
// Newlines and other control characters in names become spaces; invalid UTF-8
// becomes U+FFFD; empty names become "???".
#pragma once
#include <string>

#include "model/profile.h"

namespace pyprofd {

// The file's bytes; "" when no stack has samples.
std::string export_callgrind(const Profile& p);

}  // namespace pyprofd
