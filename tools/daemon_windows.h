// The daemon's window files: <app>-<UTC start, ISO 8601 basic>.<ext> in --dir, one per
// format, written atomically; only the newest --keep windows stay.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "model/profile.h"
#include "tools/daemon_options.h"

namespace pyprofd::cli {

// "20261202T033000Z" for a wall-clock time in ns.
std::string utc_stamp(int64_t realtime_ns);

// One file of a window, exported and ready to write.
struct WindowFile {
  std::string stamp;  // the window's utc_stamp: the files of one window share it
  std::string path;
  std::string bytes;
};

// w in every format of --formats; empty for a window without samples. Logs what failed.
std::vector<WindowFile> export_window(const DaemonArgs& args, const Profile& w);

// Writes f atomically, first recreating --dir (mode 0700) if it was removed. Logs.
bool write_window_file(const DaemonArgs& args, const WindowFile& f, std::string* error);

// Removes windows older than the newest --keep, and temp files a dead daemon left.
void prune_windows(const DaemonArgs& args);

}  // namespace pyprofd::cli
