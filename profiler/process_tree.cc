#include "profiler/process_tree.h"

#include <dirent.h>

#include <cstdlib>
#include <fstream>
#include <string>

#include "profiler/proc_stat.h"

namespace pyprofd {

namespace {

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

}  // namespace pyprofd
