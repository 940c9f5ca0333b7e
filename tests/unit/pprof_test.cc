// pprof export checked two ways: decoded back with the generated classes (structure,
// and every stack and label round-trips), and read by the real reader, `go tool pprof`,
// whose -top / -traces / -tags / -tagfocus output must match numbers derived from the model.
#include "exporters/pprof.h"

#include <google/protobuf/text_format.h>
#include <gtest/gtest.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <zlib.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>
#include <set>
#include <sstream>
#include <tuple>

#include "exporters/profile.pb.h"
#include "tests/unit/gunzip.h"

namespace fs = std::filesystem;

namespace pyprofd {
namespace {

namespace pb = perftools::profiles;

constexpr uint64_t kMs = 1000000;

// ---- decoding ----


pb::Profile decode(const std::string& bytes) {
  pb::Profile d;
  // Proto3 parsing also rejects strings that are not valid UTF-8.
  EXPECT_TRUE(d.ParseFromString(gunzip(bytes))) << "not a perftools.profiles.Profile";
  return d;
}

// A frame as text, and a sample's labels as key -> value text: what both the
// model and the decoded file are reduced to for comparison.
using Frame = std::tuple<std::string, std::string, int64_t, int64_t>;  // name, file, first_line, line
using Labels = std::map<std::string, std::string>;
using SampleKey = std::pair<std::vector<Frame>, Labels>;           // frames root first
using Totals = std::map<SampleKey, std::pair<int64_t, int64_t>>;  // samples, weight_ns

Labels labels_of(const SampleLabels& l) {
  Labels out{{"pid", std::to_string(l.pid)}, {"thread_id", std::to_string(l.thread_id)}};
  if (!l.thread_name.empty()) out["thread_name"] = l.thread_name;
  if (!l.task_name.empty()) out["task_name"] = l.task_name;
  return out;
}

// What the file should hold: stacks with a frame outside p.functions or without
// samples and weight are gone, identical stacks are summed.
Totals expected_totals(const Profile& p) {
  Totals out;
  for (const auto& s : p.stacks) {
    if (s.samples == 0 && s.weight_ns == 0) continue;
    std::vector<Frame> frames;
    bool ok = true;
    for (const auto& f : s.frames) {
      if (f.function >= p.functions.size()) {
        ok = false;
        break;
      }
      const FunctionKey& k = p.functions[f.function];
      frames.emplace_back(k.name, k.file, k.first_line, f.line);
    }
    if (!ok) continue;
    auto& t = out[{frames, labels_of(s.labels)}];
    t.first += static_cast<int64_t>(s.samples);
    t.second += static_cast<int64_t>(s.weight_ns);
  }
  return out;
}

// Checks the invariants readers rely on and returns the samples as text.
Totals check_and_read(const pb::Profile& d, ProfileMode mode, double rate_hz) {
  Totals out;
  const int64_t n_strings = d.string_table_size();
  EXPECT_GT(n_strings, 0);
  if (n_strings == 0) return out;
  EXPECT_EQ(d.string_table(0), "");
  auto str = [&](int64_t i) -> std::string {
    EXPECT_TRUE(i >= 0 && i < n_strings) << "string index " << i;
    return i >= 0 && i < n_strings ? d.string_table(static_cast<int>(i)) : "<bad index>";
  };
  const std::string kind = mode == ProfileMode::kWall ? "wall" : "cpu";
  EXPECT_EQ(d.sample_type_size(), 2);
  if (d.sample_type_size() == 2) {
    EXPECT_EQ(str(d.sample_type(0).type()) + "/" + str(d.sample_type(0).unit()), "samples/count");
    EXPECT_EQ(str(d.sample_type(1).type()) + "/" + str(d.sample_type(1).unit()), kind + "/nanoseconds");
  }
  EXPECT_EQ(str(d.period_type().type()) + "/" + str(d.period_type().unit()), kind + "/nanoseconds");
  EXPECT_EQ(d.period(), rate_hz > 0 ? std::llround(1e9 / rate_hz) : 0);
  EXPECT_EQ(d.mapping_size(), 0);

  std::map<uint64_t, std::tuple<std::string, std::string, int64_t>> functions;
  std::set<std::tuple<std::string, std::string, int64_t>> function_keys;
  for (const auto& f : d.function()) {
    EXPECT_NE(f.id(), 0u);
    EXPECT_EQ(f.system_name(), 0) << "system_name set: pprof would print <unknown>";
    auto key = std::make_tuple(str(f.name()), str(f.filename()), f.start_line());
    EXPECT_TRUE(function_keys.insert(key).second) << "two Functions for " << std::get<0>(key);
    EXPECT_TRUE(functions.emplace(f.id(), key).second) << "duplicate function id " << f.id();
  }
  std::map<uint64_t, Frame> locations;
  std::set<std::pair<uint64_t, int64_t>> location_keys;
  for (const auto& loc : d.location()) {
    EXPECT_NE(loc.id(), 0u);
    EXPECT_EQ(loc.mapping_id(), 0u);
    EXPECT_EQ(loc.line_size(), 1);
    if (loc.line_size() != 1) continue;
    const pb::Line& line = loc.line(0);
    auto f = functions.find(line.function_id());
    EXPECT_NE(f, functions.end()) << "location " << loc.id() << " names missing function " << line.function_id();
    if (f == functions.end()) continue;
    EXPECT_TRUE(location_keys.emplace(line.function_id(), line.line()).second) << "two Locations for one line";
    const auto& [name, file, first] = f->second;
    EXPECT_TRUE(locations.emplace(loc.id(), Frame{name, file, first, line.line()}).second) << "duplicate location id";
  }
  for (const auto& s : d.sample()) {
    EXPECT_EQ(s.value_size(), d.sample_type_size());
    if (s.value_size() != 2) continue;
    std::vector<Frame> frames;
    for (uint64_t id : s.location_id()) {
      auto loc = locations.find(id);
      EXPECT_NE(loc, locations.end()) << "sample names missing location " << id;
      if (loc != locations.end()) frames.push_back(loc->second);
    }
    std::reverse(frames.begin(), frames.end());  // file: leaf first; here: root first
    Labels labels;
    for (const auto& l : s.label()) {
      const std::string key = str(l.key());
      const bool numeric = key == "pid" || key == "thread_id";
      EXPECT_EQ(l.str() == 0, numeric) << key << ": pid/thread_id numeric, names strings";
      EXPECT_EQ(l.num_unit(), 0);
      EXPECT_TRUE(labels.emplace(key, numeric ? std::to_string(static_cast<uint64_t>(l.num())) : str(l.str())).second)
          << "label " << key << " twice";
      if (!numeric) {
        EXPECT_NE(str(l.str()), "") << "empty string label " << key;
      }
    }
    EXPECT_TRUE(out.emplace(SampleKey{frames, labels}, std::make_pair(s.value(0), s.value(1))).second)
        << "identical stacks not aggregated";
  }
  return out;
}

// ---- go tool pprof ----

std::string shell_quote(const std::string& s) {
  std::string q = "'";
  for (char c : s) q += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return q + "'";
}

// Runs `go tool pprof` in a private temp dir (it writes HOME/GOCACHE/PPROF_TMPDIR).
class Pprof {
 public:
  Pprof() {
    char tmpl[] = "/tmp/pyprofd_pprof_XXXXXX";
    if (const char* d = mkdtemp(tmpl)) dir_ = d;
  }
  ~Pprof() {
    std::error_code ec;
    if (!dir_.empty()) fs::remove_all(dir_, ec);
  }
  static bool have_go() { return system("command -v go >/dev/null 2>&1") == 0; }

