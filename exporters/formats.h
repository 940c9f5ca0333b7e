// Which exporter writes which file: formats by name and by file extension, and one
// entry point that turns the profile into a file's bytes.
#pragma once
#include <string>
#include <vector>

#include "profiler/profile.h"

namespace pyprofd {

// The format a path's extension names ("pstats", ...), or "" if none does.
std::string format_for_path(const std::string& path);

// Every format name `--format` accepts.
std::vector<std::string> known_formats();

// Serialises p in the named format. False with a one-line reason on failure
// (unknown format, nothing to write).
bool export_profile(const std::string& format, const Profile& p, std::string* bytes, std::string* error);

}  // namespace pyprofd
