// pstats export checked by the real readers: every interpreter loads the file
// with marshal.load and pstats.Stats and prints it back as JSON, which must
// match the numbers derived by hand from the spec's sample->pstats mapping.
#include "exporters/pstats.h"

#include <gtest/gtest.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <map>
#include <nlohmann/json.hpp>
#include <tuple>

#include "exporters/atomic_file.h"
#include "exporters/marshal_writer.h"

namespace fs = std::filesystem;

namespace pyprofd::pstats_testing {  // also used by top_table_test.cc

std::vector<std::string> interpreter_names() {
  return {"py3.8", "py3.9", "py3.10", "py3.11", "py3.12", "py3.13", "debian3.11"};
}

// "py3.X" -> pyenv's 3.X.* build; "debian3.11" -> /usr/bin/python3.11. "" if absent.
std::string find_interpreter(const std::string& name) {
  if (name == "debian3.11") return access("/usr/bin/python3.11", X_OK) == 0 ? "/usr/bin/python3.11" : "";
  const std::string minor = name.substr(2);  // "3.X"
  const char* root_env = getenv("PYENV_ROOT");
  const fs::path versions = fs::path(root_env ? root_env : "/root/.pyenv") / "versions";
  std::error_code ec;
  for (const auto& d : fs::directory_iterator(versions, ec)) {
    const std::string v = d.path().filename().string();
    if (v.rfind(minor + ".", 0) != 0) continue;
    const fs::path exe = d.path() / "bin" / ("python" + minor);
    if (access(exe.c_str(), X_OK) == 0) return exe.string();
  }
  return "";
}

std::string shell_quote(const std::string& s) {
  std::string q = "'";
  for (char c : s) q += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return q + "'";
}

// Runs `cmd` with sh; returns its stdout, sets *ok to exit status 0.
std::string run_capture(const std::string& cmd, bool* ok) {
  std::string out;
  FILE* f = popen(cmd.c_str(), "r");
  if (!f) {
    *ok = false;
    return out;
  }
  char buf[4096];
  size_t n;
  while ((n = fread(buf, 1, sizeof buf, f)) > 0) out.append(buf, n);
  int status = pclose(f);
  *ok = status != -1 && WIFEXITED(status) && WEXITSTATUS(status) == 0;
  return out;
}

std::string make_temp_dir() {
  char tmpl[] = "/tmp/pyprofd_pstats_XXXXXX";
  const char* d = mkdtemp(tmpl);
  return d ? d : "";
}

// Adds `samples` samples of the stack `keys` (root first) weighing weight_ns in all.
void add_stack(Profile* p, const SampleLabels& labels, const std::vector<FunctionKey>& keys,
               uint64_t samples, uint64_t weight_ns) {
  std::vector<StackFrame> frames;
  for (const auto& k : keys) frames.push_back(StackFrame{p->intern(k), k.first_line + 1});
  p->add(labels, frames, weight_ns, samples);
}

}  // namespace pyprofd::pstats_testing

