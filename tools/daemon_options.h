// `pyprofd daemon`'s command line: what to sample, how, where the windows go and
// where the HTTP server listens. Parsed and checked before anything starts.
#pragma once
#include <regex>
#include <string>
#include <utility>
#include <vector>

#include "profiler/native_stacks.h"

namespace pyprofd::cli {

struct DaemonArgs {
  std::vector<int> pids;
  std::string match;      // --match REGEX, "" if not given
  std::regex match_re;
  bool all = false;
  bool subprocesses = false, async_tasks = false;
  std::string mode = "cpu";
  double rate = 100, window = 60;
  std::string dir;
  int keep = 60;
  std::vector<std::string> formats{"pprof"};
  std::string listen;     // HOST:PORT, "" for no server
  std::string listen_host;
  int listen_port = 0;
  bool listen_any = false;
  std::string app_name = "pyprofd";
  std::vector<std::pair<std::string, std::string>> labels;
  std::string log_file, log_level = "info";
  std::string push;       // --push URL (Pyroscope), "" for none
  std::string spool_dir = "/var/lib/pyprofd/spool";
  uint64_t spool_max = 64ull << 20;
  std::string config;     // --config FILE, "" for none
  double max_cpu = 1;     // --max-cpu PERCENT of one core (default 1), 0 for no budget
  NativeOptions native;   // --native, --native-all, --native-pause (as record)
  std::string native_pause;
};

// Fills *a. -1 to go on, else the exit code (help shown, or one line on stderr).
int parse_daemon_args(const std::vector<std::string>& args, DaemonArgs* a);

// The file extension written for a format ("pprof" -> "pb.gz").
std::string extension_of(const std::string& format);

}  // namespace pyprofd::cli
