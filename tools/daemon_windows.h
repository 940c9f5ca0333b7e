// The daemon's window files: <app>-<UTC start, ISO 8601 basic>.<ext> in --dir, one per
// format, written atomically; only the newest --keep windows stay.
#pragma once
#include <cstdint>
#include <string>

#include "model/profile.h"
#include "tools/daemon_options.h"

namespace pyprofd::cli {

// "20261202T033000Z" for a wall-clock time in ns.
std::string utc_stamp(int64_t realtime_ns);

// Writes w in every format (a window without samples is skipped) and prunes old
// windows. Returns true if the window was written. Logs what it did.
bool write_window(const DaemonArgs& args, const Profile& w);

}  // namespace pyprofd::cli