namespace pyprofd {
namespace {

using namespace pstats_testing;
using json = nlohmann::json;
using Key = std::tuple<std::string, int, std::string>;  // pstats order: file, line, name

constexpr uint64_t kMs = 1000000;

Key key_of(const FunctionKey& k) { return {k.file, k.first_line, k.name}; }
Key key_of(const json& j) { return {j[0].get<std::string>(), j[1].get<int>(), j[2].get<std::string>()}; }

struct Edge {
  uint64_t nc = 0, cc = 0;
  double tt = 0, ct = 0;
};
struct Entry {
  uint64_t cc = 0, nc = 0;
  double tt = 0, ct = 0;
  std::map<Key, Edge> callers;
};
struct Loaded {
  std::string version;
  bool types_ok = false;
  double total_tt = 0;
  std::map<Key, Entry> stats;
};

// Hand-derived expectation for one function.
struct ExpEdge {
  FunctionKey caller;
  uint64_t n, tt_ns, ct_ns;
};
struct Exp {
  FunctionKey key;
  uint64_t cc, nc, tt_ns, ct_ns;
  std::vector<ExpEdge> callers;
};

// Loads the file through marshal and pstats (printing callers/callees too, so
// those code paths run over our 4-tuples) and returns what they saw.
const char kLoadScript[] = R"PY(
import io, json, marshal, pstats, sys
path = sys.argv[1]
with open(path, "rb") as f:
    raw = marshal.load(f)
def key_ok(k):
    return type(k) is tuple and len(k) == 3 and type(k[0]) is str and type(k[1]) is int and type(k[2]) is str
def edge_ok(c, e):
    return key_ok(c) and type(e) is tuple and len(e) == 4 and [type(x) for x in e] == [int, int, float, float]
def entry_ok(k, v):
    return (key_ok(k) and type(v) is tuple and len(v) == 5 and [type(x) for x in v] == [int, int, float, float, dict]
            and all(edge_ok(c, e) for c, e in v[4].items()))
types_ok = type(raw) is dict and len(raw) > 0 and all(entry_ok(k, v) for k, v in raw.items())
s = pstats.Stats(path, stream=io.StringIO())
s.sort_stats("cumulative").print_stats()
s.print_callers()
s.print_callees()
stats = [[list(k), cc, nc, tt, ct, [[list(c), list(e)] for c, e in callers.items()]]
         for k, (cc, nc, tt, ct, callers) in s.stats.items()]
print(json.dumps({"version": sys.version.split()[0], "types_ok": types_ok, "total_tt": s.total_tt, "stats": stats}))
)PY";

class PstatsReaders : public ::testing::TestWithParam<std::string> {
 protected:
  void SetUp() override {
    python_ = find_interpreter(GetParam());
    if (python_.empty()) GTEST_SKIP() << "interpreter " << GetParam() << " not installed";
    dir_ = make_temp_dir();
    ASSERT_FALSE(dir_.empty());
  }
  void TearDown() override {
    if (!dir_.empty()) fs::remove_all(dir_);
  }

  // Exports p, loads it under this interpreter; false (with a failure) on error.
  bool load(const Profile& p, Loaded* out) {
    const std::string bytes = export_pstats(p);
    EXPECT_FALSE(bytes.empty());
    const std::string path = dir_ + "/out.pstats";
    std::string error;
    EXPECT_TRUE(write_file_atomic(path, bytes, &error)) << error;
    bool ok = false;
    const std::string text =
        run_capture(python_ + " -c " + shell_quote(kLoadScript) + " " + shell_quote(path), &ok);
    EXPECT_TRUE(ok) << python_ << " failed to load " << path << ": " << text;
    if (!ok) return false;
    const json j = json::parse(text);
    out->version = j["version"];
    out->types_ok = j["types_ok"];
    out->total_tt = j["total_tt"];
    for (const auto& e : j["stats"]) {
      Entry& en = out->stats[key_of(e[0])];
      en.cc = e[1];
      en.nc = e[2];
      en.tt = e[3];
      en.ct = e[4];
      for (const auto& c : e[5]) en.callers[key_of(c[0])] = Edge{c[1][0], c[1][1], c[1][2], c[1][3]};
    }
    return true;
  }

  // Exact comparison with the hand-derived table plus the invariants every
  // reader relies on. `roots` must have no callers.
  void check(const Profile& p, const std::vector<Exp>& expected, const std::vector<FunctionKey>& roots) {
    Loaded got;
    if (!load(p, &got)) return;
    SCOPED_TRACE("Python " + got.version);
    EXPECT_TRUE(got.types_ok) << "marshal types differ from (str, int, str): (int, int, float, float, dict)";
    ASSERT_EQ(got.stats.size(), expected.size());
    const double total = static_cast<double>(p.total_weight_ns()) / 1e9;
    EXPECT_DOUBLE_EQ(got.total_tt, total);
    for (const auto& e : expected) {
      SCOPED_TRACE(e.key.name);
      auto it = got.stats.find(key_of(e.key));
      ASSERT_NE(it, got.stats.end()) << "missing key " << e.key.file << ":" << e.key.name;
      const Entry& g = it->second;
      EXPECT_EQ(g.cc, e.cc);
      EXPECT_EQ(g.nc, e.nc);
      EXPECT_DOUBLE_EQ(g.tt, e.tt_ns / 1e9);
      EXPECT_DOUBLE_EQ(g.ct, e.ct_ns / 1e9);
      EXPECT_LE(g.ct, total);
      ASSERT_EQ(g.callers.size(), e.callers.size());
      for (const auto& c : e.callers) {
        SCOPED_TRACE("caller " + c.caller.name);
        auto ce = g.callers.find(key_of(c.caller));
        ASSERT_NE(ce, g.callers.end());
        EXPECT_EQ(ce->second.nc, c.n);
        EXPECT_EQ(ce->second.cc, c.n);
        EXPECT_DOUBLE_EQ(ce->second.tt, c.tt_ns / 1e9);
        EXPECT_DOUBLE_EQ(ce->second.ct, c.ct_ns / 1e9);
      }
    }
    for (const auto& [key, entry] : got.stats)
      for (const auto& [caller, edge] : entry.callers)
        EXPECT_TRUE(got.stats.count(caller)) << "caller " << std::get<2>(caller) << " is not a top-level key";
    for (const auto& r : roots) EXPECT_TRUE(got.stats[key_of(r)].callers.empty()) << r.name << " has callers";
  }

