// Output files appear whole or not at all: a crash or a full disk never leaves
// a truncated profile where a previous good one was.
#pragma once
#include <string>

namespace pyprofd {

// Writes `bytes` to a new temp file beside `path` (unique name, O_EXCL |
// O_NOFOLLOW, mode 0600), fsyncs it and renames it over `path` (rename replaces
// a symlink at `path`, never writes through it). On any failure the temp file is
// removed, `path` is untouched and *error (if non-null) names the path and
// strerror.
bool write_file_atomic(const std::string& path, const std::string& bytes, std::string* error);

// Called with the OUTPUT FILE path before recording starts, so a bad -o fails
// in seconds, not after a long recording: checks that the file's folder exists,
// is a directory and accepts a new file (probed by creating and removing one,
// which is right for root and read-only mounts too), and that `path` itself is
// not a directory.
bool check_writable_dir(const std::string& path, std::string* error);

}  // namespace pyprofd
