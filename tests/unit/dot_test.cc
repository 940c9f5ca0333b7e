// DOT export checked by graphviz itself: `dot -Tjson` lays the graph out and
// reports the text it draws, which must match numbers derived here by hand
// from the model (not through build_pstats_entries); `dot -Tsvg` must render
// with nothing on stderr. Also render_with_dot and the golden file.
#include "exporters/dot.h"

#include <gtest/gtest.h>
#include <fcntl.h>
#include <spawn.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>

#include "exporters/render.h"

extern char** environ;
namespace fs = std::filesystem;

namespace pyprofd::graph_testing {  // also used by flamegraph_test.cc

struct Frame {
  FunctionKey key;
  int line;
};

void add(Profile* p, const SampleLabels& labels, const std::vector<Frame>& frames, uint64_t samples,
         uint64_t ms_each) {
  std::vector<StackFrame> fs;
  for (const auto& f : frames) fs.push_back(StackFrame{p->intern(f.key), f.line});
  p->add(labels, fs, samples * ms_each * 1000000, samples);
}

// Self and mutual recursion, two threads, a second pid with its own weight per
// sample, an async task frame, non-ASCII and markup-like names, a function at
// 0.37 % (below the default node threshold) and a 0.09 % edge (below the edge one).
Profile make_graph_profile() {
  const FunctionKey mod{"<module>", "/app/main.py", 1}, main_f{"main", "/app/main.py", 10},
      fib{"fib", "/app/lib.py", 5}, even{"even", "/app/lib.py", 20}, odd{"odd", "/app/lib.py", 30},
      uni{"ünïcödé_函数", "/app/ünï.py", 3}, task{"<task worker-1>", "~", 0},
      boot{"_bootstrap", "/usr/lib/python3.11/threading.py", 990},
      run{"run", "/usr/lib/python3.11/threading.py", 970}, worker{"worker", "/app/main.py", 40},
      tiny{"tiny", "/app/lib.py", 50}, weird{"weird\"q\\b&amp;<x>'", "/app/lib.py", 60};
  const SampleLabels main_thread{100, 100, "MainThread", ""}, thread2{100, 101, "worker", ""},
      other_pid{200, 200, "MainThread", ""}, in_task{100, 100, "MainThread", "worker-1"};
  Profile p;
  p.mode = ProfileMode::kCpu;
  p.rate_hz = 100;
  add(&p, main_thread, {{mod, 2}, {main_f, 12}, {fib, 7}, {fib, 7}, {fib, 6}}, 300, 10);
  add(&p, main_thread, {{mod, 2}, {main_f, 12}, {fib, 6}}, 100, 10);
  add(&p, main_thread, {{mod, 2}, {main_f, 12}, {even, 22}, {odd, 32}, {even, 21}}, 150, 10);
  add(&p, main_thread, {{mod, 2}, {main_f, 12}, {even, 22}, {odd, 31}}, 50, 10);
  add(&p, main_thread, {{mod, 2}, {main_f, 13}, {uni, 4}}, 80, 10);
  add(&p, main_thread, {{mod, 2}, {main_f, 13}, {uni, 5}}, 20, 10);
  add(&p, main_thread, {{mod, 2}, {main_f, 14}, {tiny, 51}}, 4, 10);
  add(&p, main_thread, {{mod, 2}, {main_f, 11}}, 16, 10);
  add(&p, main_thread, {{mod, 2}, {main_f, 15}, {weird, 61}}, 30, 10);
  add(&p, main_thread, {{mod, 2}, {main_f, 16}, {worker, 41}}, 1, 10);
  add(&p, thread2, {{boot, 995}, {run, 975}, {worker, 42}, {fib, 6}}, 100, 10);
  add(&p, other_pid, {{boot, 995}, {run, 975}, {worker, 42}, {fib, 6}}, 70, 20);
  add(&p, in_task, {{task, 0}, {worker, 43}}, 100, 10);
  return p;
}

struct ToolResult {
  bool ran = false;  // false: the program is not installed
  int status = -1;
  std::string out, err;
};

std::string read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

void write_file(const std::string& path, const std::string& bytes) {
  std::ofstream(path, std::ios::binary) << bytes;
}

std::string make_temp_dir() {
  char tmpl[] = "/tmp/pyprofd_graph_XXXXXX";
  const char* d = mkdtemp(tmpl);
  return d ? d : "";
}

// Runs argv (no shell) with stdout and stderr captured through files in `dir`.
ToolResult run_tool(const std::vector<std::string>& argv, const std::string& dir) {
  ToolResult r;
  const std::string out = dir + "/tool.out", err = dir + "/tool.err";
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_addopen(&fa, 1, out.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
  posix_spawn_file_actions_addopen(&fa, 2, err.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
  std::vector<char*> args;
  for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);
  pid_t pid;
  int rc = posix_spawnp(&pid, args[0], &fa, nullptr, args.data(), environ);
  posix_spawn_file_actions_destroy(&fa);
  if (rc != 0) return r;
  int status = 0;
  waitpid(pid, &status, 0);
  r.ran = !(WIFEXITED(status) && WEXITSTATUS(status) == 127);
  r.status = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  r.out = read_file(out);
  r.err = read_file(err);
  return r;
}

// Compares with tests/unit/golden/<name>; PYPROFD_UPDATE_GOLDEN=1 rewrites it instead.
void expect_golden(const std::string& name, const std::string& actual) {
  const std::string path = std::string(PYPROFD_SOURCE_DIR) + "/tests/unit/golden/" + name;
  const char* update = getenv("PYPROFD_UPDATE_GOLDEN");
  if (update && std::string(update) == "1") {
    write_file(path, actual);
    return;
  }
  ASSERT_TRUE(fs::exists(path)) << path << " is missing; create it with PYPROFD_UPDATE_GOLDEN=1";
  if (read_file(path) != actual) {
    const std::string got = std::string(PYPROFD_BINARY_DIR) + "/" + name + ".actual";
    write_file(got, actual);
    ADD_FAILURE() << "output differs from " << path << " (written to " << got
                  << "); if the change is intended, rerun with PYPROFD_UPDATE_GOLDEN=1";
  }
}

}  // namespace pyprofd::graph_testing

namespace pyprofd {
namespace {

using graph_testing::make_graph_profile;
using graph_testing::run_tool;

struct TempDir {
  std::string path = graph_testing::make_temp_dir();
  ~TempDir() {
    std::error_code ec;
    if (!path.empty()) fs::remove_all(path, ec);
  }
};

// What graphviz draws: each node's label lines by name, each edge's by (tail, head) names.
struct DrawnGraph {
  std::map<std::string, std::vector<std::string>> nodes;
  std::map<std::pair<std::string, std::string>, std::vector<std::string>> edges;
  size_t node_objects = 0;
};

std::vector<std::string> drawn_text(const nlohmann::json& obj) {
  std::vector<std::string> lines;
  if (!obj.contains("_ldraw_")) return lines;
  for (const auto& op : obj["_ldraw_"])
    if (op.value("op", "") == "T") lines.push_back(op["text"].get<std::string>());
  return lines;
}

// Lays `dot_text` out with `dot -Tjson`; fails the test on warnings or errors.
DrawnGraph layout(const std::string& dot_text) {
  DrawnGraph g;
  TempDir dir;
  graph_testing::write_file(dir.path + "/g.dot", dot_text);
  auto r = run_tool({"dot", "-Tjson", dir.path + "/g.dot"}, dir.path);
  if (!r.ran) {
    ADD_FAILURE() << "graphviz's dot is not installed (tools/install-deps.sh installs it)";
    return g;
  }
  EXPECT_EQ(r.status, 0) << r.err;
  EXPECT_EQ(r.err, "") << "dot -Tjson warned";
  auto j = nlohmann::json::parse(r.out);
  std::map<int, std::string> by_id;
  for (const auto& o : j["objects"]) {
    auto lines = drawn_text(o);
    if (lines.empty()) continue;
    ++g.node_objects;
    by_id[o["_gvid"].get<int>()] = lines[0];
    g.nodes[lines[0]] = lines;
  }
  if (j.contains("edges"))
    for (const auto& e : j["edges"])
      g.edges[{by_id[e["tail"].get<int>()], by_id[e["head"].get<int>()]}] = drawn_text(e);
  return g;
}

// The number after `prefix` in the first line that starts with it; NAN if none.
double number_after(const std::vector<std::string>& lines, const std::string& prefix) {
  for (const auto& l : lines)
    if (l.rfind(prefix, 0) == 0) return std::strtod(l.c_str() + prefix.size(), nullptr);
  return NAN;
}

// Hand-derived expectations: time of stacks containing a function / an adjacent pair.
struct Expected {
  std::map<std::string, double> total_ns, self_ns;
  std::map<std::pair<std::string, std::string>, double> edge_ns;
  std::map<std::pair<std::string, std::string>, uint64_t> edge_samples;
  double all_ns = 0;
};

Expected expected_numbers(const Profile& p) {
  Expected x;
  for (const auto& s : p.stacks) {
    std::set<std::string> seen;
    std::set<std::pair<std::string, std::string>> pairs;
    for (size_t i = 0; i < s.frames.size(); ++i) {
      const std::string& name = p.functions[s.frames[i].function].name;
      if (seen.insert(name).second) x.total_ns[name] += s.weight_ns;
      if (i > 0) pairs.insert({p.functions[s.frames[i - 1].function].name, name});
    }
    for (const auto& pr : pairs) {
      x.edge_ns[pr] += s.weight_ns;
      x.edge_samples[pr] += s.samples;
    }
    x.self_ns[p.functions[s.frames.back().function].name] += s.weight_ns;
    x.all_ns += s.weight_ns;
  }
  return x;
}

TEST(DotExport, MatchesGoldenFile) {
  graph_testing::expect_golden("dot_call_graph.dot", export_dot(make_graph_profile(), DotOptions{}));
}

TEST(DotExport, GraphvizDrawsTheHandDerivedNumbers) {
  const Profile p = make_graph_profile();
  const Expected x = expected_numbers(p);
  const DrawnGraph g = layout(export_dot(p, DotOptions{0, 0}));
  ASSERT_EQ(g.nodes.size(), x.total_ns.size());
  EXPECT_EQ(g.node_objects, x.total_ns.size()) << "an edge names a node that was not written";
  double self_sum = 0, root_sum = 0;
  for (const auto& [name, total_ns] : x.total_ns) {
    SCOPED_TRACE(name);
    ASSERT_TRUE(g.nodes.count(name)) << "name not drawn as written";
    const auto& lines = g.nodes.at(name);
    const double total = number_after(lines, "total "), self = number_after(lines, "self ");
    EXPECT_NEAR(total, 100 * total_ns / x.all_ns, 0.005 + 1e-9);
    const double self_expected = x.self_ns.count(name) ? x.self_ns.at(name) : 0.0;
    EXPECT_NEAR(self, 100 * self_expected / x.all_ns, 0.005 + 1e-9);
    EXPECT_LE(self, total);
    // Seconds follow the percentage: "total 12.34% (1.230 s)".
    const std::string& total_line = lines[lines.size() - 2];
    EXPECT_NEAR(std::strtod(total_line.c_str() + total_line.find('(') + 1, nullptr), total_ns / 1e9, 0.0005 + 1e-9);
    self_sum += self;
    bool has_caller = false;
    for (const auto& [edge, ns] : x.edge_ns) has_caller = has_caller || edge.second == name;
    if (!has_caller) root_sum += total;
  }
  EXPECT_NEAR(self_sum, 100, 0.005 * x.total_ns.size());
  EXPECT_NEAR(root_sum, 100, 0.015);  // <module>, _bootstrap, <task worker-1>
  EXPECT_EQ(g.nodes.at("<task worker-1>").size(), 3u) << "synthetic '~' frames have no file line";
  EXPECT_EQ(g.nodes.at("fib")[1], "/app/lib.py:5");

  ASSERT_EQ(g.edges.size(), x.edge_ns.size());
  for (const auto& [edge, ns] : x.edge_ns) {
    SCOPED_TRACE(edge.first + " -> " + edge.second);
    ASSERT_TRUE(g.edges.count(edge));
    const auto& lines = g.edges.at(edge);
    ASSERT_EQ(lines.size(), 2u);
    EXPECT_NEAR(std::strtod(lines[0].c_str(), nullptr), 100 * ns / x.all_ns, 0.005 + 1e-9);
    const uint64_t n = x.edge_samples.at(edge);
    EXPECT_EQ(lines[1], std::to_string(n) + (n == 1 ? " sample" : " samples"));
  }
  EXPECT_TRUE(g.edges.count({"fib", "fib"})) << "self recursion";
  EXPECT_TRUE(g.edges.count({"odd", "even"})) << "mutual recursion";
}

TEST(DotExport, SingleRootIsAHundredPercent) {
  Profile p;
  const FunctionKey mod{"<module>", "/a.py", 1}, f{"f", "/a.py", 3}, g{"g", "/a.py", 7};
  graph_testing::add(&p, {1, 1, "MainThread", ""}, {{mod, 9}, {f, 4}, {g, 8}}, 7, 10);
  graph_testing::add(&p, {1, 1, "MainThread", ""}, {{mod, 9}, {g, 8}}, 3, 10);
  graph_testing::add(&p, {2, 2, "MainThread", ""}, {{mod, 9}}, 2, 10);
  const DrawnGraph d = layout(export_dot(p, DotOptions{}));
  ASSERT_TRUE(d.nodes.count("<module>"));
  EXPECT_EQ(number_after(d.nodes.at("<module>"), "total "), 100.0);
  EXPECT_NEAR(number_after(d.nodes.at("g"), "self "), 83.33, 1e-9);
  EXPECT_NEAR(number_after(d.nodes.at("<module>"), "self "), 16.67, 1e-9);
}

TEST(DotExport, PrunesBelowThresholds) {
  const Profile p = make_graph_profile();
  const Expected x = expected_numbers(p);
  ASSERT_LT(x.total_ns.at("tiny") / x.all_ns, 0.005);
  ASSERT_GT(x.total_ns.at("tiny") / x.all_ns, 0.001);
  ASSERT_LT(x.edge_ns.at({"main", "worker"}) / x.all_ns, 0.001);

  const DrawnGraph defaults = layout(export_dot(p, DotOptions{}));
  EXPECT_FALSE(defaults.nodes.count("tiny"));
  EXPECT_FALSE(defaults.edges.count({"main", "tiny"})) << "edge to a pruned node";
  EXPECT_FALSE(defaults.edges.count({"main", "worker"}));
  EXPECT_TRUE(defaults.nodes.count("worker"));
  EXPECT_EQ(defaults.node_objects, defaults.nodes.size()) << "an edge names a pruned node";
  double self_sum = 0;
  for (const auto& [name, lines] : defaults.nodes) {
    EXPECT_GE(number_after(lines, "total "), 0.5) << name;
    self_sum += number_after(lines, "self ");
  }
  EXPECT_LE(self_sum, 100.0);
  EXPECT_LT(self_sum, 99.7) << "tiny's self time must be missing";
  for (const auto& [edge, lines] : defaults.edges) EXPECT_GE(std::strtod(lines[0].c_str(), nullptr), 0.1);

  const DrawnGraph low_node = layout(export_dot(p, DotOptions{0.001, 0.001}));
  EXPECT_TRUE(low_node.nodes.count("tiny"));
  EXPECT_TRUE(low_node.edges.count({"main", "tiny"}));
  EXPECT_FALSE(low_node.edges.count({"main", "worker"}));
  EXPECT_TRUE(layout(export_dot(p, DotOptions{0.001, 0.0001})).edges.count({"main", "worker"}));
}

TEST(DotExport, SvgRendersWithoutWarningsAndKeepsNamesReadable) {
  TempDir dir;
  graph_testing::write_file(dir.path + "/g.dot", export_dot(make_graph_profile(), DotOptions{}));
  auto r = run_tool({"dot", "-Tsvg", "-o", dir.path + "/g.svg", dir.path + "/g.dot"}, dir.path);
  ASSERT_TRUE(r.ran) << "graphviz's dot is not installed (tools/install-deps.sh installs it)";
  EXPECT_EQ(r.status, 0);
  EXPECT_EQ(r.err, "");
  // Python's XML parser reads every <text> graphviz drew.
  const std::string script =
      "import sys, xml.etree.ElementTree as ET\n"
      "t = ET.parse(sys.argv[1])\n"
      "for e in t.iter('{http://www.w3.org/2000/svg}text'): sys.stdout.buffer.write((e.text or '').encode() + b'\\n')\n";
  auto py = run_tool({"/usr/bin/python3", "-c", script, dir.path + "/g.svg"}, dir.path);
  ASSERT_TRUE(py.ran) << "/usr/bin/python3 is not installed (tools/install-deps.sh installs it)";
  ASSERT_EQ(py.status, 0) << py.err;
  std::set<std::string> texts;
  std::istringstream in(py.out);
  for (std::string line; std::getline(in, line);) texts.insert(line);
  for (const char* want : {"ünïcödé_函数", "/app/ünï.py:3", "weird\"q\\b&amp;<x>'", "<task worker-1>", "<module>"})
    EXPECT_TRUE(texts.count(want)) << want;
}

TEST(DotExport, EmptyProfileGivesNothing) {
  Profile p;
  EXPECT_EQ(export_dot(p, DotOptions{}), "");
}

TEST(DotExport, InvalidUtf8BecomesReplacementCharacter) {
  Profile p;
  graph_testing::add(&p, {1, 1, "", ""}, {{{"bad\xff\xc3(name\x01", "/x.py", 1}, 2}}, 1, 10);
  const DrawnGraph g = layout(export_dot(p, DotOptions{}));
  EXPECT_TRUE(g.nodes.count("bad\xEF\xBF\xBD\xEF\xBF\xBD(name\xEF\xBF\xBD"));
}

TEST(RenderWithDot, PngHasTheMagic) {
  std::string png, error;
  ASSERT_TRUE(render_with_dot(export_dot(make_graph_profile(), DotOptions{}), "png", &png, &error))
      << error << " (tools/install-deps.sh installs graphviz)";
  ASSERT_GT(png.size(), 8u);
  EXPECT_EQ(png.substr(0, 8), std::string("\x89PNG\r\n\x1a\n", 8));
  std::string svg;
  ASSERT_TRUE(render_with_dot("digraph { a -> b }", "svg", &svg, &error)) << error;
  EXPECT_NE(svg.find("<svg"), std::string::npos);
}

TEST(RenderWithDot, ReportsFailures) {
  std::string out, error;
  EXPECT_FALSE(render_with_dot("digraph { a -> ", "svg", &out, &error));
  EXPECT_NE(error.find("dot -Tsvg failed (exit 1)"), std::string::npos) << error;
  EXPECT_FALSE(render_with_dot("digraph { a }", "png; rm -rf /", &out, &error));
  EXPECT_NE(error.find("bad graphviz output format"), std::string::npos) << error;
}

TEST(RenderWithDot, SaysHowToInstallDot) {
  TempDir empty;
  const char* old = getenv("PATH");
  const std::string saved = old ? old : "";
  setenv("PATH", empty.path.c_str(), 1);
  std::string out, error;
  const bool ok = render_with_dot("digraph { a }", "png", &out, &error);
  setenv("PATH", saved.c_str(), 1);
  EXPECT_FALSE(ok);
  EXPECT_EQ(error, "graphviz's dot is not installed: apt-get install graphviz");
}

}  // namespace
}  // namespace pyprofd
