#include "profiler/ns_tids.h"

#include <dirent.h>

#include <cstdlib>
#include <sstream>
#include <vector>

#include "profiler/clock.h"
#include "profiler/whole_file.h"

namespace pyprofd {

namespace {

constexpr int64_t kReloadNs = 100 * 1000 * 1000;
constexpr size_t kMaxTasks = 65536;  // bound on a directory listing we trust

}  // namespace

std::vector<int64_t> parse_nspid(const std::string& text) {
  std::vector<int64_t> ids;
  size_t at = text.find("\nNSpid:");
  if (at == std::string::npos) return ids;
  size_t end = text.find('\n', at + 1);
  std::istringstream line(text.substr(at + 7, end == std::string::npos ? std::string::npos : end - at - 7));
  int64_t id;
  while (ids.size() < 64 && line >> id) ids.push_back(id);
  return ids;
}

NamespaceTids::NamespaceTids(pid_t pid) : pid_(pid), inner_pid_(pid) {
  auto ids = parse_nspid(whole_file_text("/proc/" + std::to_string(pid) + "/status"));
  if (ids.size() < 2 || ids.back() == pid) return;
  same_ = false;
  inner_pid_ = ids.back();
  reload();
}

void NamespaceTids::reload() {
  loaded_at_ = monotonic_ns();
  stale_ = false;
  std::string dir = "/proc/" + std::to_string(pid_) + "/task";
  DIR* d = opendir(dir.c_str());
  if (!d) return;
  host_of_.clear();
  size_t n = 0;
  while (dirent* e = readdir(d)) {
    char* end = nullptr;
    unsigned long tid = std::strtoul(e->d_name, &end, 10);
    if (tid == 0 || *end != '\0' || ++n > kMaxTasks) continue;
    auto ids = parse_nspid(whole_file_text(dir + "/" + e->d_name + "/status"));
    if (ids.size() >= 2 && static_cast<uint64_t>(ids.front()) == tid)
      host_of_[static_cast<uint64_t>(ids.back())] = tid;
  }
  closedir(d);
}

uint64_t NamespaceTids::lookup(uint64_t ns_tid) {
  if (ns_tid == 0) return 0;
  if (stale_ && monotonic_ns() - loaded_at_ >= kReloadNs) reload();
  auto it = host_of_.find(ns_tid);
  if (it != host_of_.end()) return it->second;
  // A thread started since the last read: read the table again, not on every tick.
  if (monotonic_ns() - loaded_at_ < kReloadNs) return 0;
  reload();
  it = host_of_.find(ns_tid);
  return it == host_of_.end() ? 0 : it->second;
}

}  // namespace pyprofd
