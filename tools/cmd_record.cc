// `pyprofd record`: sample a live process (tree) or a launched command, stop on
// Ctrl-C / SIGTERM / --duration / exit of every target, write the profile(s).
#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <boost/program_options.hpp>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <iostream>
#include <sstream>

#include "exporters/atomic_file.h"
#include "exporters/formats.h"
#include "exporters/top_table.h"
#include "profiler/clock.h"
#include "model/profile.h"
#include "profiler/session.h"
#include "tools/cli.h"

namespace po = boost::program_options;

namespace pyprofd::cli {

namespace {

volatile sig_atomic_t g_stop = 0;
volatile sig_atomic_t g_signal = 0;

void on_stop_signal(int sig) {
  g_stop = 1;
  g_signal = sig;
}

const char* kRecordHelp =
    "pyprofd record: sample a running Python process (tree) and write a profile\n"
    "\n"
    "usage: pyprofd record --pid PID [options]\n"
    "       pyprofd record [options] -- python script.py ARGS...\n"
    "\n"
    "Recording stops on Ctrl-C (SIGINT), SIGTERM, --duration, or when every target has exited;\n"
    "then the profile is written (atomically) and a summary goes to stderr. The target is never\n"
    "paused or written to.\n"
    "\n"
    "In pstats files, call counts (ncalls) are SAMPLE counts, not real calls: a function's ncalls\n"
    "is the number of samples whose stack contained it; tottime/cumtime are the times those\n"
    "samples stand for (CPU time in cpu mode, wall time in wall mode).\n"
    "\n"
    "options";

struct Output {
  std::string path;
  std::string format;
};

std::string replace_pid(const std::string& path, int pid) {
  std::string out = path;
  for (size_t at = out.find("{pid}"); at != std::string::npos; at = out.find("{pid}", at))
    out.replace(at, 5, std::to_string(pid));
  return out;
}

// Starts cmd with the caller's stdio and process group (so Ctrl-C reaches it too).
// A failed exec is reported through a close-on-exec pipe.
pid_t launch(const std::vector<std::string>& cmd, std::string* error) {
  int fds[2];
  if (pipe2(fds, O_CLOEXEC) != 0) {
    *error = std::string("pipe: ") + std::strerror(errno);
    return -1;
  }
  pid_t pid = fork();
  if (pid < 0) {
    *error = std::string("fork: ") + std::strerror(errno);
    return -1;
  }
  if (pid == 0) {
    std::vector<char*> argv;
    for (const auto& a : cmd) argv.push_back(const_cast<char*>(a.c_str()));
    argv.push_back(nullptr);
    execvp(argv[0], argv.data());
    int e = errno;
    (void)!write(fds[1], &e, sizeof e);
    _exit(127);
  }
  close(fds[1]);
  int e = 0;
  ssize_t n = read(fds[0], &e, sizeof e);
  close(fds[0]);
  if (n == sizeof e) {
    waitpid(pid, nullptr, 0);
    *error = "cannot run '" + cmd[0] + "': " + std::strerror(e);
    return -1;
  }
  return pid;
}

bool program_on_path(const std::string& name) {
  const char* path = std::getenv("PATH");
  std::stringstream dirs(path ? path : "");
  std::string dir;
  while (std::getline(dirs, dir, ':'))
    if (!dir.empty() && access((dir + "/" + name).c_str(), X_OK) == 0) return true;
  return false;
}

int exit_code_of(int status) {
  if (WIFEXITED(status)) return WEXITSTATUS(status);
  if (WIFSIGNALED(status)) return 128 + WTERMSIG(status);
  return kExitError;
}

std::string describe_pids(const std::set<pid_t>& pids) {
  std::ostringstream out;
  bool first = true;
  for (pid_t p : pids) {
    out << (first ? "" : ", ") << p;
    first = false;
  }
  return out.str();
}

void print_status(const SessionSummary& s) {
  double secs = s.wall_ns / 1e9;
  char line[200];
  std::snprintf(line, sizeof line, "\r\033[Kpyprofd: %.1f s, %llu samples, %.1f Hz, %zu processes, %llu errors",
                secs, static_cast<unsigned long long>(s.stats.samples), secs > 0 ? s.ticks / secs : 0.0,
                s.pids.size(), static_cast<unsigned long long>(s.stats.errors + s.stats.invalid));
  std::fputs(line, stderr);
  std::fflush(stderr);
}

}  // namespace

int run_record(const std::vector<std::string>& all_args) {
  // Everything after "--" is the command to launch.
  std::vector<std::string> args, command;
  auto dash = std::find(all_args.begin(), all_args.end(), "--");
  args.assign(all_args.begin(), dash);
  if (dash != all_args.end()) command.assign(dash + 1, all_args.end());

  po::options_description opts(kRecordHelp);
  int pid = 0;
  std::vector<std::string> outputs;
  std::string format, mode = "cpu";
  double rate = 100, duration = 0;
  int top = -1;
  ExportOptions export_options;
  opts.add_options()("help,h", "show this help")(
      "pid,p", po::value<int>(&pid), "process id to record (the root of the tree with --subprocesses)")(
      "output,o", po::value<std::vector<std::string>>(&outputs),
      "output file; may be given several times. The format comes from the extension: .stats .pstats .prof "
      "(pstats), .pb.gz .pprof (pprof), .folded .collapsed (collapsed stacks), .speedscope.json, .callgrind or "
      "callgrind.out.* (callgrind), .dot (call graph), .png (call graph rendered by graphviz), .svg (flame graph). "
      "'{pid}' in the name writes one file per process")(
      "format,f", po::value<std::string>(&format),
      "format for every -o, overriding extensions: pstats, pprof, collapsed, speedscope, callgrind, dot, png, "
      "flamegraph, callgraph-svg")(
      "min-node", po::value<double>(&export_options.dot.min_node)->default_value(0.5),
      "call graphs (dot, png, callgraph-svg): leave out functions under this % of the total")(
      "min-edge", po::value<double>(&export_options.dot.min_edge)->default_value(0.1),
      "call graphs: leave out calls under this % of the total")(
      "rate,r", po::value<double>(&rate)->default_value(100), "samples per second, 1 to 100000")(
      "duration,d", po::value<double>(&duration), "stop after this many seconds")(
      "subprocesses,s", "follow the target's Python children (and theirs) as they appear and exit")(
      "mode,m", po::value<std::string>(&mode)->default_value("cpu"),
      "cpu: a thread's sample counts only if it used CPU since the previous tick, weighted by that CPU time; "
      "wall: every thread every tick, weighted by elapsed time")(
      "idle,i", "cpu mode: keep samples of threads that used no CPU (weighted by elapsed time)")(
      "gil,g", "keep only samples of the thread holding the GIL")(
      "async,a",
      "asyncio: one stack per task, as written: a coroutine waiting in await sits under its task (<task NAME>) "
      "and the tasks awaiting it; in wall mode suspended tasks are charged their waiting time, in cpu mode only "
      "the running task gets CPU")(
      "top,t", po::value<int>(&top),
      "after writing, print the N functions with the most self time (default 20 on a terminal, else 0)");
  po::variables_map vm;
  try {
    po::store(po::command_line_parser(args).options(opts).run(), vm);
    if (vm.count("help")) {
      std::cout << opts << "\n";
      return kExitOk;
    }
    po::notify(vm);
  } catch (const po::error& e) {
    return fail(kExitUsage, std::string("record: ") + e.what());
  }
  if (vm.count("pid") && !command.empty()) return fail(kExitUsage, "record: give either --pid or -- COMMAND, not both");
  if (!vm.count("pid") && command.empty()) return fail(kExitUsage, "record: give --pid PID or -- COMMAND ARGS...");
  if (vm.count("pid") && pid <= 0) return fail(kExitUsage, "record: --pid must be a positive process id");
  if (!(rate >= 1 && rate <= 100000)) return fail(kExitUsage, "record: --rate must be between 1 and 100000 Hz");
  if (vm.count("duration") && !(duration > 0)) return fail(kExitUsage, "record: --duration must be positive");
  if (mode != "cpu" && mode != "wall") return fail(kExitUsage, "record: --mode must be cpu or wall");
  if (top < -1) return fail(kExitUsage, "record: --top must be 0 or more");
  for (double pct : {export_options.dot.min_node, export_options.dot.min_edge})
    if (!(pct >= 0 && pct <= 100)) return fail(kExitUsage, "record: --min-node and --min-edge take a % from 0 to 100");
  export_options.dot.min_node /= 100;
  export_options.dot.min_edge /= 100;
  if (outputs.empty()) outputs.push_back("profile.stats");

  std::vector<Output> targets;
  auto known = known_formats();
  for (const auto& path : outputs) {
    std::string f = format.empty() ? format_for_path(path) : format;
    if (f.empty()) return fail(kExitUsage, "record: cannot tell the format of '" + path + "' from its extension; use --format");
    if (std::find(known.begin(), known.end(), f) == known.end()) return fail(kExitUsage, "record: unknown format '" + f + "'");
    targets.push_back(Output{path, f});
  }
  // A call-graph picture needs graphviz: say so before recording, not after.
  for (const auto& t : targets) {
    if ((t.format == "png" || t.format == "callgraph-svg") && !program_on_path("dot"))
      return fail(kExitError, "record: " + t.path + " needs graphviz's dot, which is not installed (apt-get install graphviz)");
  }
  // Unwritable output is an error before attaching, not after a long recording.
  for (const auto& t : targets) {
    std::string err;
    if (!check_writable_dir(replace_pid(t.path, 0), &err)) return fail(kExitError, "record: " + err);
  }

  SessionOptions options;
  options.rate_hz = rate;
  options.duration_s = duration;
  options.subprocesses = vm.count("subprocesses") > 0;
  options.sampling.mode = mode == "wall" ? ProfileMode::kWall : ProfileMode::kCpu;
  options.sampling.idle = vm.count("idle") > 0;
  options.sampling.gil = vm.count("gil") > 0;
  options.sampling.async_tasks = vm.count("async") > 0;

  Profile profile;
  profile.mode = options.sampling.mode;
  profile.rate_hz = rate;

  struct sigaction sa {};
  sa.sa_handler = on_stop_signal;
  sigemptyset(&sa.sa_mask);
  sigaction(SIGINT, &sa, nullptr);
  sigaction(SIGTERM, &sa, nullptr);

  pid_t launched = 0;
  if (!command.empty()) {
    std::string err;
    launched = launch(command, &err);
    if (launched < 0) return fail(kExitError, "record: " + err);
    options.launched = launched;
    pid = launched;
  }
  SamplingSession recorder(options, &profile);
  AttachError attach_error;
  if (launched) {
    // Poll until the interpreter is up, so sampling starts with its first Python frame.
    bool attached = false;
    while (!g_stop && !(attached = recorder.attach_root(launched, &attach_error))) {
      if (recorder.reap_launched()) break;
      if (attach_error.kind == AttachErrorKind::kPermission ||
          attach_error.kind == AttachErrorKind::kUnsupportedVersion)
        break;
      usleep(500);
    }
    if (!attached && !options.subprocesses) {
      if (!recorder.reap_launched() && !g_stop) {
        fail(kExitError, "record: " + attach_error.message);
        kill(launched, SIGTERM);
      }
      int status = 0;
      waitpid(launched, &status, 0);
      if (recorder.summary().launched_status >= 0) status = recorder.summary().launched_status;
      std::cerr << "pyprofd: the command exited before any Python code could be sampled\n";
      return exit_code_of(status);
    }
    if (!attached) recorder.follow_root(launched);
  } else if (!recorder.attach_root(pid, &attach_error)) {
    if (!(options.subprocesses && attach_error.kind == AttachErrorKind::kNotPython))
      return fail(kExitError, attach_error.message);
    recorder.follow_root(pid);  // e.g. a shell whose children run Python
  }

  profile.start_time_ns = realtime_ns();
  bool tty = isatty(STDERR_FILENO);
  recorder.run(&g_stop, tty ? std::function<void(const SessionSummary&)>(print_status) : nullptr);
  if (tty) std::fputs("\r\033[K", stderr);
  const SessionSummary& s = recorder.summary();
  profile.duration_ns = s.wall_ns;

  // Writing must not be cut short by a second Ctrl-C.
  sigset_t block, old;
  sigemptyset(&block);
  sigaddset(&block, SIGINT);
  sigaddset(&block, SIGTERM);
  sigprocmask(SIG_BLOCK, &block, &old);

  double secs = s.wall_ns / 1e9;
  char first_sample[64] = "no sample taken";
  if (s.first_sample_ns >= 0) std::snprintf(first_sample, sizeof first_sample, "first sample after %.1f ms", s.first_sample_ns / 1e6);
  std::fprintf(stderr,
               "pyprofd: recorded %.2f s: %llu samples, %llu ticks at %.1f Hz (requested %g Hz), %llu missed ticks\n"
               "pyprofd: processes: %s (%zu); threads: %zu; invalid samples: %llu; errors: %llu\n"
               "pyprofd: own CPU %.3f s (%.1f us per tick, %.1f us per sample); %s\n",
               secs, static_cast<unsigned long long>(s.stats.samples), static_cast<unsigned long long>(s.ticks),
               secs > 0 ? s.ticks / secs : 0.0, rate, static_cast<unsigned long long>(s.missed_ticks),
               describe_pids(s.pids).c_str(), s.pids.size(), s.threads,
               static_cast<unsigned long long>(s.stats.invalid), static_cast<unsigned long long>(s.stats.errors),
               s.own_cpu_ns / 1e9, s.ticks ? s.own_cpu_ns / 1e3 / s.ticks : 0.0,
               s.stats.samples ? s.own_cpu_ns / 1e3 / s.stats.samples : 0.0,
               first_sample);

  int rc = kExitOk;
  for (const auto& t : targets) {
    bool per_pid = t.path.find("{pid}") != std::string::npos;
    std::vector<std::pair<std::string, Profile>> files;
    if (per_pid) {
      for (pid_t p : s.pids) files.emplace_back(replace_pid(t.path, p), profile.only_pid(p));
    } else {
      files.emplace_back(t.path, profile);
    }
    for (const auto& [path, prof] : files) {
      std::string bytes, err;
      if (per_pid && prof.total_samples() == 0) {
        std::cerr << "pyprofd: " << path << " not written: no samples from that process\n";
        continue;
      }
      export_options.title = "pyprofd " + std::string(mode) + " profile";
      if (!export_profile(t.format, prof, export_options, &bytes, &err)) {
        std::cerr << "pyprofd: " << path << " not written: " << err << "\n";
        rc = kExitError;
        continue;
      }
      if (!write_file_atomic(path, bytes, &err)) {
        std::cerr << "pyprofd: " << err << "\n";
        rc = kExitError;
        continue;
      }
      std::cerr << "pyprofd: wrote " << path << " (" << t.format << ")\n";
    }
  }
  if (top < 0) top = isatty(STDOUT_FILENO) ? 20 : 0;
  if (top > 0 && profile.total_samples() > 0) std::cout << format_top(profile, top) << std::flush;

  if (launched) {
    // The command gets the signal that stopped us (Ctrl-C from a terminal reaches it anyway).
    if (recorder.summary().launched_status < 0 && g_signal) kill(launched, g_signal);
    int status = recorder.summary().launched_status;
    if (status < 0) waitpid(launched, &status, 0);
    sigprocmask(SIG_SETMASK, &old, nullptr);
    return rc == kExitOk ? exit_code_of(status) : rc;
  }
  sigprocmask(SIG_SETMASK, &old, nullptr);
  return rc;
}

}  // namespace pyprofd::cli
