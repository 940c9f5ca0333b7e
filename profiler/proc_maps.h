// /proc/PID/maps parsing. The text is untrusted: malformed lines are skipped, never fatal.
#pragma once
#include <sys/types.h>

#include <cstdint>
#include <string>
#include <vector>

namespace pyprofd {

struct MapEntry {
  uint64_t start = 0, end = 0, offset = 0;
  std::string perms;  // e.g. "r-xp"
  uint64_t inode = 0;
  // Pathname as the kernel prints it ("" for anonymous, "[heap]", "[stack]", ...), with a
  // trailing " (deleted)" removed and reported in `deleted` instead.
  std::string path;
  bool deleted = false;

  bool readable() const { return perms.size() > 0 && perms[0] == 'r'; }
  bool executable() const { return perms.size() > 2 && perms[2] == 'x'; }
};

// Parses the text of a maps file. Lines that do not parse are skipped.
std::vector<MapEntry> parse_maps(const std::string& text);

// Reads and parses /proc/PID/maps. On failure returns false and sets *err (if non-null) to errno.
bool read_maps(pid_t pid, std::vector<MapEntry>* out, int* err);

// "/proc/PID/root" + path: opens the file as the target sees it, even inside a container.
std::string proc_root_path(pid_t pid, const std::string& path);

}  // namespace pyprofd
