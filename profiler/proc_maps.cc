#include "profiler/proc_maps.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

namespace pyprofd {
namespace {

constexpr size_t kMaxMapsBytes = 256u << 20;  // a sane upper bound; real maps are far smaller

bool is_space(char c) { return c == ' ' || c == '\t'; }

// Parses [pos, pos+n) as hex (1..16 digits). Advances pos past the digits.
bool parse_hex(const std::string& s, size_t* pos, size_t end, uint64_t* out) {
  uint64_t v = 0;
  size_t i = *pos, digits = 0;
  for (; i < end; ++i, ++digits) {
    char c = s[i];
    int d;
    if (c >= '0' && c <= '9') d = c - '0';
    else if (c >= 'a' && c <= 'f') d = c - 'a' + 10;
    else if (c >= 'A' && c <= 'F') d = c - 'A' + 10;
    else break;
    if (digits >= 16) return false;
    v = (v << 4) | uint64_t(d);
  }
  if (digits == 0) return false;
  *pos = i;
  *out = v;
  return true;
}

bool parse_dec(const std::string& s, size_t* pos, size_t end, uint64_t* out) {
  uint64_t v = 0;
  size_t i = *pos;
  for (; i < end && s[i] >= '0' && s[i] <= '9'; ++i) {
    uint64_t d = uint64_t(s[i] - '0');
    if (v > (UINT64_MAX - d) / 10) return false;
    v = v * 10 + d;
  }
  if (i == *pos) return false;
  *pos = i;
  *out = v;
  return true;
}

void skip_spaces(const std::string& s, size_t* pos, size_t end) {
  while (*pos < end && is_space(s[*pos])) ++*pos;
}

// One line: "start-end perms offset major:minor inode [path]".
bool parse_line(const std::string& s, size_t b, size_t e, MapEntry* m) {
  size_t p = b;
  if (!parse_hex(s, &p, e, &m->start) || p >= e || s[p] != '-') return false;
  ++p;
  if (!parse_hex(s, &p, e, &m->end) || p >= e || !is_space(s[p])) return false;
  if (m->end <= m->start) return false;
  skip_spaces(s, &p, e);
  size_t q = p;
  while (q < e && !is_space(s[q])) ++q;
  if (q - p != 4) return false;
  m->perms.assign(s, p, 4);
  p = q;
  skip_spaces(s, &p, e);
  if (!parse_hex(s, &p, e, &m->offset) || p >= e || !is_space(s[p])) return false;
  skip_spaces(s, &p, e);
  uint64_t dev;
  if (!parse_hex(s, &p, e, &dev) || p >= e || s[p] != ':') return false;
  ++p;
  if (!parse_hex(s, &p, e, &dev)) return false;
  if (p >= e || !is_space(s[p])) return false;
  skip_spaces(s, &p, e);
  if (!parse_dec(s, &p, e, &m->inode)) return false;
  if (p < e && !is_space(s[p])) return false;
  skip_spaces(s, &p, e);
  // The rest of the line is the path; it may itself contain spaces.
  m->path.assign(s, p, e - p);
  static const char kDeleted[] = " (deleted)";
  const size_t dl = sizeof(kDeleted) - 1;
  m->deleted = false;
  if (m->path.size() > dl && m->path.compare(m->path.size() - dl, dl, kDeleted) == 0) {
    m->path.resize(m->path.size() - dl);
    m->deleted = true;
  }
  return true;
}

}  // namespace

std::vector<MapEntry> parse_maps(const std::string& text) {
  std::vector<MapEntry> out;
  size_t b = 0;
  while (b < text.size()) {
    size_t e = text.find('\n', b);
    if (e == std::string::npos) e = text.size();
    size_t le = e;
    if (le > b && text[le - 1] == '\r') --le;
    MapEntry m;
    if (parse_line(text, b, le, &m)) out.push_back(std::move(m));
    b = e + 1;
  }
  return out;
}

bool read_maps(pid_t pid, std::vector<MapEntry>* out, int* err) {
  std::string path = "/proc/" + std::to_string(pid) + "/maps";
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    if (err) *err = errno;
    return false;
  }
  std::string text;
  char buf[65536];
  for (;;) {
    ssize_t n = ::read(fd, buf, sizeof(buf));
    if (n < 0) {
      if (errno == EINTR) continue;
      if (err) *err = errno;
      ::close(fd);
      return false;
    }
    if (n == 0) break;
    if (text.size() + size_t(n) > kMaxMapsBytes) {
      if (err) *err = EFBIG;
      ::close(fd);
      return false;
    }
    text.append(buf, size_t(n));
  }
  ::close(fd);
  *out = parse_maps(text);
  return true;
}

std::string proc_root_path(pid_t pid, const std::string& path) {
  std::string r = "/proc/" + std::to_string(pid) + "/root";
  if (path.empty() || path[0] != '/') r += '/';
  return r + path;
}

}  // namespace pyprofd
