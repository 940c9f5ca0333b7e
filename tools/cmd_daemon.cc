// `pyprofd daemon`: sample a changing set of processes without end, hand the samples
// to wall-clock windows (written to --dir) and to HTTP clients, until SIGTERM/SIGINT.
// The sampling thread does the windows and rescans between ticks; HTTP has its own.
#include <malloc.h>
#include <signal.h>
#include <spdlog/sinks/basic_file_sink.h>
#include <spdlog/sinks/dist_sink.h>
#include <spdlog/sinks/stdout_sinks.h>
#include <spdlog/pattern_formatter.h>
#include <spdlog/spdlog.h>

#include "profiler/clock.h"
#include "profiler/session.h"
#include "tools/cli.h"
#include "tools/daemon_budget.h"
#include "tools/daemon_http.h"
#include "tools/daemon_options.h"
#include "tools/daemon_push.h"
#include "tools/daemon_state.h"
#include "tools/daemon_targets.h"
#include "tools/daemon_writer.h"

namespace pyprofd::cli {

namespace {

constexpr int64_t kMetricsNs = 250 * 1000 * 1000;   // /metrics refreshed 4 times a second
constexpr double kPushGraceS = 5;                    // SIGTERM: time left to push what is spooled

volatile sig_atomic_t g_stop = 0;
volatile sig_atomic_t g_snapshot = 0;
volatile sig_atomic_t g_reopen = 0;

void on_signal(int sig) {
  if (sig == SIGUSR1) g_snapshot = 1;
  else if (sig == SIGHUP) g_reopen = 1;
  else g_stop = 1;
}

void install_signal_handlers() {
  struct sigaction sa {};
  sa.sa_handler = on_signal;
  sigemptyset(&sa.sa_mask);
  for (int sig : {SIGINT, SIGTERM, SIGUSR1, SIGHUP}) sigaction(sig, &sa, nullptr);
  // cpp-httplib sends without MSG_NOSIGNAL: a write to a client gone (or cut by the request
  // cap) between its liveness check and send() must fail with EPIPE, not end the daemon.
  signal(SIGPIPE, SIG_IGN);
}

// Logs go through one dist sink, so SIGHUP can swap the file under it while other
// threads log.
std::shared_ptr<spdlog::sinks::dist_sink_mt> g_log_sink;

void open_log(const DaemonArgs& a) {
  spdlog::sink_ptr sink;
  try {
    if (a.log_file.empty()) sink = std::make_shared<spdlog::sinks::stderr_sink_mt>();
    else sink = std::make_shared<spdlog::sinks::basic_file_sink_mt>(a.log_file);
  } catch (const spdlog::spdlog_ex& e) {
    spdlog::error("cannot reopen log: {}", e.what());
    return;
  }
  sink->set_formatter(std::make_unique<spdlog::pattern_formatter>("%Y-%m-%dT%H:%M:%S.%eZ pyprofd[%P] %l: %v",
                                                                  spdlog::pattern_time_type::utc));
  g_log_sink->set_sinks({sink});
}

void start_logging(const DaemonArgs& a) {
  g_log_sink = std::make_shared<spdlog::sinks::dist_sink_mt>();
  open_log(a);
  auto logger = std::make_shared<spdlog::logger>("pyprofd", g_log_sink);
  logger->set_level(spdlog::level::from_str(a.log_level));
  logger->flush_on(spdlog::level::trace);  // one line per event, readable at once (tests, tail -f)
  spdlog::set_default_logger(logger);
}

std::string describe_targets(const DaemonArgs& a) {
  if (a.all) return "--all";
  if (!a.match.empty()) return "--match " + a.match;
  std::string s = "--pid";
  for (int pid : a.pids) s += " " + std::to_string(pid);
  return s;
}

int64_t window_start(int64_t now_ns, int64_t window_ns) { return now_ns / window_ns * window_ns; }

// The sampling thread's work between ticks: short, as the next tick waits for it
// (files are written by the WindowWriter's thread, targets found and attached by the
// TargetScanner's).
class DaemonLoop {
 public:
  DaemonLoop(const DaemonArgs& a, const std::vector<std::string>& argv, DaemonState* state)
      : args_(a), argv_(argv), state_(state), scanner_(a, state), writer_(a, state), pusher_(a, state), budget_(a.max_cpu, a.rate),
        window_ns_(static_cast<int64_t>(a.window * 1e9)) {}

  void start(SamplingSession* session) {
    session_ = session;
    window_end_ = window_start(realtime_ns(), window_ns_) + window_ns_;
    state_->fanout.rotate(window_end_ - window_ns_);
    scanner_.start(session);
  }

  TargetScanner& scanner() { return scanner_; }

  void tick() {
    int64_t now = monotonic_ns(), wall = realtime_ns();
    if (wall >= window_end_) end_window(window_end_);
    if (g_snapshot) {
      g_snapshot = 0;
      spdlog::info("SIGUSR1: writing the current window");
      writer_.submit(std::make_shared<const Profile>(state_->fanout.current(wall)));
    }
    if (g_reopen) {
      g_reopen = 0;
      open_log(args_);
      spdlog::info("SIGHUP: log reopened; rescanning targets");
      reload_config();
      scanner_.rescan_soon();
    }
    if (now >= next_metrics_) {
      next_metrics_ = now + kMetricsNs;
      update_metrics(now);
      keep_budget(now);
    }
  }

  // After the loop: the last (partial) window.
  void finish() {
    scanner_.stop();
    auto last = std::make_shared<const Profile>(state_->fanout.rotate(realtime_ns()));
    writer_.submit(last);
    pusher_.submit(last);
    writer_.finish();
    pusher_.finish(kPushGraceS);
    update_metrics(monotonic_ns());
  }

