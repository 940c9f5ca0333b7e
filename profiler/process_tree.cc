#include "profiler/process_tree.h"

#include <dirent.h>

#include <cstdlib>
#include <fstream>
#include <string>

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

// Parent pid from /proc/PID/stat: the field after the parenthesised command name.
pid_t parent_of(const char* pid) {
  std::ifstream in(std::string("/proc/") + pid + "/stat");
  std::string s((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  auto close = s.rfind(')');
  if (close == std::string::npos || close + 4 >= s.size()) return 0;
  return static_cast<pid_t>(std::atol(s.c_str() + close + 4));
}

}  // namespace

void children_of(pid_t pid, std::vector<pid_t>* out) {
  if (read_children_files(pid, out)) return;
  DIR* dir = opendir("/proc");
  if (!dir) return;
  while (dirent* e = readdir(dir)) {
    if (e->d_name[0] < '0' || e->d_name[0] > '9') continue;
    if (parent_of(e->d_name) == pid) out->push_back(static_cast<pid_t>(std::atol(e->d_name)));
  }
  closedir(dir);
}

}  // namespace pyprofd
