// Which exporter writes which file: formats by name and by file extension, and one
// entry point that turns the profile into a file's bytes.
#pragma once
#include <string>
#include <vector>

#include "exporters/dot.h"
#include "model/profile.h"

namespace pyprofd {

struct ExportOptions {
  DotOptions dot;         // call-graph pruning (dot, png, callgraph-svg)
  std::string title;      // flame graph title
};

// The format a path's extension names ("pstats", "pprof", ...), or "" if none does.
std::string format_for_path(const std::string& path);

// Every format name `--format` accepts.
std::vector<std::string> known_formats();

// Serialises p in the named format. False with a one-line reason on failure
// (unknown format, no samples, graphviz missing for png).
bool export_profile(const std::string& format, const Profile& p, const ExportOptions& options, std::string* bytes,
                    std::string* error);

}  // namespace pyprofd