 private:
  void end_window(int64_t end) {
    Profile done = state_->fanout.rotate(end);
    window_end_ = window_start(realtime_ns(), window_ns_) + window_ns_;
    auto shared = std::make_shared<const Profile>(std::move(done));
    {
      std::lock_guard<std::mutex> lock(state_->mu);
      state_->windows.push_back(shared);
      while (state_->windows.size() > static_cast<size_t>(args_.keep)) state_->windows.pop_front();
    }
    writer_.submit(shared);
    pusher_.submit(shared);
    // Hand back to the system what the last windows' export and dropped targets freed:
    // glibc keeps freed memory in each thread's arena, so RSS only ever grew.
    int64_t t0 = monotonic_ns();
    malloc_trim(0);
    spdlog::debug("malloc_trim: {:.2f} ms", (monotonic_ns() - t0) / 1e6);
  }

  // SIGHUP with --config: what can change live, from the file (and the flags) read again:
  // the rate, the CPU budget, the labels and the targets. Paths, mode and the listening
  // address need a restart.
  void reload_config() {
    if (args_.config.empty()) return;
    DaemonArgs fresh;
    if (parse_daemon_args(argv_, &fresh) >= 0) {
      spdlog::error("SIGHUP: {} not applied (the reason is on stderr)", args_.config);
      return;
    }
    state_->fanout.set_labels(fresh.labels);
    scanner_.select(fresh);
    budget_ = CpuBudget(fresh.max_cpu, fresh.rate);
    session_->set_rate(fresh.rate);
    state_->fanout.set_rate(fresh.rate);
    spdlog::info("SIGHUP: {} applied: rate {} Hz, --max-cpu {} %, {} labels, targets {}", args_.config, fresh.rate,
                 fresh.max_cpu, fresh.labels.size(), describe_targets(fresh));
  }

  void keep_budget(int64_t now) {
    double rate = budget_.update(process_cpu_ns(), now);
    if (rate <= 0) return;
    spdlog::info("--max-cpu {} %: sampling at {:.1f} Hz", args_.max_cpu, rate);
    session_->set_rate(rate);
    state_->fanout.set_rate(rate);
  }

  void update_metrics(int64_t now) {
    const SessionSummary& s = session_->summary();
    std::lock_guard<std::mutex> lock(state_->mu);
    DaemonMetrics& m = state_->metrics;
    if (now > last_metrics_at_ && last_metrics_at_ > 0)
      m.sampling_rate_hz = (s.ticks - m.ticks) * 1e9 / static_cast<double>(now - last_metrics_at_);
    last_metrics_at_ = now;
    m.samples = s.stats.samples;
    m.invalid_samples = s.stats.invalid;
    m.ticks = s.ticks;
    m.idle_skips = s.stats.idle_skips;
    m.idle_skips_by_records = s.stats.idle_skips_by_records;
    m.native_merged = s.stats.native.merged;
    m.native_torn = s.stats.native.torn;
    m.native_unavailable = s.stats.native.unavailable;
    m.native_pauses = s.stats.native.pauses;
  }

  const DaemonArgs& args_;
  const std::vector<std::string>& argv_;
  DaemonState* state_;
  TargetScanner scanner_;
  WindowWriter writer_;
  WindowPusher pusher_;
  CpuBudget budget_;
  SamplingSession* session_ = nullptr;
  int64_t window_ns_;
  int64_t window_end_ = 0;
  int64_t next_metrics_ = 0, last_metrics_at_ = 0;
};

SessionOptions session_options(const DaemonArgs& a, DaemonLoop* loop) {
  SessionOptions o;
  o.rate_hz = a.rate;
  o.subprocesses = a.subprocesses;
  o.keep_running = true;
  o.sampling.mode = a.mode == "wall" ? ProfileMode::kWall : ProfileMode::kCpu;
  o.sampling.async_tasks = a.async_tasks;
  o.sampling.native = a.native;
  o.sampling.interval_ns = static_cast<uint64_t>(1e9 / a.rate);
  o.on_tick = [loop] { loop->tick(); };
  o.attach_elsewhere = true;
  o.on_attached = [loop](const PythonProcess& proc) { loop->scanner().note_attached(proc); };
  return o;
}

}  // namespace

int run_daemon(const std::vector<std::string>& args) {
  DaemonArgs a;
  int rc = parse_daemon_args(args, &a);
  if (rc >= 0) return rc;
  DaemonState state(a.mode == "wall" ? ProfileMode::kWall : ProfileMode::kCpu, a.rate);
  state.fanout.set_labels(a.labels);
  DaemonHttp http(&state);
  int port = 0;
  if (!a.listen.empty()) {
    std::string err;
    port = http.bind(a.listen_host, a.listen_port, &err);
    if (port < 0) return fail(kExitError, "daemon: " + err);
  }
  install_signal_handlers();
  start_logging(a);
  if (port > 0) {
    spdlog::info("listening on http://{}:{}", a.listen_host, port);
    http.start();
  }
  DaemonLoop loop(a, args, &state);
  SamplingSession session(session_options(a, &loop), &state.fanout);
  loop.start(&session);
  spdlog::info("sampling at {} Hz in {}-second windows", a.rate, a.window);
  state.sampling = true;
  session.run(&g_stop, nullptr);
  state.sampling = false;
  spdlog::info("stopping: writing the last window");
  loop.finish();
  {
    std::lock_guard<std::mutex> lock(state.mu);
    state.stopping = true;
  }
  state.stopped.notify_all();
  http.stop();
  spdlog::info("stopped");
  return kExitOk;
}

}  // namespace pyprofd::cli
