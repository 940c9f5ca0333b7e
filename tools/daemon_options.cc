#include "tools/daemon_options.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <boost/program_options.hpp>
#include <iostream>
#include <sstream>

#include "exporters/atomic_file.h"
#include "exporters/formats.h"
#include "tools/cli.h"
#include "tools/native_options.h"
#include "tools/parse_options.h"

namespace po = boost::program_options;

namespace pyprofd::cli {

namespace {

const char* kDaemonHelp =
    "pyprofd daemon: profile Python processes continuously\n"
    "\n"
    "usage: pyprofd daemon (--pid PID... | --match REGEX | --all) [options]\n"
    "\n"
    "Samples into windows of --window seconds aligned to the wall clock; with --dir each window is\n"
    "written as <app>-<UTC start>.<ext> (the newest --keep kept). With --listen it serves\n"
    "/debug/pprof/profile?seconds=N, /debug/pprof/recent?windows=K, /metrics, /healthz, /targets.\n"
    "SIGUSR1 writes the current window now, SIGHUP reopens the log and rescans, SIGTERM/SIGINT\n"
    "write the last window and exit.\n"
    "\n"
    "options";

int usage(const std::string& message) { return fail(kExitUsage, "daemon: " + message); }

std::vector<std::string> split(const std::string& s, char sep) {
  std::vector<std::string> out;
  std::stringstream in(s);
  std::string item;
  while (std::getline(in, item, sep)) out.push_back(item);
  return out;
}

bool is_loopback(const std::string& host) {
  return host == "localhost" || host == "::1" || host.rfind("127.", 0) == 0;
}

// HOST:PORT, [V6]:PORT. -1 to go on, else the exit code.
int check_listen(DaemonArgs* a) {
  size_t colon = a->listen.rfind(':');
  if (colon == std::string::npos || colon == 0) return usage("--listen takes HOST:PORT, got '" + a->listen + "'");
  std::string host = a->listen.substr(0, colon), port = a->listen.substr(colon + 1);
  if (host.size() > 2 && host.front() == '[' && host.back() == ']') host = host.substr(1, host.size() - 2);
  if (port.empty() || port.size() > 5 || port.find_first_not_of("0123456789") != std::string::npos ||
      std::stoi(port) > 65535)
    return usage("--listen: bad port '" + port + "'");
  if (!a->listen_any && !is_loopback(host))
    return usage("--listen " + a->listen + " is not a loopback address; add --listen-any to serve other hosts");
  a->listen_host = host;
  a->listen_port = std::stoi(port);
  return -1;
}

int check_formats(DaemonArgs* a, const std::string& formats) {
  a->formats = split(formats, ',');
  auto known = known_formats();
  if (a->formats.empty()) return usage("--formats is empty");
  for (const auto& f : a->formats)
    if (f == "png" || f == "callgraph-svg" || std::find(known.begin(), known.end(), f) == known.end())
      return usage("unknown format '" + f + "' (pprof, pstats, collapsed, speedscope, callgrind, dot, flamegraph)");
  return -1;
}

int check_labels(DaemonArgs* a, const std::vector<std::string>& labels) {
  for (const auto& l : labels) {
    size_t eq = l.find('=');
    if (eq == std::string::npos || eq == 0) return usage("--label takes KEY=VALUE, got '" + l + "'");
    a->labels.emplace_back(l.substr(0, eq), l.substr(eq + 1));
  }
  return -1;
}

int check_values(DaemonArgs* a) {
  int targets = !a->pids.empty() + !a->match.empty() + a->all;
  if (targets != 1) return usage("give exactly one of --pid PID..., --match REGEX, --all");
  for (int pid : a->pids)
    if (pid <= 0) return usage("--pid must be a positive process id");
  if (!a->match.empty()) {
    try {
      a->match_re = std::regex(a->match, std::regex::extended | std::regex::nosubs);
    } catch (const std::regex_error& e) {
      return usage("bad --match regex '" + a->match + "': " + e.what());
    }
  }
  if (!(a->rate >= 1 && a->rate <= 100000)) return usage("--rate must be between 1 and 100000 Hz");
  if (!(a->window >= 1 && a->window <= 86400)) return usage("--window must be between 1 and 86400 seconds");
  if (a->keep < 1) return usage("--keep must be at least 1");
  if (!(a->max_cpu >= 0 && a->max_cpu <= 100 * 1024)) return usage("--max-cpu must be a percentage >= 0");
  if (a->mode != "cpu" && a->mode != "wall") return usage("--mode must be cpu or wall");
  if (a->app_name.empty() || a->app_name.find('/') != std::string::npos)
    return usage("--app-name must be a non-empty name without '/'");
  if (spdlog::level::from_str(a->log_level) == spdlog::level::off && a->log_level != "off")
    return usage("--log-level must be trace, debug, info, warn, error, critical or off");
  std::string err;
  if (!a->dir.empty() && !check_writable_dir(a->dir + "/.pyprofd-probe", &err)) return fail(kExitError, "daemon: " + err);
  if (!a->log_file.empty() && !check_writable_dir(a->log_file, &err)) return fail(kExitError, "daemon: " + err);
  if (!a->push.empty()) {
    if (a->push.rfind("http://", 0) != 0)
      return usage("--push takes an http:// URL (the Pyroscope server or Grafana Alloy), got '" + a->push + "'");
    if (a->spool_max < 4096) return usage("--spool-max must be at least 4096 bytes");
    std::error_code ec;
    std::filesystem::create_directories(a->spool_dir, ec);
    if (!check_writable_dir(a->spool_dir + "/.pyprofd-probe", &err)) return fail(kExitError, "daemon: " + err);
  }
  return a->listen.empty() ? -1 : check_listen(a);
}

// --config FILE: Boost's config-file syntax, the same options as the flags; what the
// command line gave wins (the first value stored stays).
int read_config(const po::options_description& opts, const std::string& path, po::variables_map* vm) {
  if (path.empty()) return -1;
  std::ifstream in(path);
  if (!in) return fail(kExitError, "daemon: cannot read --config " + path);
  try {
    po::store(po::parse_config_file(in, opts), *vm);
    po::notify(*vm);
  } catch (const po::error& e) {
    return usage("--config " + path + ": " + e.what());
  }
  return -1;
}

}  // namespace

std::string extension_of(const std::string& format) {
  if (format == "pprof") return "pb.gz";
  if (format == "collapsed") return "folded";
  if (format == "speedscope") return "speedscope.json";
  if (format == "flamegraph") return "svg";
  return format;  // pstats, callgrind, dot
}

int parse_daemon_args(const std::vector<std::string>& args, DaemonArgs* a) {
  std::string formats = "pprof";
  std::vector<std::string> labels;
  po::options_description opts(kDaemonHelp);
  opts.add_options()("help,h", "show this help")(
      "pid,p", po::value<std::vector<int>>(&a->pids), "process to sample (repeatable)")(
      "match", po::value<std::string>(&a->match),
      "sample every process whose command line (arguments joined by spaces) matches this extended regex; "
      "rescanned every second")("all", po::bool_switch(&a->all), "sample every CPython process pyprofd may read")(
      "subprocesses,s", po::bool_switch(&a->subprocesses), "follow the targets' Python children")(
      "mode,m", po::value<std::string>(&a->mode)->default_value("cpu"), "cpu or wall (as record)")(
      "async,a", po::bool_switch(&a->async_tasks), "asyncio: one stack per task (as record)")(
      "rate,r", po::value<double>(&a->rate)->default_value(100), "samples per second")(
      "window", po::value<double>(&a->window)->default_value(60), "window length in seconds")(
      "dir", po::value<std::string>(&a->dir), "write each window here")(
      "keep", po::value<int>(&a->keep)->default_value(60), "windows kept in --dir")(
      "formats", po::value<std::string>(&formats)->default_value("pprof"),
      "comma-separated: pprof, pstats, collapsed, speedscope, callgrind, dot, flamegraph")(
      "listen", po::value<std::string>(&a->listen), "serve HTTP on HOST:PORT (loopback only, port 0: any free one)")(
      "listen-any", po::bool_switch(&a->listen_any), "allow --listen on a non-loopback address")(
      "app-name", po::value<std::string>(&a->app_name)->default_value("pyprofd"),
      "file name prefix and the 'service' label")(
      "label", po::value<std::vector<std::string>>(&labels), "KEY=VALUE added to every sample (repeatable)")(
      "log-file", po::value<std::string>(&a->log_file), "log here instead of stderr (reopened on SIGHUP)")(
      "log-level", po::value<std::string>(&a->log_level)->default_value("info"), "trace, debug, info, warn, error")(
      "push", po::value<std::string>(&a->push), "POST each window to this Pyroscope URL (its /ingest API)")(
      "spool-dir", po::value<std::string>(&a->spool_dir)->default_value(a->spool_dir),
      "windows waiting to be pushed are kept here")(
      "spool-max", po::value<uint64_t>(&a->spool_max)->default_value(a->spool_max),
      "bytes the spool may hold; the oldest windows are dropped beyond it")(
      "max-cpu", po::value<double>(&a->max_cpu)->default_value(1),
      "keep the daemon's CPU under this % of one core by lowering the rate (default 1; 0: no budget)")(
      "config", po::value<std::string>(&a->config),
      "read options from this file (one 'name = value' per line, names as the flags; flags win)");
  add_native_options(opts, &a->native_pause);
  po::variables_map vm;
  if (int code = parse_options(args, opts, "daemon", &vm); code >= 0) return code;
  if (int code = read_config(opts, a->config, &vm); code >= 0) return code;
  std::string error;
  if (!read_native_options(vm, a->native_pause, &a->native, &error)) return usage(error);
  int rc = check_formats(a, formats);
  if (rc < 0) rc = check_labels(a, labels);
  return rc < 0 ? check_values(a) : rc;
}

}  // namespace pyprofd::cli
