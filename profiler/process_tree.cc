#include "profiler/process_tree.h"

#include <dirent.h>
#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <string>

#include "profiler/proc_stat.h"

namespace pyprofd {

namespace {

// Appends the pids in a children file's text ("12 34 ").
void parse_children(const char* text, size_t len, std::vector<pid_t>* out) {
  long v = 0;
  bool in = false;
  for (size_t i = 0; i < len; ++i) {
    char c = text[i];
    if (c >= '0' && c <= '9') {
      v = v * 10 + (c - '0');
      in = true;
      if (v > 0x7fffffff) return;  // not a pid: stop
    } else {
      if (in && v > 0) out->push_back(static_cast<pid_t>(v));
      v = 0;
      in = false;
    }
  }
  if (in && v > 0) out->push_back(static_cast<pid_t>(v));
}

// Reads a whole children file from its start (a seq_file re-generates it at offset 0).
bool pread_children(int fd, std::vector<pid_t>* out) {
  char buf[4096];
  std::string text;
  off_t off = 0;
  for (int i = 0; i < 64; ++i) {  // bounded: 256 KiB of pids
    ssize_t n = pread(fd, buf, sizeof buf, off);
    if (n < 0) return false;
    if (n == 0) break;
    text.append(buf, static_cast<size_t>(n));
    off += n;
  }
  parse_children(text.data(), text.size(), out);
  return true;
}

bool read_children_files(pid_t pid, std::vector<pid_t>* out) {
  std::string task_dir = "/proc/" + std::to_string(pid) + "/task";
  DIR* dir = opendir(task_dir.c_str());
  if (!dir) return true;  // gone: no children to report
  bool supported = true;
  int tasks = 0;
  while (dirent* e = readdir(dir)) {
    if (e->d_name[0] < '0' || e->d_name[0] > '9' || ++tasks > 4096) continue;
    std::ifstream in(task_dir + "/" + e->d_name + "/children");
    if (!in) {
      supported = false;
      break;
    }
    long child;
    while (in >> child)
      if (child > 0) out->push_back(static_cast<pid_t>(child));
  }
  closedir(dir);
  return supported;
}

}  // namespace

void children_of(pid_t pid, std::vector<pid_t>* out) {
  if (read_children_files(pid, out)) return;
  DIR* dir = opendir("/proc");
  if (!dir) return;
  while (dirent* e = readdir(dir)) {
    if (e->d_name[0] < '0' || e->d_name[0] > '9') continue;
    pid_t candidate = static_cast<pid_t>(std::atol(e->d_name));
    ProcStat stat;
    if (read_proc_stat(candidate, &stat) && stat.ppid == pid) out->push_back(candidate);
  }
  closedir(dir);
}

ChildScanner::~ChildScanner() {
  for (auto& entry : procs_) {
    for (auto& f : entry.second.files) close(f.second);
    if (entry.second.dir) closedir(entry.second.dir);
  }
}

void ChildScanner::forget(pid_t pid) {
  auto it = procs_.find(pid);
  if (it == procs_.end()) return;
  for (auto& f : it->second.files) close(f.second);
  open_files_ -= it->second.files.size();
  if (it->second.dir) closedir(it->second.dir);
  procs_.erase(it);
}

// Every thread's children through the open files. False if a file cannot be read (the
// kernel lacks it, or no room to keep it open): the caller falls back to children_of.
bool ChildScanner::read_tasks(pid_t pid, Proc& p, std::vector<pid_t>* out) {
  rewinddir(p.dir);
  seen_.clear();
  int tasks = 0;
  while (dirent* e = readdir(p.dir)) {
    if (e->d_name[0] < '0' || e->d_name[0] > '9' || ++tasks > 4096) continue;
    long tid = std::atol(e->d_name);
    seen_.push_back(tid);
    auto f = p.files.find(tid);
    if (f == p.files.end()) {
      if (open_files_ >= kMaxFiles) return false;
      char path[96];
      std::snprintf(path, sizeof path, "/proc/%d/task/%ld/children", pid, tid);
      int fd = open(path, O_RDONLY | O_CLOEXEC);
      if (fd < 0) return false;
      f = p.files.emplace(tid, fd).first;
      ++open_files_;
    }
    if (!pread_children(f->second, out)) return false;
  }
  // Threads that ended: their files go.
  for (auto f = p.files.begin(); f != p.files.end();) {
    if (std::find(seen_.begin(), seen_.end(), f->first) == seen_.end()) {
      close(f->second);
      --open_files_;
      f = p.files.erase(f);
    } else {
      ++f;
    }
  }
  return true;
}

void ChildScanner::children_of(pid_t pid, std::vector<pid_t>* out) {
  auto it = procs_.find(pid);
  if (it == procs_.end()) {
    if (open_files_ >= kMaxFiles) return pyprofd::children_of(pid, out);
    std::string task_dir = "/proc/" + std::to_string(pid) + "/task";
    DIR* dir = opendir(task_dir.c_str());
    if (!dir) return;  // gone: no children to report
    it = procs_.emplace(pid, Proc{}).first;
    it->second.dir = dir;
  }
  size_t before = out->size();
  if (read_tasks(pid, it->second, out)) return;
  out->resize(before);
  forget(pid);
  pyprofd::children_of(pid, out);
}

}  // namespace pyprofd
