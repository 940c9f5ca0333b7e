// Flame graph export: one self-contained SVG (embedded script, no external
// files), what py-spy users expect from `-o profile.svg`.
//
// Stacks from all pids, threads and tasks are merged. A frame is
// "name (file:line)" with the line being executed (just "name" for synthetic
// "~" frames such as "<task X>"), so one function at two lines is two boxes.
// There is one box per distinct stack prefix, plus "all" for the empty prefix;
// the root is at the BOTTOM, callees stacked above their callers, siblings
// sorted by frame text. Widths are proportional to time (to samples when no
// sample has a weight). Hovering shows "frame — N samples, P%"; clicking a
// box zooms to it, clicking "all", "Reset zoom" or pressing Escape resets.
// Colours come from a hash of the function name, so they are stable between runs.
#pragma once
#include <string>

#include "model/profile.h"

namespace pyprofd {

// The SVG text (UTF-8 XML). `title` is shown on top ("Flame Graph" if empty).
// A profile without samples gives "" (nothing to draw).
std::string export_flamegraph_svg(const Profile& p, const std::string& title);

}  // namespace pyprofd
