#include "exporters/formats.h"

#include <algorithm>

#include "exporters/pstats.h"

namespace pyprofd {

namespace {

bool ends_with(const std::string& s, const std::string& suffix) {
  return s.size() >= suffix.size() && s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

struct Extension {
  const char* suffix;
  const char* format;
};

// Longest suffixes first where one is the tail of another.
const Extension kExtensions[] = {
    {".stats", "pstats"},
    {".pstats", "pstats"},
    {".prof", "pstats"},
};

}  // namespace

std::string format_for_path(const std::string& path) {
  std::string base = path.substr(path.rfind('/') == std::string::npos ? 0 : path.rfind('/') + 1);
  for (const auto& e : kExtensions)
    if (ends_with(base, e.suffix)) return e.format;
  return "";
}

std::vector<std::string> known_formats() { return {"pstats"}; }

bool export_profile(const std::string& format, const Profile& p, std::string* bytes, std::string* error) {
  if (format == "pstats") {
    *bytes = export_pstats(p);
    if (bytes->empty()) {
      *error = "no samples were recorded";
      return false;
    }
    return true;
  }
  *error = "unknown format '" + format + "'";
  return false;
}

}  // namespace pyprofd
