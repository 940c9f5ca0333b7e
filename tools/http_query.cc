#include "tools/http_query.h"

#include <cmath>
#include <cstdlib>

namespace pyprofd::cli {

const char* const kHttpPaths[] = {"/debug/pprof/profile", "/debug/pprof/recent", "/metrics", "/targets", "/healthz",
                                  nullptr};

namespace {

constexpr HttpEndpoint kEndpoints[] = {HttpEndpoint::kProfile, HttpEndpoint::kRecent, HttpEndpoint::kMetrics,
                                       HttpEndpoint::kTargets, HttpEndpoint::kHealthz};

HttpEndpoint endpoint_of(const std::string& path) {
  for (size_t i = 0; kHttpPaths[i]; ++i)
    if (path == kHttpPaths[i]) return kEndpoints[i];
  return HttpEndpoint::kNone;
}

// The first value of a parameter (lower_bound: equal keys keep their insertion order).
const std::string* param(const HttpParams& params, const char* name) {
  auto it = params.lower_bound(name);
  return it != params.end() && it->first == name ? &it->second : nullptr;
}

// The format asked for ("pprof" unless &format=...), "" if unknown.
std::string format_of(const HttpParams& params) {
  const std::string* f = param(params, "format");
  if (!f) return "pprof";
  if (*f == "svg") return "flamegraph";
  for (const char* ok : {"pprof", "pstats", "collapsed", "speedscope", "callgrind", "dot", "flamegraph"})
    if (*f == ok) return *f;
  return "";
}

// A positive finite number from the query, def if absent; -1 if malformed.
double number_of(const HttpParams& params, const char* name, double def) {
  const std::string* s = param(params, name);
  if (!s) return def;
  char* end = nullptr;
  double v = std::strtod(s->c_str(), &end);
  // c_str() stops at an embedded NUL: the whole string must have been read.
  bool whole = !s->empty() && end == s->c_str() + s->size();
  return whole && std::isfinite(v) && v > 0 ? v : -1;
}

HttpQuery refuse(int status, const char* message) {
  HttpQuery q;
  q.status = status;
  q.error = message;
  return q;
}

}  // namespace

HttpQuery parse_http_query(const std::string& path, const HttpParams& params) {
  HttpQuery q;
  q.endpoint = endpoint_of(path);
  if (q.endpoint == HttpEndpoint::kNone) return refuse(404, "not found");
  if (q.endpoint != HttpEndpoint::kProfile && q.endpoint != HttpEndpoint::kRecent) return q;
  q.format = format_of(params);
  if (q.endpoint == HttpEndpoint::kProfile) {
    q.seconds = number_of(params, "seconds", 30);
    if (q.seconds <= 0 || q.seconds > kMaxProfileSeconds) return refuse(400, "seconds must be a number in (0, 3600]");
  } else {
    double k = number_of(params, "windows", 1);
    // Compared as doubles: casting a value past the integer range first is undefined.
    if (k < 1 || k > kMaxRecentWindows || k != std::floor(k)) return refuse(400, "windows must be a positive integer");
    q.windows = static_cast<size_t>(k);
  }
  if (q.format.empty()) return refuse(400, "unknown format (pprof, pstats, collapsed, speedscope, svg)");
  return q;
}

}  // namespace pyprofd::cli
