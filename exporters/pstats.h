// pstats export: the marshal-ed dict that pstats.Stats, snakeviz and
// gprof2dot -f pstats read. See shared/design/output-formats.md (pstats).
//
// Samples map to pstats numbers the way sampling profilers do it. For every
// stack (all pids/threads/tasks merged by function key), with k samples of
// total weight dt:
//   leaf:                          cc += k, tt += dt
//   each distinct key in stack:    nc += k, ct += dt   (recursion counts once)
//   each distinct adjacent pair:   edge nc = cc += k, edge ct += dt
//   leaf's edge from its caller:   edge tt += dt
// So "calls" are sample counts, ct never exceeds the total, roots have no callers,
// and every caller is also a top-level key.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "model/profile.h"

namespace pyprofd {

struct PstatsCaller {
  size_t caller = 0;     // index into the entries vector
  uint64_t samples = 0;  // written as both the edge's nc and cc
  uint64_t tt_ns = 0;
  uint64_t ct_ns = 0;
};

struct PstatsEntry {
  FunctionKey key;  // written as (file, first_line, name)
  uint64_t cc = 0;  // samples with this function as the leaf
  uint64_t nc = 0;  // samples whose stack contains it
  uint64_t tt_ns = 0;
  uint64_t ct_ns = 0;
  std::vector<PstatsCaller> callers;  // ascending caller index
};

// The pstats entries of `p`, ordered by key (file, first_line, name); this is
// also the order of the written dict. Stacks with no samples, no frames, or a
// frame index outside p.functions are left out. A key whose file is "~"
// (synthetic: tasks, built-ins) gets first_line 0, the form pstats prints as
// "{name}" for "<name>" names; real files keep theirs, so "<module>" stays
// "file:line(<module>)". Invalid UTF-8 in names becomes U+FFFD. Shared by export_pstats and format_top.
std::vector<PstatsEntry> build_pstats_entries(const Profile& p);

// Seconds as written to the file: the one conversion every reader sees.
inline double pstats_seconds(uint64_t ns) { return static_cast<double>(ns) / 1e9; }

// The file's bytes. A profile without samples gives "" (an empty dict is not a
// valid pstats file: pstats.Stats raises on it), so callers must report
// "no samples" and not write the file.
std::string export_pstats(const Profile& p);

}  // namespace pyprofd
