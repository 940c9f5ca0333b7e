// The daemon's reading of a request's path and query (cpp-httplib has already split
// and URL-decoded them): which endpoint, which format, how many seconds or windows.
// A pure function of its arguments, so unit tests and fuzz/fuzz_http.cc call it directly.
#pragma once
#include <map>
#include <string>

namespace pyprofd::cli {

// cpp-httplib's httplib::Params (daemon_http.cc checks that the types match).
using HttpParams = std::multimap<std::string, std::string>;

enum class HttpEndpoint { kNone, kProfile, kRecent, kMetrics, kTargets, kHealthz };

struct HttpQuery {
  int status = 200;            // 400 or 404: refused, `error` says why
  std::string error;
  HttpEndpoint endpoint = HttpEndpoint::kNone;
  std::string format;          // /profile, /recent: an exporter name ("svg" reads as "flamegraph")
  double seconds = 0;          // /profile: in (0, kMaxProfileSeconds]
  size_t windows = 0;          // /recent: an integer in [1, kMaxRecentWindows]
};

constexpr double kMaxProfileSeconds = 3600;
constexpr double kMaxRecentWindows = 2147483647;  // INT32_MAX: any more reads as "all"

// The paths the server routes, each exactly (no pattern); nullptr-terminated.
extern const char* const kHttpPaths[];

// A repeated parameter counts once: its first value, as cpp-httplib's get_param_value.
HttpQuery parse_http_query(const std::string& path, const HttpParams& params);

}  // namespace pyprofd::cli
