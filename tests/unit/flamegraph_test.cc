// Flame graph SVG checked by real readers: Python's XML parser reads every box
// (title, geometry, text), which must form exactly the tree of distinct stack
// prefixes derived here by hand, with widths proportional to time; and
// rsvg-convert must render it to PNG without complaint.
#include "exporters/flamegraph.h"

#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <map>
#include <nlohmann/json.hpp>

namespace fs = std::filesystem;

namespace pyprofd::graph_testing {  // defined in dot_test.cc
struct Frame {
  FunctionKey key;
  int line;
};
struct ToolResult {
  bool ran = false;
  int status = -1;
  std::string out, err;
};
void add(Profile* p, const SampleLabels& labels, const std::vector<Frame>& frames, uint64_t samples,
         uint64_t ms_each);
Profile make_graph_profile();
std::string make_temp_dir();
std::string read_file(const std::string& path);
void write_file(const std::string& path, const std::string& bytes);
ToolResult run_tool(const std::vector<std::string>& argv, const std::string& dir);
void expect_golden(const std::string& name, const std::string& actual);
}  // namespace pyprofd::graph_testing

namespace pyprofd {
namespace {

using graph_testing::run_tool;

struct Dir {
  std::string path = graph_testing::make_temp_dir();
  ~Dir() {
    std::error_code ec;
    if (!path.empty()) fs::remove_all(path, ec);
  }
};

struct Box {
  std::string title, text;
  double x, y, width;
  int depth = 0;
  int parent = -1;
};

// Every <g class="f"> box as Python's ElementTree reads it, in document order.
std::vector<Box> parse_boxes(const std::string& svg) {
  Dir dir;
  graph_testing::write_file(dir.path + "/f.svg", svg);
  const std::string script =
      "import sys, json, xml.etree.ElementTree as ET\n"
      "S = '{http://www.w3.org/2000/svg}'\n"
      "root = ET.parse(sys.argv[1]).getroot()\n"
      "assert root.tag == S + 'svg', root.tag\n"
      "assert root.find(S + 'script') is not None, 'no script'\n"
      "out = []\n"
      "for g in root.iter(S + 'g'):\n"
      "    if g.get('class') != 'f': continue\n"
      "    r = g.find(S + 'rect')\n"
      "    out.append({'title': g.find(S + 'title').text, 'text': g.find(S + 'text').text or '',\n"
      "                'x': float(r.get('x')), 'y': float(r.get('y')), 'width': float(r.get('width'))})\n"
      "print(json.dumps(out))\n";
  auto r = run_tool({"/usr/bin/python3", "-c", script, dir.path + "/f.svg"}, dir.path);
  std::vector<Box> boxes;
  if (!r.ran) {
    ADD_FAILURE() << "/usr/bin/python3 is not installed (tools/install-deps.sh installs it)";
    return boxes;
  }
  EXPECT_EQ(r.status, 0) << "not valid XML / SVG: " << r.err;
  if (r.status != 0) return boxes;
  for (const auto& b : nlohmann::json::parse(r.out))
    boxes.push_back(Box{b["title"], b["text"], b["x"], b["y"], b["width"]});
  return boxes;
}

// Label -> time and samples of every distinct non-empty stack prefix, by hand.
struct Totals {
  uint64_t samples = 0;
  double weight = 0;
};
std::map<std::vector<std::string>, Totals> expected_prefixes(const Profile& p, bool by_time) {
  std::map<std::vector<std::string>, Totals> out;
  for (const auto& s : p.stacks) {
    std::vector<std::string> prefix;
    for (const auto& f : s.frames) {
      const FunctionKey& k = p.functions[f.function];
      prefix.push_back(k.file == "~" ? k.name : k.name + " (" + k.file + ":" + std::to_string(f.line) + ")");
      out[prefix].samples += s.samples;
      out[prefix].weight += by_time ? s.weight_ns : s.samples;
    }
  }
  return out;
}

// Monospace cells of a UTF-8 string; the test data's only wide characters are CJK.
int cells(const std::string& s) {
  int n = 0;
  for (size_t i = 0; i < s.size(); ++i) {
    unsigned char c = s[i];
    if ((c & 0xC0) == 0x80) continue;
    n += c >= 0xE3 ? 2 : 1;
  }
  return n;
}

// Rebuilds the box tree (root at the bottom, preorder) and checks it against the model.
void check_boxes(const Profile& p, const std::vector<Box>& input, bool by_time) {
  std::vector<Box> boxes = input;
  const auto want = expected_prefixes(p, by_time);
  ASSERT_EQ(boxes.size(), want.size() + 1) << "one box per distinct stack prefix, plus 'all'";
  const Box& all = boxes[0];
  uint64_t total_samples = 0;
  double total = 0;
  for (const auto& s : p.stacks) {
    total_samples += s.samples;
    total += by_time ? s.weight_ns : s.samples;
  }
  EXPECT_EQ(all.title, "all \u2014 " + std::to_string(total_samples) + " samples, 100.00%");
  // Depth from the row: root lowest (largest y), rows 16 px apart.
  for (auto& b : boxes) b.depth = static_cast<int>(std::lround((all.y - b.y) / 16));
  std::vector<int> last_at_depth;
  std::map<std::vector<std::string>, int> seen;
  std::vector<std::vector<std::string>> path(boxes.size());
  std::vector<double> next_x(boxes.size());
  for (size_t i = 0; i < boxes.size(); ++i) {
    Box& b = boxes[i];
    SCOPED_TRACE(b.title);
    ASSERT_GE(b.depth, i == 0 ? 0 : 1);
    ASSERT_LE(b.depth, static_cast<int>(last_at_depth.size()));
    last_at_depth.resize(b.depth);
    last_at_depth.push_back(static_cast<int>(i));
    next_x[i] = b.x;
    if (i == 0) continue;
    const int parent = last_at_depth[b.depth - 1];
    path[i] = path[parent];
    const std::string label = b.title.substr(0, b.title.rfind(" \u2014 "));
    path[i].push_back(label);
    ASSERT_EQ(seen.count(path[i]), 0u) << "duplicate prefix";
    seen[path[i]] = static_cast<int>(i);
    ASSERT_EQ(want.count(path[i]), 1u) << "box for a stack prefix that does not exist";
    const Totals& t = want.at(path[i]);
    // Siblings sit side by side from the parent's left edge; width is the share of time.
    EXPECT_NEAR(b.x, next_x[parent], 0.0021);
    next_x[parent] = b.x + b.width;
    EXPECT_NEAR(b.width, all.width * t.weight / total, 0.0011);
    EXPECT_LE(b.x + b.width, boxes[parent].x + boxes[parent].width + 0.0021);
    char pct[32];
    snprintf(pct, sizeof pct, "%.2f%%", 100 * t.weight / total);
    EXPECT_EQ(b.title, label + " \u2014 " + std::to_string(t.samples) + (t.samples == 1 ? " sample, " : " samples, ") + pct);
    // The drawn name is the label, or its start marked "..", and fits the box.
    if (b.text != label && !b.text.empty()) {
      ASSERT_GE(b.text.size(), 3u);
      EXPECT_EQ(b.text.substr(b.text.size() - 2), "..");
      EXPECT_EQ(label.compare(0, b.text.size() - 2, b.text, 0, b.text.size() - 2), 0) << b.text;
    }
    if (!b.text.empty()) {
      EXPECT_LE(cells(b.text) * 7.2, b.width - 6 + 1e-9) << b.text;
    }
  }
  EXPECT_EQ(seen.size(), want.size());
}

TEST(FlamegraphSvg, MatchesGoldenFile) {
  graph_testing::expect_golden("flamegraph_basic.svg",
                               export_flamegraph_svg(graph_testing::make_graph_profile(), "pyprofd <test> & \"co\""));
}

TEST(FlamegraphSvg, OneBoxPerStackPrefixWithProportionalWidths) {
  const Profile p = graph_testing::make_graph_profile();
  const std::vector<Box> boxes = parse_boxes(export_flamegraph_svg(p, "t"));
  check_boxes(p, boxes, true);
  // Threads and pids merge: pid 200's and thread 101's identical stacks share boxes.
  bool found = false;
  for (const auto& b : boxes)
    found = found || b.title.rfind("_bootstrap (/usr/lib/python3.11/threading.py:995) \u2014 170 samples", 0) == 0;
  EXPECT_TRUE(found);
  found = false;
  for (const auto& b : boxes) found = found || b.title.rfind("weird\"q\\b&amp;<x>' (/app/lib.py:61) \u2014 ", 0) == 0;
  EXPECT_TRUE(found) << "markup in names must survive escaping";
}

TEST(FlamegraphSvg, CountsSamplesWhenThereIsNoWeight) {
  Profile p;
  const FunctionKey a{"a", "/a.py", 1}, b{"b", "/a.py", 5}, t{"<task t>", "~", 0};
  graph_testing::add(&p, {1, 1, "", ""}, {{a, 2}, {b, 6}}, 3, 0);
  graph_testing::add(&p, {1, 1, "", ""}, {{a, 2}, {b, 7}}, 1, 0);
  graph_testing::add(&p, {1, 2, "", "t"}, {{t, 0}, {b, 7}}, 4, 0);
  check_boxes(p, parse_boxes(export_flamegraph_svg(p, "")), false);
}

TEST(FlamegraphSvg, NarrowBoxesClipNamesOnCharacterBoundaries) {
  Profile p;
  const FunctionKey wide{"函数函数函数函数函数函数函数函数函数函数函数函数函数函数函数函数函数函数函数函数", "/ü.py", 1},
      other{"x", "/a.py", 1};
  graph_testing::add(&p, {1, 1, "", ""}, {{wide, 2}}, 20, 10);
  graph_testing::add(&p, {1, 1, "", ""}, {{other, 2}}, 80, 10);
  const auto boxes = parse_boxes(export_flamegraph_svg(p, "clip"));
  check_boxes(p, boxes, true);
  ASSERT_EQ(boxes.size(), 3u);
  EXPECT_EQ(boxes[2].text.substr(boxes[2].text.size() - 2), "..") << boxes[2].text;
}

TEST(FlamegraphSvg, RsvgConvertRendersIt) {
  Dir dir;
  graph_testing::write_file(dir.path + "/f.svg", export_flamegraph_svg(graph_testing::make_graph_profile(), "render"));
  auto r = run_tool({"rsvg-convert", "-f", "png", "-o", dir.path + "/f.png", dir.path + "/f.svg"}, dir.path);
  ASSERT_TRUE(r.ran) << "rsvg-convert is not installed (tools/install-deps.sh installs librsvg2-bin)";
  EXPECT_EQ(r.status, 0);
  EXPECT_EQ(r.err, "");
  const std::string png = graph_testing::read_file(dir.path + "/f.png");
  ASSERT_GT(png.size(), 8u);
  EXPECT_EQ(png.substr(0, 8), std::string("\x89PNG\r\n\x1a\n", 8));
}

TEST(FlamegraphSvg, EmptyProfileGivesNothing) {
  Profile p;
  EXPECT_EQ(export_flamegraph_svg(p, "x"), "");
}

}  // namespace
}  // namespace pyprofd