  std::string python_, dir_;
};

const SampleLabels kMain{100, 1, "MainThread", ""};

TEST_P(PstatsReaders, SimpleStack) {
  const FunctionKey mod{"<module>", "/app/main.py", 1}, f{"f", "/app/main.py", 10}, g{"g", "/app/main.py", 20};
  Profile p;
  add_stack(&p, kMain, {mod, f, g}, 3, 30 * kMs);
  add_stack(&p, kMain, {mod, f}, 2, 20 * kMs);
  add_stack(&p, kMain, {mod}, 1, 10 * kMs);
  check(p,
        {{mod, 1, 6, 10 * kMs, 60 * kMs, {}},
         {f, 2, 5, 20 * kMs, 50 * kMs, {{mod, 5, 20 * kMs, 50 * kMs}}},
         {g, 3, 3, 30 * kMs, 30 * kMs, {{f, 3, 30 * kMs, 30 * kMs}}}},
        {mod});
}

TEST_P(PstatsReaders, SelfAndMutualRecursion) {
  const FunctionKey mod{"<module>", "/app/rec.py", 1}, a{"a", "/app/rec.py", 4}, b{"b", "/app/rec.py", 8};
  Profile p;
  add_stack(&p, kMain, {mod, a, a, a}, 4, 40 * kMs);     // self recursion
  add_stack(&p, kMain, {mod, a, b, a, b}, 2, 20 * kMs);  // mutual recursion, leaf b
  add_stack(&p, kMain, {mod, a, b, a}, 1, 10 * kMs);     // mutual recursion, leaf a
  // Each function counts once per stack in nc/ct; edges likewise; the leaf's
  // edge from its direct caller carries the self time.
  check(p,
        {{mod, 0, 7, 0, 70 * kMs, {}},
         {a, 5, 7, 50 * kMs, 70 * kMs,
          {{mod, 7, 0, 70 * kMs}, {a, 4, 40 * kMs, 40 * kMs}, {b, 3, 10 * kMs, 30 * kMs}}},
         {b, 2, 3, 20 * kMs, 30 * kMs, {{a, 3, 20 * kMs, 30 * kMs}}}},
        {mod});
}

TEST_P(PstatsReaders, ThreadsPidsAndSyntheticFramesMerge) {
  const FunctionKey mod{"<module>", "/app/srv.py", 1}, work{"Worker.work", "/app/srv.py", 30};
  const FunctionKey task{"<task worker-1>", "~", 0}, coro{"handle", "/app/srv.py", 50};
  const FunctionKey sleep{"<built-in method time.sleep>", "~", 0};
  Profile p;
  add_stack(&p, SampleLabels{100, 1, "MainThread", ""}, {mod, work}, 2, 20 * kMs);
  add_stack(&p, SampleLabels{100, 2, "pool-1", ""}, {mod, work}, 3, 30 * kMs);
  add_stack(&p, SampleLabels{200, 7, "MainThread", "worker-1"}, {task, coro, sleep}, 5, 50 * kMs);
  add_stack(&p, SampleLabels{201, 9, "MainThread", "worker-1"}, {task, coro}, 1, 10 * kMs);
  check(p,
        {{mod, 0, 5, 0, 50 * kMs, {}},
         {work, 5, 5, 50 * kMs, 50 * kMs, {{mod, 5, 50 * kMs, 50 * kMs}}},
         {task, 0, 6, 0, 60 * kMs, {}},
         {coro, 1, 6, 10 * kMs, 60 * kMs, {{task, 6, 10 * kMs, 60 * kMs}}},
         {sleep, 5, 5, 50 * kMs, 50 * kMs, {{coro, 5, 50 * kMs, 50 * kMs}}}},
        {mod, task});
}

TEST_P(PstatsReaders, NonAsciiAndLongNamesRoundTrip) {
  const FunctionKey mod{"<module>", "/app/ünï/main.py", 1};
  const FunctionKey uni{"ünïcödé_函数", "/app/ünï/main.py", 7};
  const FunctionKey fraktur{"𝔣𝔲𝔫𝔠", "/app/ünï/main.py", 12};
  const FunctionKey long_ascii{std::string(300, 'x'), std::string(255, 'p'), 3};  // `a` and `z` at the limit
  const FunctionKey long_utf8{std::string(200, 'y') + "函数", "/app/ünï/main.py", 40};
  Profile p;
  add_stack(&p, kMain, {mod, uni, fraktur}, 2, 20 * kMs);
  add_stack(&p, kMain, {mod, long_ascii, long_utf8}, 1, 10 * kMs);
  check(p,
        {{mod, 0, 3, 0, 30 * kMs, {}},
         {uni, 0, 2, 0, 20 * kMs, {{mod, 2, 0, 20 * kMs}}},
         {fraktur, 2, 2, 20 * kMs, 20 * kMs, {{uni, 2, 20 * kMs, 20 * kMs}}},
         {long_ascii, 0, 1, 0, 10 * kMs, {{mod, 1, 0, 10 * kMs}}},
         {long_utf8, 1, 1, 10 * kMs, 10 * kMs, {{long_ascii, 1, 10 * kMs, 10 * kMs}}}},
        {mod});
}

TEST_P(PstatsReaders, CountsBeyondInt32) {
  const FunctionKey mod{"<module>", "/app/big.py", 1}, f{"f", "/app/big.py", 2};
  const uint64_t n = 5000000000ULL, w = 3600ULL * 1000 * kMs;  // an hour of weight
  Profile p;
  add_stack(&p, kMain, {mod, f}, n, w);
  check(p, {{mod, 0, n, 0, w, {}}, {f, n, n, w, w, {{mod, n, w, w}}}}, {mod});
}

// The marshal writer's forms, read back by marshal itself.
TEST_P(PstatsReaders, MarshalValuesRoundTrip) {
  MarshalWriter w;
  const std::vector<int64_t> ints = {0, -1, INT32_MAX, INT32_MIN, int64_t{INT32_MAX} + 1, int64_t{INT32_MIN} - 1,
                                     INT64_MAX, INT64_MIN};
  const std::vector<std::string> strs = {"", std::string(255, 'z'), std::string(256, 'a'), "ünï", "𝔣",
                                         "bad\xff\xc0\xaf" "end"};
  w.begin_tuple(ints.size() + strs.size() + 3);
  for (int64_t v : ints) w.write_int(v);
  w.write_uint(UINT64_MAX);
  w.write_float(0.1);
  w.write_float(-2.5e300);
  for (const auto& s : strs) w.write_str(s);
  const std::string path = dir_ + "/values.marshal";
  std::string error;
  ASSERT_TRUE(write_file_atomic(path, w.bytes(), &error)) << error;
  bool ok = false;
  const std::string script = "import json, marshal, sys; print(json.dumps(list(marshal.load(open(sys.argv[1], \"rb\")))))";
  const std::string text = run_capture(python_ + " -c " + shell_quote(script) + " " + shell_quote(path), &ok);
  ASSERT_TRUE(ok) << text;
  const json j = json::parse(text);
  size_t i = 0;
  for (int64_t v : ints) EXPECT_EQ(j[i++].get<int64_t>(), v);
  EXPECT_EQ(j[i++].get<uint64_t>(), UINT64_MAX);
  EXPECT_EQ(j[i++].get<double>(), 0.1);
  EXPECT_EQ(j[i++].get<double>(), -2.5e300);
  for (size_t s = 0; s + 1 < strs.size(); ++s) EXPECT_EQ(j[i++].get<std::string>(), strs[s]);
  EXPECT_EQ(j[i++].get<std::string>(), "bad\xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF\xBD" "end");
}

INSTANTIATE_TEST_SUITE_P(Interpreters, PstatsReaders, ::testing::ValuesIn(interpreter_names()),
                         [](const auto& info) {
                           std::string n = info.param;
                           for (char& c : n) c = c == '.' ? '_' : c;
                           return n;
                         });

TEST(Pstats, EmptyProfileIsRefused) {
  Profile p;
  EXPECT_EQ(export_pstats(p), "");
  p.intern(FunctionKey{"f", "/a.py", 1});
  p.add(kMain, {}, 10 * kMs);  // a stack without frames is no sample of anything
  EXPECT_EQ(export_pstats(p), "");
  EXPECT_TRUE(build_pstats_entries(p).empty());
}

TEST(Pstats, DuplicateKeysAndSyntheticLinesMerge) {
  Profile p;
  p.functions = {FunctionKey{"f", "/a.py", 1}, FunctionKey{"f", "/a.py", 1}, FunctionKey{"<task t>", "~", 5},
                 FunctionKey{"<task t>", "~", 0}, FunctionKey{"only_in_bad_stack", "/b.py", 1}};
  p.stacks = {StackRecord{kMain, {{2, 0}, {0, 3}}, 2, 20}, StackRecord{kMain, {{3, 0}, {1, 4}}, 1, 10},
              StackRecord{kMain, {{4, 0}, {9, 4}}, 1, 10}};  // index 9 is invalid: stack skipped
  const auto entries = build_pstats_entries(p);
  ASSERT_EQ(entries.size(), 2u);
  EXPECT_EQ(entries[0].key, (FunctionKey{"f", "/a.py", 1}));
  EXPECT_EQ(entries[0].nc, 3u);
  EXPECT_EQ(entries[0].tt_ns, 30u);
  ASSERT_EQ(entries[0].callers.size(), 1u);
  EXPECT_EQ(entries[0].callers[0].samples, 3u);
  EXPECT_EQ(entries[1].key, (FunctionKey{"<task t>", "~", 0}));
  EXPECT_EQ(entries[1].nc, 3u);
}

// gprof2dot asserts that callers are functions. Debian has no package: the real program,
// unmodified, comes from the workplace's shared readers (or $PYPROFD_GPROF2DOT).
std::string gprof2dot_path() {
  const char* env = std::getenv("PYPROFD_GPROF2DOT");
  if (env && *env) return env;
  return (fs::path(PYPROFD_SOURCE_DIR).parent_path() / "shared/readers/gprof2dot/gprof2dot.py").string();
}

TEST(Pstats, Gprof2dotReadsTheFile) {
  const std::string gprof2dot = gprof2dot_path();
  ASSERT_TRUE(fs::exists(gprof2dot)) << "gprof2dot reader missing: " << gprof2dot;
  const FunctionKey mod{"<module>", "/app/rec.py", 1}, a{"a", "/app/rec.py", 4}, b{"b", "/app/rec.py", 8};
  const FunctionKey sleep{"<built-in method time.sleep>", "~", 0};
  Profile p;
  add_stack(&p, kMain, {mod, a, a, a, sleep}, 4, 40 * kMs);
  add_stack(&p, kMain, {mod, a, b, a, b}, 2, 20 * kMs);
  const std::string dir = make_temp_dir(), path = dir + "/g.pstats";
  std::string error;
  ASSERT_TRUE(write_file_atomic(path, export_pstats(p), &error)) << error;
  bool ok = false;
  const std::string dot = run_capture("/usr/bin/python3 " + shell_quote(gprof2dot) + " -f pstats " + shell_quote(path) + " 2>&1", &ok);
  fs::remove_all(dir);
  ASSERT_TRUE(ok) << dot;
  EXPECT_NE(dot.find("digraph"), std::string::npos);
  EXPECT_NE(dot.find("100.00%"), std::string::npos) << "root is not at 100%:\n" << dot;
}

TEST(MarshalWriter, Encodings) {
  MarshalWriter w;
  w.write_int(1);
  w.write_str("ab");
  w.begin_tuple(2);
  w.begin_dict();
  w.end_dict();
  EXPECT_EQ(w.bytes(), std::string("i\x01\0\0\0z\x02" "ab)\x02{0", 13));
  EXPECT_EQ(sanitize_utf8("ok \xE2\x82\xAC \xF0\x9D\x94\xA3"), "ok \xE2\x82\xAC \xF0\x9D\x94\xA3");
  EXPECT_EQ(sanitize_utf8("\xE2\x82"), "\xEF\xBF\xBD\xEF\xBF\xBD");  // truncated
  const std::string fffd = "\xEF\xBF\xBD";
  EXPECT_EQ(sanitize_utf8("\xF4\x90\x80\x80"), fffd + fffd + fffd + fffd);  // beyond U+10FFFF
  EXPECT_EQ(sanitize_utf8("\xED\xA0\x80"), "\xED\xA0\x80");  // lone surrogate: surrogatepass accepts it
}

}  // namespace
}  // namespace pyprofd
