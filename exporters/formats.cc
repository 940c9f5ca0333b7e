#include "exporters/formats.h"

#include "exporters/callgrind.h"
#include "exporters/collapsed.h"
#include "exporters/flamegraph.h"
#include "exporters/pprof.h"
#include "exporters/pstats.h"
#include "exporters/render.h"
#include "exporters/speedscope.h"

namespace pyprofd {

namespace {

bool ends_with(const std::string& s, const std::string& suffix) {
  return s.size() >= suffix.size() && s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

struct Extension {
  const char* suffix;
  const char* format;
};

// Longer suffixes before the shorter ones they end with (.speedscope.json).
const Extension kExtensions[] = {
    {".stats", "pstats"},        {".pstats", "pstats"},  {".prof", "pstats"},
    {".pb.gz", "pprof"},         {".pprof", "pprof"},    {".folded", "collapsed"},
    {".collapsed", "collapsed"}, {".speedscope.json", "speedscope"},
    {".callgrind", "callgrind"}, {".dot", "dot"},        {".png", "png"},
    {".svg", "flamegraph"},
};

}  // namespace

std::string format_for_path(const std::string& path) {
  std::string base = path.substr(path.rfind('/') == std::string::npos ? 0 : path.rfind('/') + 1);
  if (base.rfind("callgrind.out", 0) == 0) return "callgrind";
  for (const auto& e : kExtensions)
    if (ends_with(base, e.suffix)) return e.format;
  return "";
}

std::vector<std::string> known_formats() {
  return {"pstats", "pprof", "collapsed", "speedscope", "callgrind", "dot", "png", "flamegraph", "callgraph-svg"};
}

bool export_profile(const std::string& format, const Profile& p, const ExportOptions& options, std::string* bytes,
                    std::string* error) {
  if (p.total_samples() == 0) {
    *error = "no samples were recorded";
    return false;
  }
  if (format == "pstats") *bytes = export_pstats(p);
  else if (format == "pprof") *bytes = export_pprof(p);
  else if (format == "collapsed") *bytes = export_collapsed(p);
  else if (format == "speedscope") *bytes = export_speedscope(p);
  else if (format == "callgrind") *bytes = export_callgrind(p);
  else if (format == "dot") *bytes = export_dot(p, options.dot);
  else if (format == "png") return render_with_dot(export_dot(p, options.dot), "png", bytes, error);
  else if (format == "callgraph-svg") return render_with_dot(export_dot(p, options.dot), "svg", bytes, error);
  else if (format == "flamegraph") *bytes = export_flamegraph_svg(p, options.title);
  else {
    *error = "unknown format '" + format + "'";
    return false;
  }
  if (bytes->empty()) {
    *error = "no usable samples were recorded";
    return false;
  }
  return true;
}

}  // namespace pyprofd
