#include "tools/daemon_windows.h"

#include <dirent.h>
#include <signal.h>
#include <sys/stat.h>
#include <spdlog/spdlog.h>
#include <time.h>
#include <unistd.h>

#include <cerrno>
#include <regex>
#include <set>
#include <vector>

#include "exporters/atomic_file.h"
#include "exporters/formats.h"

namespace pyprofd::cli {

namespace {

// A temp file of write_file_atomic (".<name>.tmp.<pid>.<n>") whose writer is gone.
bool left_by_dead_writer(const DaemonArgs& args, const std::string& name) {
  // At most 9 digits: std::stol throws past a long, and the pid must fit a pid_t.
  static const std::regex kTemp("\\.tmp\\.([0-9]{1,9})\\.[0-9]+$");
  std::smatch m;
  if (name.rfind("." + args.app_name + "-", 0) != 0 || !std::regex_search(name, m, kTemp)) return false;
  pid_t writer = static_cast<pid_t>(std::stol(m[1].str()));
  return writer > 0 && writer != getpid() && kill(writer, 0) != 0 && errno == ESRCH;
}

// Removes every file of a window older than the newest args.keep, and temp files a
// crashed daemon left behind.
void prune(const DaemonArgs& args) {
  static const std::regex kName("-([0-9]{8}T[0-9]{6}Z)\\.");
  std::vector<std::pair<std::string, std::string>> files;  // (stamp, name)
  std::set<std::string> stamps;
  DIR* d = opendir(args.dir.c_str());
  if (!d) return;
  while (dirent* e = readdir(d)) {
    std::string name = e->d_name;
    std::smatch m;
    if (left_by_dead_writer(args, name) && unlink((args.dir + "/" + name).c_str()) == 0)
      spdlog::info("removed {}, left by a daemon that died while writing", name);
    if (name.rfind(args.app_name + "-", 0) != 0) continue;
    std::string rest = name.substr(args.app_name.size());
    if (!std::regex_search(rest, m, kName) || m.position(0) != 0) continue;
    files.emplace_back(m[1].str(), name);
    stamps.insert(m[1].str());
  }
  closedir(d);
  if (stamps.size() <= static_cast<size_t>(args.keep)) return;
  auto first_kept = std::prev(stamps.end(), args.keep);
  for (const auto& [stamp, name] : files)
    if (stamp < *first_kept) {
      if (unlink((args.dir + "/" + name).c_str()) == 0) spdlog::debug("removed old window {}", name);
    }
}

}  // namespace

std::string utc_stamp(int64_t realtime_ns) {
  time_t secs = static_cast<time_t>(realtime_ns / 1000000000);
  tm t{};
  gmtime_r(&secs, &t);
  char buf[32];
  strftime(buf, sizeof buf, "%Y%m%dT%H%M%SZ", &t);
  return buf;
}

std::vector<WindowFile> export_window(const DaemonArgs& args, const Profile& w) {
  std::vector<WindowFile> files;
  const std::string stamp = utc_stamp(w.start_time_ns);
  if (w.total_samples() == 0) {
    spdlog::info("window {} has no samples; not written", stamp);
    return files;
  }
  ExportOptions options;
  options.title = "pyprofd " + args.mode + " profile";
  for (const auto& format : args.formats) {
    WindowFile f{stamp, args.dir + "/" + args.app_name + "-" + stamp + "." + extension_of(format), {}};
    std::string err;
    if (!export_profile(format, w, options, &f.bytes, &err)) {
      spdlog::error("{} not written: {}", f.path, err);
      continue;
    }
    files.push_back(std::move(f));
  }
  return files;
}

bool write_window_file(const DaemonArgs& args, const WindowFile& f, std::string* error) {
  struct stat st;
  if (stat(args.dir.c_str(), &st) != 0 && errno == ENOENT) {
    if (mkdir(args.dir.c_str(), 0700) == 0) spdlog::warn("output folder {} was removed; created it again", args.dir);
  }
  return write_file_atomic(f.path, f.bytes, error);
}

void prune_windows(const DaemonArgs& args) { prune(args); }

}  // namespace pyprofd::cli
