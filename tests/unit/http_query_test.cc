// tools/http_query: the daemon's reading of a request's path and query.
#include "tools/http_query.h"

#include <gtest/gtest.h>

namespace pyprofd::cli {
namespace {

HttpQuery parse(const std::string& path, HttpParams params = {}) { return parse_http_query(path, params); }

TEST(HttpQuery, EveryServedPathHasItsEndpoint) {
  EXPECT_EQ(parse("/debug/pprof/profile").endpoint, HttpEndpoint::kProfile);
  EXPECT_EQ(parse("/debug/pprof/recent").endpoint, HttpEndpoint::kRecent);
  EXPECT_EQ(parse("/metrics").endpoint, HttpEndpoint::kMetrics);
  EXPECT_EQ(parse("/targets").endpoint, HttpEndpoint::kTargets);
  EXPECT_EQ(parse("/healthz").endpoint, HttpEndpoint::kHealthz);
  size_t n = 0;
  for (size_t i = 0; kHttpPaths[i]; ++i, ++n) EXPECT_EQ(parse(kHttpPaths[i]).status, 200) << kHttpPaths[i];
  EXPECT_EQ(n, 5u);
}

TEST(HttpQuery, OtherPathsAre404) {
  for (const char* p : {"", "/", "/metrics/", "/metrics/../../etc/passwd", "/../../etc/passwd", "/debug/pprof/",
                        "/debug/pprof/heap", "/METRICS", "/healthz.bak", "metrics", "/targets/1"}) {
    HttpQuery q = parse(p);
    EXPECT_EQ(q.status, 404) << p;
    EXPECT_EQ(q.endpoint, HttpEndpoint::kNone) << p;
    EXPECT_FALSE(q.error.empty());
  }
  EXPECT_EQ(parse(std::string("/metrics\0x", 10)).status, 404);  // an embedded NUL is not the end
}

TEST(HttpQuery, ProfileDefaultsAndValues) {
  HttpQuery q = parse("/debug/pprof/profile");
  EXPECT_EQ(q.format, "pprof");
  EXPECT_EQ(q.seconds, 30);
  q = parse("/debug/pprof/profile", {{"seconds", "2.5"}, {"format", "collapsed"}});
  EXPECT_EQ(q.status, 200);
  EXPECT_EQ(q.seconds, 2.5);
  EXPECT_EQ(q.format, "collapsed");
  EXPECT_EQ(parse("/debug/pprof/profile", {{"seconds", "3600"}}).status, 200);
  EXPECT_EQ(parse("/debug/pprof/profile", {{"format", "svg"}}).format, "flamegraph");
  for (const char* f : {"pprof", "pstats", "collapsed", "speedscope", "callgrind", "dot", "flamegraph"})
    EXPECT_EQ(parse("/debug/pprof/recent", {{"format", f}}).format, f);
}

TEST(HttpQuery, BadSecondsAre400) {
  for (const char* s : {"", "0", "-1", "3600.5", "1e9", "abc", "5s", "inf", "nan", "-inf", "1e400"}) {
    HttpQuery q = parse("/debug/pprof/profile", {{"seconds", s}});
    EXPECT_EQ(q.status, 400) << s;
    EXPECT_EQ(q.error, "seconds must be a number in (0, 3600]") << s;
  }
  EXPECT_EQ(parse("/debug/pprof/profile", {{"seconds", std::string("5\0x", 3)}}).status, 400);
}

TEST(HttpQuery, RecentWindows) {
  EXPECT_EQ(parse("/debug/pprof/recent").windows, 1u);
  EXPECT_EQ(parse("/debug/pprof/recent", {{"windows", "3"}}).windows, 3u);
  EXPECT_EQ(parse("/debug/pprof/recent", {{"windows", "2147483647"}}).windows, 2147483647u);
  // Past INT32_MAX: refused (the old check cast it to int first, undefined behaviour).
  for (const char* w : {"0", "1.5", "-2", "2147483648", "1e300", "inf", "nan", "x", ""}) {
    HttpQuery q = parse("/debug/pprof/recent", {{"windows", w}});
    EXPECT_EQ(q.status, 400) << w;
    EXPECT_EQ(q.error, "windows must be a positive integer") << w;
  }
}

TEST(HttpQuery, UnknownFormatIs400AfterTheNumber) {
  HttpQuery q = parse("/debug/pprof/profile", {{"format", "zip"}});
  EXPECT_EQ(q.status, 400);
  EXPECT_EQ(q.error, "unknown format (pprof, pstats, collapsed, speedscope, svg)");
  EXPECT_EQ(parse("/debug/pprof/recent", {{"format", ""}}).status, 400);
  EXPECT_EQ(parse("/debug/pprof/recent", {{"format", "SVG"}}).status, 400);
  // Both wrong: the number is named first, as before the move out of daemon_http.cc.
  EXPECT_EQ(parse("/debug/pprof/profile", {{"format", "zip"}, {"seconds", "0"}}).error,
            "seconds must be a number in (0, 3600]");
}

TEST(HttpQuery, RepeatedParameterTakesTheFirstValue) {
  HttpParams p;
  p.emplace("seconds", "5");
  p.emplace("seconds", "0");
  p.emplace("format", "dot");
  p.emplace("format", "zip");
  HttpQuery q = parse_http_query("/debug/pprof/profile", p);
  EXPECT_EQ(q.status, 200);
  EXPECT_EQ(q.seconds, 5);
  EXPECT_EQ(q.format, "dot");
}

TEST(HttpQuery, OtherEndpointsIgnoreTheirQuery) {
  HttpQuery q = parse("/metrics", {{"seconds", "-1"}, {"format", "zip"}});
  EXPECT_EQ(q.status, 200);
  EXPECT_EQ(q.endpoint, HttpEndpoint::kMetrics);
  EXPECT_EQ(parse("/healthz", {{"windows", "0"}}).status, 200);
}

}  // namespace
}  // namespace pyprofd::cli