  // Writes `bytes` as the profile that run() reads.
  void write(const std::string& bytes) {
    std::ofstream(dir_ + "/profile.pb.gz", std::ios::binary) << bytes;
  }
  // stdout of `go tool pprof ARGS profile.pb.gz`; a failed run is a test failure.
  std::string run(const std::string& args) {
    const std::string q = shell_quote(dir_);
    const std::string cmd = "cd " + q + " && HOME=" + q + " GOCACHE=" + q + "/gocache PPROF_TMPDIR=" + q +
                            " go tool pprof " + args + " profile.pb.gz 2>stderr.txt";
    std::string out;
    FILE* f = popen(cmd.c_str(), "r");
    if (!f) {
      ADD_FAILURE() << "popen failed";
      return out;
    }
    char buf[4096];
    size_t n;
    while ((n = fread(buf, 1, sizeof buf, f)) > 0) out.append(buf, n);
    const int status = pclose(f);
    if (!(WIFEXITED(status) && WEXITSTATUS(status) == 0)) {
      std::ifstream err(dir_ + "/stderr.txt");
      std::stringstream ss;
      ss << err.rdbuf();
      ADD_FAILURE() << "go tool pprof " << args << " failed:\n" << ss.str() << out;
    }
    return out;
  }

 private:
  std::string dir_;
};

#define REQUIRE_GO()                                                                                \
  if (!Pprof::have_go())                                                                            \
  FAIL() << "`go` not found: `go tool pprof` is a required test tool; tools/install-deps.sh installs " \
            "golang-go"

std::vector<std::string> lines_of(const std::string& text) {
  std::vector<std::string> out;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) out.push_back(line);
  return out;
}

// "30000000ns", "0" or "3" -> the number; anything else (ms, s, ...) fails.
int64_t exact_value(const std::string& tok) {
  size_t used = 0;
  const long long v = std::stoll(tok, &used);
  const std::string unit = tok.substr(used);
  EXPECT_TRUE(unit.empty() || unit == "ns") << "value printed in a rounded unit: " << tok;
  return v;
}

// -top rows: name -> (flat, cum). Columns: flat flat% sum% cum cum% name...
std::map<std::string, std::pair<int64_t, int64_t>> parse_top(const std::string& out) {
  std::map<std::string, std::pair<int64_t, int64_t>> rows;
  bool in_table = false;
  for (const auto& line : lines_of(out)) {
    if (!in_table) {
      in_table = line.find("flat  flat%") != std::string::npos;
      continue;
    }
    std::istringstream in(line);
    std::string flat, flat_pct, sum_pct, cum, cum_pct, name;
    in >> flat >> flat_pct >> sum_pct >> cum >> cum_pct >> std::ws;
    std::getline(in, name);
    EXPECT_FALSE(name.empty()) << "bad -top row: " << line;
    EXPECT_TRUE(rows.emplace(name, std::make_pair(exact_value(flat), exact_value(cum))).second) << name;
  }
  EXPECT_TRUE(in_table) << "no -top table in:\n" << out;
  return rows;
}

// -traces blocks (label lines "key:  value", then "WEIGHT   leaf", then "   caller"...),
// summed by (leaf-first names, labels).
using Trace = std::pair<std::vector<std::string>, Labels>;
std::map<Trace, int64_t> parse_traces(const std::string& out) {
  std::map<Trace, int64_t> traces;
  Trace cur;
  int64_t weight = -1;
  auto flush = [&] {
    if (weight >= 0) traces[cur] += weight;
    cur = Trace{};
    weight = -1;
  };
  bool started = false;
  for (const auto& line : lines_of(out)) {
    if (line.rfind("-----------+", 0) == 0) {
      flush();
      started = true;
      continue;
    }
    if (!started || line.empty()) continue;
    std::istringstream in(line);
    std::string first, rest;
    in >> first >> std::ws;
    std::getline(in, rest);
    if (weight < 0 && !first.empty() && first.back() == ':') {
      cur.second[first.substr(0, first.size() - 1)] = rest;
    } else if (weight < 0) {
      weight = exact_value(first);
      cur.first.push_back(rest);
    } else {
      cur.first.push_back(line.substr(line.find_first_not_of(' ')));
    }
  }
  flush();
  return traces;
}

// -tags with -sample_index=samples: key -> value -> sample count.
std::map<std::string, std::map<std::string, int64_t>> parse_tags(const std::string& out) {
  std::map<std::string, std::map<std::string, int64_t>> tags;
  std::string key;
  for (const auto& line : lines_of(out)) {
    const size_t total = line.find(": Total ");
    if (total != std::string::npos) {
      key = line.substr(line.find_first_not_of(' '), total - line.find_first_not_of(' '));
      continue;
    }
    const size_t sep = line.find("): ");
    if (sep == std::string::npos || key.empty()) continue;
    tags[key][line.substr(sep + 3)] = std::llround(std::stod(line));
  }
  return tags;
}

// What pprof's -top shows: per function name (files merged), flat = weight as the
// leaf, cum = weight of stacks containing it (once per stack, however recursive).
std::map<std::string, std::pair<int64_t, int64_t>> expected_top(const Totals& totals, bool samples) {
  std::map<std::string, std::pair<int64_t, int64_t>> rows;
  for (const auto& [key, t] : totals) {
    const int64_t v = samples ? t.first : t.second;
    if (key.first.empty()) continue;
    rows[std::get<0>(key.first.back())].first += v;
    std::set<std::string> seen;
    for (const auto& f : key.first)
      if (seen.insert(std::get<0>(f)).second) rows[std::get<0>(f)].second += v;
  }
  return rows;
}

std::map<Trace, int64_t> expected_traces(const Totals& totals) {
  std::map<Trace, int64_t> out;
  for (const auto& [key, t] : totals) {
    Trace tr;
    for (auto f = key.first.rbegin(); f != key.first.rend(); ++f) tr.first.push_back(std::get<0>(*f));
    tr.second = key.second;
    out[tr] += t.second;
  }
  return out;
}

std::map<std::string, std::map<std::string, int64_t>> expected_tags(const Totals& totals) {
  std::map<std::string, std::map<std::string, int64_t>> out;
  for (const auto& [key, t] : totals)
    for (const auto& [k, v] : key.second) out[k][v] += t.first;
  return out;
}

// ---- models ----

FunctionKey kModule{"<module>", "/app/main.py", 1};
FunctionKey kFib{"fib", "/app/main.py", 10};
FunctionKey kUnicode{"ünïcödé_函数", "/app/ünï.py", 3};
FunctionKey kTask{"<task Worker-1>", "~", 0};
FunctionKey kHandler{"Server.handle", "/app/server.py", 40};
FunctionKey kOtherModule{"<module>", "/app/other.py", 1};

// Recursion, two pids, four threads, a task frame, non-ASCII names, and two
// different "<module>" functions that pprof shows as one row.
Profile mixed_model(ProfileMode mode) {
  Profile p;
  p.mode = mode;
  p.rate_hz = 250;
  p.start_time_ns = 1700000000123456789;
  p.duration_ns = 3 * 1000 * kMs;
  const uint32_t mod = p.intern(kModule), fib = p.intern(kFib), uni = p.intern(kUnicode);
  const uint32_t task = p.intern(kTask), handler = p.intern(kHandler), other = p.intern(kOtherModule);
  const SampleLabels main_thread{100, 1001, "MainThread", ""};
  p.add(main_thread, {{mod, 5}, {fib, 12}, {fib, 13}, {fib, 12}}, 40 * kMs, 10);
  p.add(main_thread, {{mod, 5}, {fib, 12}}, 8 * kMs, 2);
  p.add(main_thread, {{mod, 6}}, 4 * kMs, 1);
  p.add({100, 1002, "Thread-2 (worker)", ""}, {{mod, 7}, {uni, 4}, {uni, 5}}, 24 * kMs, 6);
  p.add({200, 2001, "MainThread", "Worker-1"}, {{task, 0}, {handler, 41}, {fib, 11}}, 12 * kMs, 3);
  p.add({200, 2001, "MainThread", ""}, {{other, 2}}, 20 * kMs, 5);
  p.add({200, 2002, "", ""}, {{other, 3}, {handler, 44}}, 16 * kMs, 4);
  // Same stack and labels again, bypassing add(): the exporter must merge them.
  p.stacks.push_back(StackRecord{main_thread, {{mod, 6}}, 3, 12 * kMs});
  return p;
}

void check_with_pprof(const Profile& p, const std::vector<int>& pids) {
  const Totals expected = expected_totals(p);
  Pprof pprof;
  pprof.write(export_pprof(p));

  // -raw: the strict reader accepts the file; names print as written.
  const std::string raw = pprof.run("-raw");
  EXPECT_NE(raw.find(" <module> /app/main.py:5 s=1"), std::string::npos) << raw;
  EXPECT_EQ(raw.find("<unknown>"), std::string::npos) << raw;

  const std::string top = pprof.run("-top -nodecount=100 -nodefraction=0 -unit=ns");
  EXPECT_NE(top.find(p.mode == ProfileMode::kWall ? "Type: wall" : "Type: cpu"), std::string::npos) << top;
  EXPECT_EQ(parse_top(top), expected_top(expected, false)) << top;
  EXPECT_NE(top.find("  <module>\n"), std::string::npos) << top;
  const std::string top_samples = pprof.run("-top -nodecount=100 -nodefraction=0 -sample_index=samples");
  EXPECT_EQ(parse_top(top_samples), expected_top(expected, true)) << top_samples;

  const std::string traces = pprof.run("-traces -unit=ns");
  EXPECT_EQ(parse_traces(traces), expected_traces(expected)) << traces;

  const std::string tags = pprof.run("-tags -sample_index=samples");
  auto want_tags = expected_tags(expected);
  EXPECT_EQ(parse_tags(tags), want_tags) << tags;
  for (const char* key : {"pid", "thread_id", "thread_name", "task_name"}) EXPECT_EQ(want_tags.count(key), 1u) << key;

  for (int pid : pids) {
    const std::string focused = pprof.run("-top -nodecount=100 -nodefraction=0 -unit=ns -tagfocus pid=" + std::to_string(pid));
    EXPECT_EQ(parse_top(focused), expected_top(expected_totals(p.only_pid(pid)), false)) << focused;
  }
}

// ---- tests ----

TEST(PprofExport, GzipWithHeader) {
  const std::string bytes = export_pprof(mixed_model(ProfileMode::kCpu));
  ASSERT_GE(bytes.size(), 18u);
  EXPECT_EQ(static_cast<unsigned char>(bytes[0]), 0x1f);
  EXPECT_EQ(static_cast<unsigned char>(bytes[1]), 0x8b);
}

TEST(PprofExport, CpuRoundTrip) {
  const Profile p = mixed_model(ProfileMode::kCpu);
  const pb::Profile d = decode(export_pprof(p));
  EXPECT_EQ(check_and_read(d, p.mode, p.rate_hz), expected_totals(p));
  EXPECT_EQ(d.time_nanos(), p.start_time_ns);
  EXPECT_EQ(d.duration_nanos(), p.duration_ns);
  EXPECT_EQ(d.period(), 4000000);
  EXPECT_EQ(d.function_size(), 6);
  EXPECT_EQ(d.sample_size(), 7);  // 8 stacks, two identical
}

TEST(PprofExport, WallRoundTrip) {
  const Profile p = mixed_model(ProfileMode::kWall);
  const pb::Profile d = decode(export_pprof(p));
  EXPECT_EQ(check_and_read(d, p.mode, p.rate_hz), expected_totals(p));
}

TEST(PprofExport, CpuReadByGoPprof) {
  REQUIRE_GO();
  check_with_pprof(mixed_model(ProfileMode::kCpu), {100, 200});
}

TEST(PprofExport, WallReadByGoPprof) {
  REQUIRE_GO();
  check_with_pprof(mixed_model(ProfileMode::kWall), {100, 200});
}

// Stacks the exporter must drop or keep, and keys it must merge.
TEST(PprofExport, OddStacks) {
  Profile p;
  p.rate_hz = 0;
  const uint32_t a = p.intern({"a", "/x.py", 1});
  p.functions.push_back({"a", "/x.py", 1});  // a duplicate key: still one Function
  const uint32_t a2 = static_cast<uint32_t>(p.functions.size() - 1);
  const SampleLabels l{7, 8, "", ""};
  p.stacks.push_back(StackRecord{l, {{a, 2}}, 1, 5});
  p.stacks.push_back(StackRecord{l, {{a2, 2}}, 2, 6});     // same location via the duplicate
  p.stacks.push_back(StackRecord{l, {{a, 2}, {99, 1}}, 4, 9});  // unknown function: dropped
  p.stacks.push_back(StackRecord{l, {{a, 3}}, 0, 0});      // nothing in it: dropped
  p.stacks.push_back(StackRecord{l, {}, 3, 30});          // no frames: kept in the total
  const pb::Profile d = decode(export_pprof(p));
  const Totals got = check_and_read(d, p.mode, p.rate_hz);
  EXPECT_EQ(d.period(), 0);
  EXPECT_EQ(d.function_size(), 1);
  EXPECT_EQ(d.location_size(), 1);
  const Totals want{{{{{"a", "/x.py", 1, 2}}, {{"pid", "7"}, {"thread_id", "8"}}}, {3, 11}},
                    {{{}, {{"pid", "7"}, {"thread_id", "8"}}}, {3, 30}}};
  EXPECT_EQ(got, want);
}

// Invalid UTF-8 and encoded surrogates (co_filename of undecodable bytes) would make
// the protobuf unparseable; they become U+FFFD.
TEST(PprofExport, InvalidUtf8Replaced) {
  Profile p;
  const uint32_t f = p.intern({"bad\xff", "/d/\xed\xb2\x80.py", 1});
  p.add({1, 2, "t\xc3", "k\xed\xa0\x80"}, {{f, 1}}, 10, 1);
  const pb::Profile d = decode(export_pprof(p));
  const Totals got = check_and_read(d, p.mode, p.rate_hz);
  const Totals want{{{{{"bad\uFFFD", "/d/\uFFFD.py", 1, 1}},
                      {{"pid", "1"}, {"thread_id", "2"}, {"thread_name", "t\uFFFD"}, {"task_name", "k\uFFFD"}}},
                     {1, 10}}};
  EXPECT_EQ(got, want);
}

TEST(PprofExport, EmptyProfileIsValid) {
  REQUIRE_GO();
  Profile p;
  const pb::Profile d = decode(export_pprof(p));
  EXPECT_TRUE(check_and_read(d, p.mode, p.rate_hz).empty());
  Pprof pprof;
  pprof.write(export_pprof(p));
  pprof.run("-raw");
}

// The whole decoded file for a small model: ids in order of first use, strings
// interned in order of first use, so the output is stable.
TEST(PprofExport, GoldenText) {
  Profile p;
  p.mode = ProfileMode::kWall;
  p.rate_hz = 100;
  p.start_time_ns = 1000;
  p.duration_ns = 2000;
  const uint32_t mod = p.intern({"<module>", "m.py", 1});
  const uint32_t f = p.intern({"f", "m.py", 3});
  p.add({5, 6, "MainThread", ""}, {{mod, 9}, {f, 4}}, 30, 3);
  p.add({5, 6, "", "T"}, {{mod, 9}}, 10, 1);
  std::string text;
  ASSERT_TRUE(google::protobuf::TextFormat::PrintToString(decode(export_pprof(p)), &text));
  EXPECT_EQ(text, R"(sample_type {
  type: 1
  unit: 2
}
sample_type {
  type: 3
  unit: 4
}
sample {
  location_id: 1
  location_id: 2
  value: 3
  value: 30
  label {
    key: 8
    num: 5
  }
  label {
    key: 9
    num: 6
  }
  label {
    key: 10
    str: 11
  }
}
sample {
  location_id: 2
  value: 1
  value: 10
  label {
    key: 8
    num: 5
  }
  label {
    key: 9
    num: 6
  }
  label {
    key: 12
    str: 13
  }
}
location {
  id: 1
  line {
    function_id: 1
    line: 4
  }
}
location {
  id: 2
  line {
    function_id: 2
    line: 9
  }
}
function {
  id: 1
  name: 5
  filename: 6
  start_line: 3
}
function {
  id: 2
  name: 7
  filename: 6
  start_line: 1
}
string_table: ""
string_table: "samples"
string_table: "count"
string_table: "wall"
string_table: "nanoseconds"
string_table: "f"
string_table: "m.py"
string_table: "<module>"
string_table: "pid"
string_table: "thread_id"
string_table: "thread_name"
string_table: "MainThread"
string_table: "task_name"
string_table: "T"
time_nanos: 1000
duration_nanos: 2000
period_type {
  type: 3
  unit: 4
}
period: 10000000
)");
}

}  // namespace
}  // namespace pyprofd
