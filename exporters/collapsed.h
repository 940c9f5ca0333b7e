// Collapsed ("folded") stacks: the text flamegraph.pl, inferno and speedscope
// read. See shared/design/output-formats.md (Collapsed).
//
// One line per distinct stack, all pids/threads/tasks merged: frames root
// first joined by ';', a space, the sample count. Lines are sorted bytewise.
// Frame text is "func (file:line)" with the frame's current line; synthetic
// frames (file "~": tasks, built-ins) are just "func", as "(~:0)" says nothing.
// Readers split on ';' and take the last space-separated number as the count,
// so ';' inside names becomes ',' and control characters (newlines) become
// spaces; invalid UTF-8 becomes U+FFFD. Stacks that render to the same text
// share one line.
#pragma once
#include <string>

#include "model/profile.h"

namespace pyprofd {

// The file's bytes; "" when no stack has samples (flamegraph.pl rejects an
// empty file), so callers report "no samples" instead of writing it.
std::string export_collapsed(const Profile& p);

}  // namespace pyprofd
