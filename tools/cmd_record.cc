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
#include "tools/native_options.h"
#include "tools/parse_options.h"

namespace po = boost::program_options;

namespace pyprofd::cli {

namespace {

constexpr double kInvalidWarnPercent = 3.0;  // above this share of invalid samples, say so

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
    "paused or written to (--native-pause always, or auto where perf events are not allowed, stops\n"
    "one thread at a time briefly; the pauses are counted).\n"
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

// What the command line asks for.
struct RecordArgs {
  int pid = 0;
  bool has_pid = false;
  std::vector<std::string> command;  // after "--": the command to launch
  std::vector<std::string> outputs;
  std::string format, mode = "cpu";
  double rate = 100, duration = 0;
  bool has_duration = false;
  int top = -1;
  bool subprocesses = false, idle = false, gil = false, async_tasks = false;
  std::string native_pause;
  NativeOptions native;
  ExportOptions export_options;
};

po::options_description record_options(RecordArgs* a) {
  po::options_description opts(kRecordHelp);
  opts.add_options()("help,h", "show this help")(
      "pid,p", po::value<int>(&a->pid), "process id to record (the root of the tree with --subprocesses)")(
      "output,o", po::value<std::vector<std::string>>(&a->outputs),
      "output file; may be given several times. The format comes from the extension: .stats .pstats .prof "
      "(pstats), .pb.gz .pprof (pprof), .folded .collapsed (collapsed stacks), .speedscope.json, .callgrind or "
      "callgrind.out.* (callgrind), .dot (call graph), .png (call graph rendered by graphviz), .svg (flame graph). "
      "'{pid}' in the name writes one file per process")(
      "format,f", po::value<std::string>(&a->format),
      "format for every -o, overriding extensions: pstats, pprof, collapsed, speedscope, callgrind, dot, png, "
      "flamegraph, callgraph-svg")(
      "min-node", po::value<double>(&a->export_options.dot.min_node)->default_value(0.5),
      "call graphs (dot, png, callgraph-svg): leave out functions under this % of the total")(
      "min-edge", po::value<double>(&a->export_options.dot.min_edge)->default_value(0.1),
      "call graphs: leave out calls under this % of the total")(
      "rate,r", po::value<double>(&a->rate)->default_value(100), "samples per second, 1 to 100000")(
      "duration,d", po::value<double>(&a->duration), "stop after this many seconds")(
      "subprocesses,s", "follow the target's Python children (and theirs) as they appear and exit")(
      "mode,m", po::value<std::string>(&a->mode)->default_value("cpu"),
      "cpu: a thread's sample counts only if it used CPU since the previous tick, weighted by that CPU time; "
      "wall: every thread every tick, weighted by elapsed time")(
      "idle,i", "cpu mode: keep samples of threads that used no CPU (weighted by elapsed time)")(
      "gil,g", "keep only samples of the thread holding the GIL")(
      "async,a",
      "asyncio: one stack per task, as written: a coroutine waiting in await sits under its task (<task NAME>) "
      "and the tasks awaiting it; in wall mode suspended tasks are charged their waiting time, in cpu mode only "
      "the running task gets CPU")(
      "top,t", po::value<int>(&a->top),
      "after writing, print the N functions with the most self time (default 20 on a terminal, else 0)");
  add_native_options(opts, &a->native_pause);
  return opts;
}

// The values' ranges and combinations. -1 if all is well, else the exit code.
int check_record_args(RecordArgs* a) {
  if (a->has_pid && !a->command.empty()) return fail(kExitUsage, "record: give either --pid or -- COMMAND, not both");
  if (!a->has_pid && a->command.empty()) return fail(kExitUsage, "record: give --pid PID or -- COMMAND ARGS...");
  if (a->has_pid && a->pid <= 0) return fail(kExitUsage, "record: --pid must be a positive process id");
  if (!(a->rate >= 1 && a->rate <= 100000)) return fail(kExitUsage, "record: --rate must be between 1 and 100000 Hz");
  if (a->has_duration && !(a->duration > 0)) return fail(kExitUsage, "record: --duration must be positive");
  if (a->mode != "cpu" && a->mode != "wall") return fail(kExitUsage, "record: --mode must be cpu or wall");
  if (a->top < -1) return fail(kExitUsage, "record: --top must be 0 or more");
  auto& dot = a->export_options.dot;
  for (double pct : {dot.min_node, dot.min_edge})
    if (!(pct >= 0 && pct <= 100)) return fail(kExitUsage, "record: --min-node and --min-edge take a % from 0 to 100");
  dot.min_node /= 100;
  dot.min_edge /= 100;
  if (a->outputs.empty()) a->outputs.push_back("profile.stats");
  return -1;
}

// Fills *a from the command line (everything after "--" is the command to launch).
// -1 to go on, else the exit code (help shown, or a usage error).
int parse_record_args(const std::vector<std::string>& all_args, RecordArgs* a) {
  auto dash = std::find(all_args.begin(), all_args.end(), "--");
  std::vector<std::string> args(all_args.begin(), dash);
  if (dash != all_args.end()) a->command.assign(dash + 1, all_args.end());
  po::options_description opts = record_options(a);
  po::variables_map vm;
  if (int code = parse_options(args, opts, "record", &vm); code >= 0) return code;
  a->has_pid = vm.count("pid") > 0;
  a->has_duration = vm.count("duration") > 0;
  a->subprocesses = vm.count("subprocesses") > 0;
  a->idle = vm.count("idle") > 0;
  a->gil = vm.count("gil") > 0;
  a->async_tasks = vm.count("async") > 0;
  std::string error;
  if (!read_native_options(vm, a->native_pause, &a->native, &error)) return fail(kExitUsage, "record: " + error);
  return check_record_args(a);
}

// Each -o with its format; fails early, before recording, on what would fail after it
// (unknown format, graphviz missing, unwritable directory). -1 to go on, else the exit code.
int plan_outputs(const RecordArgs& a, std::vector<Output>* targets) {
  auto known = known_formats();
  for (const auto& path : a.outputs) {
    std::string f = a.format.empty() ? format_for_path(path) : a.format;
    if (f.empty()) return fail(kExitUsage, "record: cannot tell the format of '" + path + "' from its extension; use --format");
    if (std::find(known.begin(), known.end(), f) == known.end()) return fail(kExitUsage, "record: unknown format '" + f + "'");
    targets->push_back(Output{path, f});
  }
  for (const auto& t : *targets) {
    if ((t.format == "png" || t.format == "callgraph-svg") && !program_on_path("dot"))
      return fail(kExitError, "record: " + t.path + " needs graphviz's dot, which is not installed (apt-get install graphviz)");
  }
  for (const auto& t : *targets) {
    std::string err;
    if (!check_writable_dir(replace_pid(t.path, 0), &err)) return fail(kExitError, "record: " + err);
  }
  return -1;
}

SessionOptions session_options(const RecordArgs& a) {
  SessionOptions options;
  options.rate_hz = a.rate;
  options.duration_s = a.duration;
  options.subprocesses = a.subprocesses;
  options.sampling.mode = a.mode == "wall" ? ProfileMode::kWall : ProfileMode::kCpu;
  options.sampling.idle = a.idle;
  options.sampling.gil = a.gil;
  options.sampling.async_tasks = a.async_tasks;
  options.sampling.native = a.native;
  options.sampling.interval_ns = static_cast<uint64_t>(1e9 / a.rate);
  return options;
}

void install_stop_handlers() {
  struct sigaction sa {};
  sa.sa_handler = on_stop_signal;
  sigemptyset(&sa.sa_mask);
  sigaction(SIGINT, &sa, nullptr);
  sigaction(SIGTERM, &sa, nullptr);
}

// A launched command that never ran Python: report, stop it if still running, and
// return its exit code.
int give_up_on_launched(SamplingSession& session, pid_t launched, const AttachError& err) {
  if (!session.reap_launched() && !g_stop) {
    fail(kExitError, "record: " + err.message);
    kill(launched, SIGTERM);
  }
  int status = 0;
  waitpid(launched, &status, 0);
  if (session.summary().launched_status >= 0) status = session.summary().launched_status;
  std::cerr << "pyprofd: the command exited before any Python code could be sampled\n";
  return exit_code_of(status);
}

// Attaches the session to its target. -1 to go on, else the exit code.
int start_session(SamplingSession& session, const RecordArgs& a, pid_t launched) {
  AttachError err;
  if (launched) {
    if (!session.attach_launched(&g_stop, &err)) return give_up_on_launched(session, launched, err);
    return -1;
  }
  if (!session.attach(a.pid, &err)) return fail(kExitError, err.message);
  return -1;
}

// Why samples were dropped, and a warning when so many were that the profile leans
// towards the stacks that changed slowly.
void print_invalid(const SamplingStats& st) {
  if (st.unreadable_task_names)
    std::fprintf(stderr, "pyprofd: %llu task names could not be read cleanly (shown as <task ?>)\n",
                 static_cast<unsigned long long>(st.unreadable_task_names));
  if (!st.invalid) return;
  std::fprintf(stderr, "pyprofd: invalid samples by reason: %s\n", st.invalid_reasons().c_str());
  double share = 100.0 * st.invalid / (st.invalid + st.samples);
  if (share > kInvalidWarnPercent)
    std::fprintf(stderr, "pyprofd: warning: %.1f %% of samples were invalid (stacks changing faster than they can be read); "
                 "the profile under-represents them\n", share);
}

// --native: how many stacks merged, and why the others were dropped.
void print_native(const SamplingStats& st) {
  const NativeStats& n = st.native;
  if (!n.merged && !n.torn && !n.unavailable && !n.pauses) return;
  std::fprintf(stderr, "pyprofd: native stacks: %llu merged, %llu torn (native and Python stacks disagreed), "
               "%llu without a native copy (all dropped); %llu thread pauses\n",
               static_cast<unsigned long long>(n.merged), static_cast<unsigned long long>(n.torn),
               static_cast<unsigned long long>(n.unavailable), static_cast<unsigned long long>(n.pauses));
}

void print_summary(const SessionSummary& s, double rate) {
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
  print_invalid(s.stats);
  print_native(s.stats);
  if (s.stats.idle_skips || s.switch_records_errno)
    std::fprintf(stderr, "pyprofd: cpu mode: %llu process ticks skipped with nothing on a CPU (%llu known from "
                 "context-switch records, the rest from /proc)%s%s\n",
                 static_cast<unsigned long long>(s.stats.idle_skips),
                 static_cast<unsigned long long>(s.stats.idle_skips_by_records),
                 s.switch_records_errno ? "; context-switch records unavailable: " : "",
                 s.switch_records_errno ? std::strerror(s.switch_records_errno) : "");
}

// Writes one output (one file per process with '{pid}'). False if any file failed.
bool write_output(const Output& t, const Profile& profile, const std::set<pid_t>& pids, const ExportOptions& options) {
  bool ok = true;
  bool per_pid = t.path.find("{pid}") != std::string::npos;
  std::vector<std::pair<std::string, Profile>> files;
  if (per_pid) {
    for (pid_t p : pids) files.emplace_back(replace_pid(t.path, p), profile.only_pid(p));
  } else {
    files.emplace_back(t.path, profile);
  }
  for (const auto& [path, prof] : files) {
    std::string bytes, err;
    if (per_pid && prof.total_samples() == 0) {
      std::cerr << "pyprofd: " << path << " not written: no samples from that process\n";
      continue;
    }
    if (!export_profile(t.format, prof, options, &bytes, &err)) {
      std::cerr << "pyprofd: " << path << " not written: " << err << "\n";
      ok = false;
      continue;
    }
    if (!write_file_atomic(path, bytes, &err)) {
      std::cerr << "pyprofd: " << err << "\n";
      ok = false;
      continue;
    }
    std::cerr << "pyprofd: wrote " << path << " (" << t.format << ")\n";
  }
  return ok;
}

// Blocks SIGINT and SIGTERM; returns the mask to restore.
sigset_t block_stop_signals() {
  sigset_t block, old;
  sigemptyset(&block);
  sigaddset(&block, SIGINT);
  sigaddset(&block, SIGTERM);
  sigprocmask(SIG_BLOCK, &block, &old);
  return old;
}

// Waits for the launched command and returns its exit code. It gets the signal that
// stopped us (Ctrl-C from a terminal reaches it anyway).
int finish_launched(pid_t launched, const SessionSummary& s) {
  if (s.launched_status < 0 && g_signal) kill(launched, g_signal);
  int status = s.launched_status;
  if (status < 0) waitpid(launched, &status, 0);
  return exit_code_of(status);
}

// The samples stream into the profile; the tool only adds the run's times.
int record_and_write(const RecordArgs& a, const std::vector<Output>& targets, pid_t launched) {
  SessionOptions options = session_options(a);
  options.launched = launched;
  Profile profile;
  profile.mode = options.sampling.mode;
  profile.rate_hz = a.rate;
  SamplingSession session(options, &profile);
  int rc = start_session(session, a, launched);
  if (rc >= 0) return rc;

  profile.start_time_ns = realtime_ns();
  bool tty = isatty(STDERR_FILENO);
  session.run(&g_stop, tty ? std::function<void(const SessionSummary&)>(print_status) : nullptr);
  if (tty) std::fputs("\r\033[K", stderr);
  const SessionSummary& s = session.summary();
  profile.duration_ns = s.wall_ns;

  // Writing must not be cut short by a second Ctrl-C.
  sigset_t old = block_stop_signals();

  print_summary(s, a.rate);
  rc = kExitOk;
  ExportOptions export_options = a.export_options;
  export_options.title = "pyprofd " + a.mode + " profile";
  for (const auto& t : targets)
    if (!write_output(t, profile, s.pids, export_options)) rc = kExitError;
  int top = a.top < 0 ? (isatty(STDOUT_FILENO) ? 20 : 0) : a.top;
  if (top > 0 && profile.total_samples() > 0) std::cout << format_top(profile, top) << std::flush;

  int command_rc = launched ? finish_launched(launched, s) : kExitOk;
  sigprocmask(SIG_SETMASK, &old, nullptr);
  return launched && rc == kExitOk ? command_rc : rc;
}

}  // namespace

int run_record(const std::vector<std::string>& all_args) {
  RecordArgs a;
  int rc = parse_record_args(all_args, &a);
  if (rc >= 0) return rc;
  std::vector<Output> targets;
  rc = plan_outputs(a, &targets);
  if (rc >= 0) return rc;
  install_stop_handlers();
  pid_t launched = 0;
  if (!a.command.empty()) {
    std::string err;
    launched = launch(a.command, &err);
    if (launched < 0) return fail(kExitError, "record: " + err);
  }
  return record_and_write(a, targets, launched);
}

}  // namespace pyprofd::cli
