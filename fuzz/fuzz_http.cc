// libFuzzer target (HTTP): the daemon's reading of a request's path and query
// (tools/http_query). Input: NUL-separated fields "path\0key\0value\0key\0value...",
// a key without its value gets "" (any other byte may appear in a field, as
// cpp-httplib's URL decoding can produce it). The oracle aborts on an answer that
// breaks the function's contract.
#include <cstdlib>
#include <string>
#include <vector>

#include "tools/http_query.h"

namespace {

using pyprofd::cli::HttpEndpoint;
using pyprofd::cli::HttpQuery;

std::vector<std::string> fields(const char* data, size_t size) {
  std::vector<std::string> out(1);
  for (size_t i = 0; i < size; ++i) {
    if (data[i] == '\0') out.emplace_back();
    else out.back() += data[i];
  }
  return out;
}

bool known_format(const std::string& f) {
  for (const char* ok : {"pprof", "pstats", "collapsed", "speedscope", "callgrind", "dot", "flamegraph"})
    if (f == ok) return true;
  return false;
}

void check(const HttpQuery& q) {
  bool ok = q.status == 200 ? q.error.empty() && q.endpoint != HttpEndpoint::kNone
                            : (q.status == 400 || q.status == 404) && !q.error.empty();
  if (ok && q.status == 200 && q.endpoint == HttpEndpoint::kProfile)
    ok = known_format(q.format) && q.seconds > 0 && q.seconds <= pyprofd::cli::kMaxProfileSeconds;
  if (ok && q.status == 200 && q.endpoint == HttpEndpoint::kRecent)
    ok = known_format(q.format) && q.windows >= 1 && q.windows <= pyprofd::cli::kMaxRecentWindows;
  if (!ok) abort();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::vector<std::string> f = fields(reinterpret_cast<const char*>(data), size);
  pyprofd::cli::HttpParams params;
  for (size_t i = 1; i < f.size(); i += 2) params.emplace(f[i], i + 1 < f.size() ? f[i + 1] : "");
  check(pyprofd::cli::parse_http_query(f[0], params));
  return 0;
}
