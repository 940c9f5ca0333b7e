#include "tools/daemon_targets.h"

#include <dirent.h>
#include <spdlog/spdlog.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <sstream>

#include "profiler/clock.h"
#include "profiler/whole_file.h"

namespace pyprofd::cli {

namespace {

std::string executable(pid_t pid) {
  char buf[4096];
  ssize_t n = readlink(("/proc/" + std::to_string(pid) + "/exe").c_str(), buf, sizeof buf - 1);
  return n > 0 ? std::string(buf, n) : "";
}

// The cgroup a process runs in, as /proc/PID/cgroup names it: the unified (v2) path,
// or on a v1-only or hybrid host the first controller's path that is not the root.
std::string cgroup_of(pid_t pid) {
  std::istringstream in(whole_file_text("/proc/" + std::to_string(pid) + "/cgroup"));
  std::string line, unified, v1;
  while (std::getline(in, line)) {
    size_t a = line.find(':'), b = a == std::string::npos ? a : line.find(':', a + 1);
    if (b == std::string::npos) continue;
    std::string path = line.substr(b + 1);
    if (line.compare(0, b + 1, "0::") == 0) unified = path;
    else if (v1.empty() && path != "/") v1 = path;
  }
  if (!unified.empty() && unified != "/") return unified;
  return v1.empty() ? (unified.empty() ? "/" : unified) : v1;
}

std::vector<pid_t> all_pids() {
  std::vector<pid_t> out;
  DIR* d = opendir("/proc");
  if (!d) return out;
  while (dirent* e = readdir(d)) {
    char* end = nullptr;
    long pid = std::strtol(e->d_name, &end, 10);
    if (pid > 0 && *end == '\0') out.push_back(static_cast<pid_t>(pid));
  }
  closedir(d);
  return out;
}

}  // namespace

std::set<pid_t> TargetScanner::candidates(const Selection& sel) const {
  std::set<pid_t> out;
  if (!sel.pids.empty()) {
    for (int pid : sel.pids)
      if (process_exists(pid)) out.insert(pid);
  } else {
    for (pid_t pid : all_pids()) {
      if (pid == getpid()) continue;  // never ourselves (our command line holds the regex)
      // --all: a process already sampled or given up on needs no command line read (the
      // reads of every process's, each second, were a tenth of a host-wide daemon's CPU).
      if (sel.all && (sampled_.count(pid) || failed_.count(pid))) {
        out.insert(pid);
        continue;
      }
      std::string cmd = proc_command_line(pid);
      if (cmd.empty()) continue;
      if (sel.all || std::regex_search(cmd, sel.match_re)) out.insert(pid);
    }
  }
  out.erase(getpid());
  return out;
}

void TargetScanner::note_attached(const PythonProcess& proc) {
  noted_.insert(proc.pid);
  std::string name = proc_comm(proc.pid), cgroup = cgroup_of(proc.pid);
  spdlog::info("attached process {} (Python {}, cgroup {}): {}", proc.pid, proc.version, cgroup, proc.command_line);
  state_->fanout.set_process_labels(proc.pid, {{"process", name}, {"service", args_.app_name}, {"cgroup", cgroup}});
  std::lock_guard<std::mutex> lock(state_->mu);
  state_->targets[proc.pid] = TargetInfo{proc.pid, proc.command_line, proc.version, "sampling"};
}

void TargetScanner::try_attach(pid_t pid) {
  std::string exe = executable(pid);
  Failure& f = failed_[pid];
  if (f.exe != exe) f = Failure{exe, 0, false};  // new image (exec'd): try afresh
  if (f.final) return;
  AttachError err;
  if (auto proc = attach_python(pid, &err)) {
    failed_.erase(pid);
    failures_.erase(pid);
    roots_.insert(pid);
    note_attached(*proc);
    session_->add_target(std::move(proc));
    return;
  }
  // A process caught while it starts (interpreter not loaded yet) gets a few rescans;
  // permission and version do not change without an exec.
  bool lasting = err.kind == AttachErrorKind::kPermission || err.kind == AttachErrorKind::kUnsupportedVersion;
  f.final = lasting || ++f.attempts >= kAttempts;
  if (!f.final) return;
  // A process that vanished meanwhile is no failure; under --all neither is one that is
  // not Python or not ours to read ("every CPython process the daemon may read").
  bool quiet = err.kind == AttachErrorKind::kNoSuchProcess ||
               (all_ && (err.kind == AttachErrorKind::kNotPython || err.kind == AttachErrorKind::kPermission));
  if (quiet) {
    spdlog::debug("process {} not attached: {}", pid, err.message);
    return;
  }
  spdlog::warn("process {} not attached: {}", pid, err.message);
  failures_[pid] = TargetInfo{pid, proc_command_line(pid), "", err.message};
  std::lock_guard<std::mutex> lock(state_->mu);
  ++state_->metrics.attach_failures;
}

// Failures are kept while their process is selected: one that exited is no longer
// listed (no read of each failed process's stat file each second).
void TargetScanner::forget_gone(const std::set<pid_t>& sampled, const std::set<pid_t>& selected) {
  // Also those attached since the last call: one that ended before the rescan that
  // attached it had finished was never in sampled_ (neither logged nor forgotten).
  std::set<pid_t> before = sampled_;
  before.insert(noted_.begin(), noted_.end());
  noted_.clear();
  for (pid_t pid : before) {
    if (sampled.count(pid)) continue;
    spdlog::info("process {} exited (or exec'd); no longer sampled", pid);
    state_->fanout.forget_process(pid);
  }
  for (auto it = failed_.begin(); it != failed_.end();) {
    if (selected.count(it->first)) {
      ++it;
      continue;
    }
    failures_.erase(it->first);
    it = failed_.erase(it);
  }
}

// Targets attached because they were selected and that no longer are (SIGHUP changed
// --pid/--match/--all): no longer sampled, nor what was followed from them.
void TargetScanner::release_unselected(const std::set<pid_t>& selected) {
  for (auto it = roots_.begin(); it != roots_.end();) {
    pid_t pid = *it;
    if (selected.count(pid)) {
      ++it;
      continue;
    }
    if (!process_exists(pid)) {
      it = roots_.erase(it);
      continue;
    }
    std::vector<pid_t> released = session_->release(pid);
    spdlog::info("process {} is no longer selected; it and {} followed from it no longer sampled", pid,
                 released.size() - 1);
    std::lock_guard<std::mutex> lock(state_->mu);
    for (pid_t p : released) {
      state_->targets.erase(p);
      sampled_.erase(p);  // not "exited"
      noted_.erase(p);
      state_->fanout.forget_process(p);
    }
    it = roots_.erase(it);
  }
  for (auto it = failures_.begin(); it != failures_.end();)
    it = selected.count(it->first) ? std::next(it) : failures_.erase(it);
}

void TargetScanner::rescan() {
  std::set<pid_t> selected;
  {
    std::unique_lock<std::mutex> lock(mu_);
    Selection sel = selection_;
    all_ = sel.all;
    lock.unlock();
    selected = candidates(sel);
  }
  release_unselected(selected);
  auto now_sampled = session_->sampled_pids();
  std::set<pid_t> sampled(now_sampled.begin(), now_sampled.end());
  forget_gone(sampled, selected);
  for (pid_t pid : selected)
    if (!sampled.count(pid)) try_attach(pid);
  now_sampled = session_->sampled_pids();
  sampled_ = std::set<pid_t>(now_sampled.begin(), now_sampled.end());

  std::map<pid_t, TargetInfo> targets = failures_;
  std::lock_guard<std::mutex> lock(state_->mu);
  for (pid_t pid : sampled_) {
    auto it = state_->targets.find(pid);
    if (it != state_->targets.end()) targets[pid] = it->second;
  }
  state_->targets = std::move(targets);
  state_->metrics.targets_attached = sampled_.size();
}

void TargetScanner::start(SamplingSession* session) {
  session_ = session;
  thread_ = std::thread([this] { run(); });
}

void TargetScanner::stop() {
  if (!thread_.joinable()) return;
  {
    std::lock_guard<std::mutex> lock(mu_);
    stop_ = true;
  }
  wake_.notify_all();
  thread_.join();
}

void TargetScanner::select(const DaemonArgs& fresh) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    selection_ = Selection(fresh);
    rescan_now_ = true;
  }
  wake_.notify_all();
}

void TargetScanner::rescan_soon() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    rescan_now_ = true;
  }
  wake_.notify_all();
}

// Children are looked for 10 times a second (as record does), targets once a second.
void TargetScanner::run() {
  constexpr auto kTreeScan = std::chrono::milliseconds(100);
  constexpr int64_t kRescanNs = 1000 * 1000 * 1000;
  int64_t next_rescan = 0;
  std::unique_lock<std::mutex> lock(mu_);
  while (!stop_) {
    bool now_please = rescan_now_;
    rescan_now_ = false;
    lock.unlock();
    int64_t now = monotonic_ns();
    if (args_.subprocesses) session_->scan_tree();
    if (now_please || now >= next_rescan) {
      next_rescan = now + kRescanNs;
      rescan();
    }
    lock.lock();
    wake_.wait_for(lock, kTreeScan, [this] { return stop_ || rescan_now_; });
  }
}

}  // namespace pyprofd::cli
