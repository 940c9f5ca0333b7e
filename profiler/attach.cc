#include "profiler/attach.h"

#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <regex>
#include <set>
#include <sstream>
#include <tuple>

#include "profiler/debug_offsets.h"
#include "profiler/proc_maps.h"
#include "profiler/proc_stat.h"
#include "profiler/whole_file.h"
#include "symbolizer/elf_image.h"

namespace pyprofd {

namespace {

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
  std::string s = whole_file_text("/proc/sys/kernel/yama/ptrace_scope");
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
  ProcStat stat;
  return read_proc_stat(pid, &stat) && stat.state != 'Z' && stat.state != 'X';
}

namespace {

// The target's memory maps; fails if it is gone, unreadable or has none.
bool read_target_maps(pid_t pid, const std::string& who, std::vector<MapEntry>* maps, AttachError* err) {
  if (!process_exists(pid)) {
    *err = make_error(AttachErrorKind::kNoSuchProcess, "no such process: " + std::to_string(pid));
    return false;
  }
  int maps_errno = 0;
  if (!read_maps(pid, maps, &maps_errno)) {
    if (maps_errno == ENOENT || maps_errno == ESRCH) {
      *err = make_error(AttachErrorKind::kNoSuchProcess, "no such process: " + std::to_string(pid));
    } else if (maps_errno == EACCES || maps_errno == EPERM) {
      *err = make_error(AttachErrorKind::kPermission,
                        "permission denied reading " + who + ": " + permission_hint());
    } else {
      *err = make_error(AttachErrorKind::kOther, "cannot read /proc/" + std::to_string(pid) + "/maps: " +
                                                     std::strerror(maps_errno));
    }
    return false;
  }
  if (maps->empty()) {
    // Kernel threads and zombies have no maps; an unreadable one reads as empty for non-owners too.
    *err = make_error(AttachErrorKind::kNotPython, who + " is not a Python process (no memory maps)");
    return false;
  }
  return true;
}

// Candidate images in map order; libpython first so shared builds win over the launcher.
std::vector<std::string> python_images(const std::vector<MapEntry>& maps) {
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
  return candidates;
}

struct Version {
  int major = 0, minor = 0, micro = 0;
};

// Py_Version where exported (3.11+), else the version string in the image, else its file name.
Version version_of(const ElfImage& image, const std::string& path) {
  Version v;
  if (auto pv = image.symbol("Py_Version")) {
    uint64_t hex = 0;
    uint32_t v32 = 0;
    if (image.read_vaddr(*pv, &v32, sizeof v32)) hex = v32;
    v.major = (hex >> 24) & 0xff;
    v.minor = (hex >> 16) & 0xff;
    v.micro = (hex >> 8) & 0xff;
    return v;
  }
  std::string s = image.find_python_version();
  if (!s.empty()) {
    std::sscanf(s.c_str(), "%d.%d.%d", &v.major, &v.minor, &v.micro);
  } else if (auto fv = python_version_from_filename(path)) {
    v.major = fv->first;
    v.minor = fv->second;
  }
  return v;
}

// One read proves we may read the target at all.
bool probe_memory(LiveMemory& live, const PythonProcess& proc, const std::string& who, AttachError* err) {
  uint64_t probe = 0;
  if (live.read(proc.runtime_addr, &probe, sizeof probe)) return true;
  int e = live.last_errno();
  if (e == EPERM || e == EACCES) {
    *err = make_error(AttachErrorKind::kPermission, "permission denied reading " + who + ": " + permission_hint());
  } else if (e == ESRCH) {
    *err = make_error(AttachErrorKind::kNoSuchProcess, "no such process: " + std::to_string(proc.pid));
  } else {
    *err = make_error(AttachErrorKind::kOther, "cannot read memory of " + who + ": " + std::strerror(e));
  }
  return false;
}

enum class ImageResult { kSkipped, kAttached, kFailed };

// Attaches through one candidate image. Skipped when it holds no interpreter (a launcher,
// an unreadable file); an image named for an unsupported version is remembered in old_python.
// What attaching needs of an interpreter image, kept by the file's identity: the daemon
// attaching the hundredth process of the same python3 opens and scans no ELF (the version
// scan of a stripped interpreter was a tenth of its CPU on a host where processes come
// and go). Attaches run on one thread at a time, the lock is for safety.
struct ImageFacts {
  std::shared_ptr<const ElfImage> image;  // null: not an ELF file
  std::optional<uint64_t> runtime, code_type;
  Version version;
};

std::shared_ptr<const ImageFacts> image_facts(const std::string& file, const std::string& path) {
  constexpr size_t kMaxImages = 64;
  static std::mutex lock;
  static std::map<std::tuple<dev_t, ino_t, off_t, int64_t>, std::shared_ptr<const ImageFacts>> cache;
  struct stat st;
  if (stat(file.c_str(), &st) != 0) return nullptr;
  auto key = std::make_tuple(st.st_dev, st.st_ino, st.st_size,
                             static_cast<int64_t>(st.st_mtim.tv_sec) * 1000000000 + st.st_mtim.tv_nsec);
  std::lock_guard<std::mutex> hold(lock);
  auto it = cache.find(key);
  if (it != cache.end()) return it->second;
  auto facts = std::make_shared<ImageFacts>();
  std::string open_error;
  facts->image = ElfImage::open(file, &open_error);
  if (facts->image) {
    facts->runtime = facts->image->symbol("_PyRuntime");
    if (facts->runtime) {
      facts->code_type = facts->image->symbol("PyCode_Type");
      facts->version = version_of(*facts->image, path);
    }
  }
  if (cache.size() >= kMaxImages) cache.clear();
  cache.emplace(key, facts);
  return facts;
}

ImageResult try_image(const std::string& path, const std::vector<MapEntry>& maps, const std::string& who,
                      PythonProcess* proc, std::string* old_python, AttachError* err) {
  auto facts = image_facts(proc_root_path(proc->pid, path), path);
  if (!facts || !facts->image) return ImageResult::kSkipped;
  const ElfImage* image = facts->image.get();
  auto runtime = facts->runtime;
  if (!runtime) {
    // An image named for an unsupported version (python2.7, libpython3.6m) explains the failure;
    // a supported one without _PyRuntime is a launcher whose libpython is not loaded yet.
    auto v = python_version_from_filename(path);
    if (v && !builtin_layout(v->first, v->second))
      *old_python = std::to_string(v->first) + "." + std::to_string(v->second);
    return ImageResult::kSkipped;
  }
  // Bias from the mapping of this file with the lowest file offset.
  const MapEntry* first = nullptr;
  for (const auto& m : maps)
    if (m.path == path && (!first || m.offset < first->offset)) first = &m;
  auto bias = image->load_bias(first->start, first->offset);
  if (!bias) return ImageResult::kSkipped;
  proc->image_path = path;
  proc->runtime_addr = *runtime + *bias;
  if (auto ct = facts->code_type) proc->code_type = *ct + *bias;

  const Version& v = facts->version;
  proc->version = std::to_string(v.major) + "." + std::to_string(v.minor) + "." + std::to_string(v.micro);
  const Layout* layout = builtin_layout(v.major, v.minor);
  if (!layout) {
    *err = make_error(AttachErrorKind::kUnsupportedVersion,
                      who + " runs Python " + proc->version + ", which pyprofd does not support (3.8 to 3.15)");
    return ImageResult::kFailed;
  }
  proc->layout = *layout;
  auto live = std::make_unique<LiveMemory>(proc->pid);
  if (!probe_memory(*live, *proc, who, err)) return ImageResult::kFailed;
  proc->memory = std::move(live);
  if (proc->layout.has_debug_offsets) {
    std::string why;
    if (!apply_debug_offsets(*proc->memory, proc->runtime_addr, &proc->layout, &why)) {
      if (why == kFreeThreadedError)
        *err = make_error(AttachErrorKind::kUnsupportedVersion,
                          who + " runs a free-threaded build of Python " + proc->version + " (" + basename_of(path) +
                              ", Py_GIL_DISABLED), which pyprofd does not support yet");
      else
        *err = make_error(AttachErrorKind::kOther, who + ": cannot use _Py_DebugOffsets: " + why);
      return ImageResult::kFailed;
    }
  }
  return ImageResult::kAttached;
}

// Why no candidate image held a supported interpreter.
AttachError no_interpreter_error(pid_t pid, const std::string& who, const std::string& old_python) {
  if (!old_python.empty())
    return make_error(AttachErrorKind::kUnsupportedVersion,
                      who + " runs Python " + old_python + ", which pyprofd does not support (3.8 to 3.15)");
  std::string comm = proc_comm(pid);
  return make_error(AttachErrorKind::kNotPython,
                    who + " (" + comm + ") is not a Python process: no libpython or python executable with "
                          "_PyRuntime in its memory maps");
}

std::unique_ptr<PythonProcess> attach_once(pid_t pid, AttachError* err) {
  std::string who = "process " + std::to_string(pid);
  std::vector<MapEntry> maps;
  if (!read_target_maps(pid, who, &maps, err)) return nullptr;
  auto proc = std::make_unique<PythonProcess>();
  proc->pid = pid;
  proc->command_line = proc_command_line(pid);
  std::string old_python;
  for (const auto& path : python_images(maps)) {
    switch (try_image(path, maps, who, proc.get(), &old_python, err)) {
      case ImageResult::kAttached: return proc;
      case ImageResult::kFailed: return nullptr;
      case ImageResult::kSkipped: break;
    }
  }
  *err = no_interpreter_error(pid, who, old_python);
  return nullptr;
}

}  // namespace

std::unique_ptr<PythonProcess> attach_python(pid_t pid, AttachError* err) {
  auto proc = attach_once(pid, err);
  // A target that exits mid-attach fails whichever step comes next (its maps read empty,
  // its files vanish from /proc/PID/root): that is not "not a Python process". A process
  // whose memory is already gone may not be a zombie yet: give it up to 50 ms to become one.
  if (!proc && err->kind == AttachErrorKind::kNotPython && err->message.find("(no memory maps)") != std::string::npos)
    for (int i = 0; i < 10 && process_exists(pid); ++i) usleep(5000);
  if (!proc && err->kind != AttachErrorKind::kNoSuchProcess && !process_exists(pid))
    *err = make_error(AttachErrorKind::kNoSuchProcess,
                      "no such process: " + std::to_string(pid) + " (it exited while being attached)");
  return proc;
}

}  // namespace pyprofd
