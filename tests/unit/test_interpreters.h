// The interpreters unit tests run against: pyenv's 3.8–3.13 (the newest patch release
// of each under $PYENV_ROOT, else ~/.pyenv), Debian's static python3.11 and Debian sid's
// static 3.13/3.14/3.15 (tools/install-pythons.sh: ~/.cache/pyprofd/pythons/3.M/root).
// A version that is not installed keeps a path that does not exist, so each test skips
// it by name. Labels starting "debian" or "sid" are static builds (no libpython).
#pragma once
#include <glob.h>
#include <unistd.h>

#include <cstdlib>
#include <ostream>
#include <string>
#include <vector>

namespace pyprofd {

struct Interp {
  const char* label;  // py3_8 ... py3_13, debian3_11, sid3_13 ... sid3_15
  const char* path;
  int minor;
};

inline void PrintTo(const Interp& i, std::ostream* os) { *os << i.label; }

inline const std::vector<Interp>& test_interpreters() {
  static std::vector<std::string> paths;  // owns the strings the entries point at
  static std::vector<Interp> list = [] {
    const char* env = std::getenv("PYENV_ROOT");
    const char* home = std::getenv("HOME");
    std::string root = env ? env : std::string(home ? home : "/root") + "/.pyenv";
    static const char* kLabels[] = {"py3_8", "py3_9", "py3_10", "py3_11", "py3_12", "py3_13"};
    paths.reserve(10);
    std::vector<Interp> out;
    for (int minor = 8; minor <= 13; ++minor) {
      std::string bin = "python3." + std::to_string(minor);
      std::string found = root + "/versions/3." + std::to_string(minor) + "/bin/" + bin;  // missing: skipped
      glob_t g{};
      if (glob((root + "/versions/3." + std::to_string(minor) + ".*/bin/" + bin).c_str(), 0, nullptr, &g) == 0 &&
          g.gl_pathc > 0) {
        // Newest patch release: compare the patch numbers, not the strings (3.8.9 < 3.8.18).
        size_t prefix = root.size() + std::string("/versions/3.").size() + std::to_string(minor).size() + 1;
        long best = -1;
        for (size_t i = 0; i < g.gl_pathc; ++i) {
          long patch = std::strtol(g.gl_pathv[i] + prefix, nullptr, 10);
          if (patch > best) best = patch, found = g.gl_pathv[i];
        }
      }
      globfree(&g);
      paths.push_back(found);
      out.push_back(Interp{kLabels[minor - 8], nullptr, minor});
    }
    paths.push_back("/usr/bin/python3.11");
    out.push_back(Interp{"debian3_11", nullptr, 11});
    static const char* kSid[] = {"sid3_13", "sid3_14", "sid3_15"};
    for (int minor = 13; minor <= 15; ++minor) {
      std::string v = "3." + std::to_string(minor);
      paths.push_back(std::string(home ? home : "/root") + "/.cache/pyprofd/pythons/" + v + "/root/usr/bin/python" + v);
      out.push_back(Interp{kSid[minor - 13], nullptr, minor});
    }
    for (size_t i = 0; i < out.size(); ++i) out[i].path = paths[i].c_str();
    return out;
  }();
  return list;
}

}  // namespace pyprofd
