// The terminal summary: the table `pstats.Stats(file).sort_stats('tottime')
// .print_stats(n)` prints for the file export_pstats writes, built from the same
// entries (build_pstats_entries), so the numbers agree with any pstats reader.
#pragma once
#include <string>

#include "model/profile.h"

namespace pyprofd {

// From the "N function calls ... in T seconds" line through the table's rows,
// as pstats prints them (the file-name line pstats prints first is left out).
// Rows sort by tottime, descending; ties keep file order, like pstats' stable
// sort. n > 0 limits the rows ("List reduced from ..."); n <= 0 prints all.
// A profile without samples gives "" (pstats cannot load such a file either).
std::string format_top(const Profile& p, int n);

// pstats' func_std_string: "file:line(name)", or for ("~", 0, "<x>") "{x}".
std::string pstats_function_label(const FunctionKey& key);

}  // namespace pyprofd
