#include "profiler/whole_file.h"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>

namespace pyprofd {

int read_whole_file(const std::string& path, std::string* out, size_t max) {
  out->clear();
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return errno;
  char buf[16384];
  int err = 0;
  while (out->size() < max) {
    ssize_t n = ::read(fd, buf, std::min(sizeof buf, max - out->size()));
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) err = errno;
    if (n <= 0) break;
    out->append(buf, static_cast<size_t>(n));
  }
  ::close(fd);
  return err;
}

std::string whole_file_text(const std::string& path, size_t max) {
  std::string text;
  return read_whole_file(path, &text, max) == 0 ? text : std::string();
}

std::string proc_command_line(pid_t pid) {
  std::string s = whole_file_text("/proc/" + std::to_string(pid) + "/cmdline");
  while (!s.empty() && s.back() == '\0') s.pop_back();
  for (char& c : s)
    if (c == '\0') c = ' ';
  return s;
}

std::string proc_comm(pid_t pid) {
  std::string s = whole_file_text("/proc/" + std::to_string(pid) + "/comm");
  while (!s.empty() && s.back() == '\n') s.pop_back();
  return s;
}

}  // namespace pyprofd
