#include "profiler/attach.h"

#include <signal.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <regex>
#include <set>
#include <sstream>

#include "profiler/debug_offsets.h"
#include "profiler/proc_maps.h"
#include "symbolizer/elf_image.h"

namespace pyprofd {

namespace {

std::string read_text(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

std::string command_line_of(pid_t pid) {
  std::string raw = read_text("/proc/" + std::to_string(pid) + "/cmdline");
  while (!raw.empty() && raw.back() == '\0') raw.pop_back();
  for (char& c : raw) if (c == '\0') c = ' ';
  return raw;
}

std::string basename_of(const std::string& path) {
  auto slash = path.rfind('/');
  return slash == std::string::npos ? path : path.substr(slash + 1);
}

// Files that may hold the interpreter: libpython*.so* or an executable named python*.
bool looks_like_python(const std::string& path) {
  std::string base = basename_of(path);
  return base.rfind("libpython", 0) == 0 || base.rfind("python", 0) == 0;
}

AttachError make_error(AttachErrorKind kind, std::string message) { return AttachError{kind, std::move(message)}; }

std::string ptrace_scope() {
  std::string s = read_text("/proc/sys/kernel/yama/ptrace_scope");
  while (!s.empty() && (s.back() == '\n' || s.back() == ' ')) s.pop_back();
  return s;
}

}  // namespace

std::string permission_hint() {
  std::string scope = ptrace_scope();
  std::string hint = "reading another process's memory needs CAP_SYS_PTRACE (run as root or with sudo) or the same user "
                     "with kernel.yama.ptrace_scope allowing it";
  if (scope.empty()) return hint + " (this kernel has no Yama ptrace_scope)";
  return hint + " (kernel.yama.ptrace_scope is " + scope + "; 0 allows same-user reads)";
}

bool process_exists(pid_t pid) {
  if (pid <= 0) return false;
  // A zombie has exited; only its parent's wait is missing.
  std::string stat = read_text("/proc/" + std::to_string(pid) + "/stat");
  auto close = stat.rfind(')');
  if (close == std::string::npos || close + 2 >= stat.size()) return false;
  char state = stat[close + 2];
  return state != 'Z' && state != 'X';
}

std::unique_ptr<PythonProcess> attach_python(pid_t pid, AttachError* err) {
  if (!process_exists(pid)) {
    *err = make_error(AttachErrorKind::kNoSuchProcess, "no such process: " + std::to_string(pid));
    return nullptr;
  }
  std::string who = "process " + std::to_string(pid);
  std::vector<MapEntry> maps;
  int maps_errno = 0;
  if (!read_maps(pid, &maps, &maps_errno)) {
    if (maps_errno == ENOENT || maps_errno == ESRCH) {
      *err = make_error(AttachErrorKind::kNoSuchProcess, "no such process: " + std::to_string(pid));
    } else if (maps_errno == EACCES || maps_errno == EPERM) {
      *err = make_error(AttachErrorKind::kPermission,
                        "permission denied reading " + who + ": " + permission_hint());
    } else {
      *err = make_error(AttachErrorKind::kOther, "cannot read /proc/" + std::to_string(pid) + "/maps: " +
                                                     std::strerror(maps_errno));
    }
    return nullptr;
  }
  if (maps.empty()) {
    // Kernel threads and zombies have no maps; an unreadable one reads as empty for non-owners too.
    *err = make_error(AttachErrorKind::kNotPython, who + " is not a Python process (no memory maps)");
    return nullptr;
  }

  // Candidate images in map order; libpython first so shared builds win over the launcher.
  std::vector<std::string> candidates;
  std::set<std::string> seen;
  for (int pass = 0; pass < 2; ++pass) {
    for (const auto& m : maps) {
      if (m.path.empty() || m.path[0] != '/' || !looks_like_python(m.path) || seen.count(m.path)) continue;
      bool lib = basename_of(m.path).rfind("libpython", 0) == 0;
      if ((pass == 0) != lib) continue;
      seen.insert(m.path);
      candidates.push_back(m.path);
    }
  }

  auto proc = std::make_unique<PythonProcess>();
  proc->pid = pid;
  proc->command_line = command_line_of(pid);
  std::string old_python;
  for (const auto& path : candidates) {
    std::string open_error;
    auto image = ElfImage::open(proc_root_path(pid, path), &open_error);
    if (!image) continue;
    auto runtime = image->symbol("_PyRuntime");
    if (!runtime) {
      // An image named for an unsupported version (python2.7, libpython3.6m) explains the failure;
      // a supported one without _PyRuntime is a launcher whose libpython is not loaded yet.
      auto v = python_version_from_filename(path);
      if (v && !builtin_layout(v->first, v->second))
        old_python = std::to_string(v->first) + "." + std::to_string(v->second);
      continue;
    }
    // Bias from the mapping of this file with the lowest file offset.
    const MapEntry* first = nullptr;
    for (const auto& m : maps)
      if (m.path == path && (!first || m.offset < first->offset)) first = &m;
    auto bias = image->load_bias(first->start, first->offset);
    if (!bias) continue;
    proc->image_path = path;
    proc->runtime_addr = *runtime + *bias;
    if (auto ct = image->symbol("PyCode_Type")) proc->code_type = *ct + *bias;

    int major = 0, minor = 0, micro = 0;
    if (auto pv = image->symbol("Py_Version")) {
      uint64_t hex = 0;
      uint32_t v32 = 0;
      if (image->read_vaddr(*pv, &v32, sizeof v32)) hex = v32;
      major = (hex >> 24) & 0xff;
      minor = (hex >> 16) & 0xff;
      micro = (hex >> 8) & 0xff;
    } else {
      std::string s = image->find_python_version();
      if (s.empty()) {
        if (auto v = python_version_from_filename(path)) {
          major = v->first;
          minor = v->second;
        }
      } else {
        std::sscanf(s.c_str(), "%d.%d.%d", &major, &minor, &micro);
      }
    }
    proc->version = std::to_string(major) + "." + std::to_string(minor) + "." + std::to_string(micro);
    const Layout* layout = builtin_layout(major, minor);
    if (!layout) {
      *err = make_error(AttachErrorKind::kUnsupportedVersion,
                        who + " runs Python " + proc->version + ", which pyprofd does not support (3.8 to 3.13)");
      return nullptr;
    }
    proc->layout = *layout;
    auto live = std::make_unique<LiveMemory>(pid);

    // One read proves we may read the target at all.
    uint64_t probe = 0;
    if (!live->read(proc->runtime_addr, &probe, sizeof probe)) {
      int e = live->last_errno();
      if (e == EPERM || e == EACCES) {
        *err = make_error(AttachErrorKind::kPermission, "permission denied reading " + who + ": " + permission_hint());
      } else if (e == ESRCH) {
        *err = make_error(AttachErrorKind::kNoSuchProcess, "no such process: " + std::to_string(pid));
      } else {
        *err = make_error(AttachErrorKind::kOther, "cannot read memory of " + who + ": " + std::strerror(e));
      }
      return nullptr;
    }
    proc->memory = std::move(live);
    if (proc->layout.has_debug_offsets) {
      std::string why;
      if (!apply_debug_offsets(*proc->memory, proc->runtime_addr, &proc->layout, &why)) {
        *err = make_error(AttachErrorKind::kOther, who + ": cannot use _Py_DebugOffsets: " + why);
        return nullptr;
      }
    }
    return proc;
  }
  if (!old_python.empty()) {
    *err = make_error(AttachErrorKind::kUnsupportedVersion,
                      who + " runs Python " + old_python + ", which pyprofd does not support (3.8 to 3.13)");
  } else {
    std::string comm = read_text("/proc/" + std::to_string(pid) + "/comm");
    while (!comm.empty() && comm.back() == '\n') comm.pop_back();
    *err = make_error(AttachErrorKind::kNotPython,
                      who + " (" + comm + ") is not a Python process: no libpython or python executable with "
                            "_PyRuntime in its memory maps");
  }
  return nullptr;
}

}  // namespace pyprofd
