// DOT export: a gprof2dot-like call graph that `dot -Tpng` (graphviz) renders.
// See shared/design/output-formats.md (DOT).
//
// Numbers come from build_pstats_entries, so they agree with the pstats file:
// a node's total is the time of the samples whose stack contains the function
// (recursion counted once), its self time that of samples where it is the leaf;
// an edge caller->callee carries the time and sample count of the samples whose
// stack has that adjacent pair. Percentages are of the profile's total time
// (of its sample count when no sample has a weight). All pids, threads and tasks
// are merged by function, as in the pstats file.
#pragma once
#include <string>

#include "model/profile.h"

namespace pyprofd {

struct DotOptions {
  double min_node = 0.005;  // nodes whose total is below this fraction are left out
  double min_edge = 0.001;  // edges below this fraction are left out, as are edges of left-out nodes
};

// The DOT text (UTF-8). Nodes are labelled "name", "file:first_line" (left out
// for synthetic "~" frames), "total P% (S s)", "self P% (S s)"; edges "P%" and
// "N samples". Fill, edge colour and pen width grow with total % on a
// blue->green->red ramp. A profile without samples gives "" (nothing to draw).
std::string export_dot(const Profile& p, const DotOptions& options);

}  // namespace pyprofd
