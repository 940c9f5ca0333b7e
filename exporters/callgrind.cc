#include "exporters/callgrind.h"

#include <algorithm>
#include <map>
#include <set>
#include <sstream>
#include <string_view>
#include <utility>
#include <vector>

#include "exporters/marshal_writer.h"

namespace pyprofd {
namespace {

// The format is line based; an empty name would read as a bare "(id)" reference.
std::string one_line(std::string_view s) {
  std::string out = sanitize_utf8(s);
  for (char& c : out)
    if (static_cast<unsigned char>(c) < 0x20 || c == 0x7f) c = ' ';
  return out.empty() ? "???" : out;
}

struct Cost {
  uint64_t samples = 0, ns = 0;
  void add(const StackRecord& s) {
    samples += s.samples;
    ns += s.weight_ns;
  }
};

struct Node {
  std::string file, name;
  int first_line = 0;
  std::map<int, Cost> self;                      // leaf line -> cost
  std::map<std::pair<size_t, int>, Cost> calls;  // (callee node, call-site line) -> inclusive cost
};

std::string cost_line(int line, const Cost& c) {
  return std::to_string(std::max(line, 0)) + " " + std::to_string(c.samples) + " " + std::to_string(c.ns) + "\n";
}

// Names each function node and maps every function index used to its node.
std::vector<Node> build_nodes(const Profile& p, std::vector<size_t>* node_of) {
  const size_t n = p.functions.size();
  std::vector<bool> used(n, false);
  for (const auto& s : p.stacks)
    if (s.usable(n))
      for (const auto& f : s.frames) used[f.function] = true;

  struct Named { std::string file, name; int first_line; };
  std::vector<Named> named(n);
  std::map<std::pair<std::string, std::string>, std::set<int>> first_lines;
  for (size_t i = 0; i < n; ++i) {
    if (!used[i]) continue;
    const FunctionKey& k = p.functions[i];
    named[i] = Named{one_line(k.file), one_line(k.name), k.file == "~" ? 0 : std::max(k.first_line, 0)};
    first_lines[{named[i].file, named[i].name}].insert(named[i].first_line);
  }
  std::map<std::pair<std::string, std::string>, size_t> index;  // (file, fn text), sorted
  for (size_t i = 0; i < n; ++i) {
    if (!used[i]) continue;
    Named& m = named[i];
    if (first_lines[{m.file, m.name}].size() > 1) m.name += ":" + std::to_string(m.first_line);
    index.emplace(std::make_pair(m.file, m.name), 0);
  }
  std::vector<Node> nodes;
  for (auto& [key, id] : index) {
    id = nodes.size();
    nodes.push_back(Node{key.first, key.second, 0, {}, {}});
  }
  node_of->assign(n, 0);
  for (size_t i = 0; i < n; ++i) {
    if (!used[i]) continue;
    (*node_of)[i] = index[{named[i].file, named[i].name}];
    nodes[(*node_of)[i]].first_line = named[i].first_line;
  }
  return nodes;
}

}  // namespace

std::string export_callgrind(const Profile& p) {
  std::vector<size_t> node_of;
  std::vector<Node> nodes = build_nodes(p, &node_of);
  if (nodes.empty()) return "";

  Cost total;
  std::map<std::pair<size_t, size_t>, int> pairs;  // (caller, callee) -> outermost call site
  for (const auto& s : p.stacks) {
    if (!s.usable(p.functions.size())) continue;
    total.add(s);
    nodes[node_of[s.frames.back().function]].self[s.frames.back().line].add(s);
    pairs.clear();
    for (size_t i = 1; i < s.frames.size(); ++i)
      pairs.emplace(std::make_pair(node_of[s.frames[i - 1].function], node_of[s.frames[i].function]),
                    s.frames[i - 1].line);  // emplace keeps the outermost
    for (const auto& [edge, line] : pairs) nodes[edge.first].calls[{edge.second, line}].add(s);
  }

  const std::string ns_event = p.mode == ProfileMode::kCpu ? "CpuNs" : "WallNs";
  std::ostringstream rate;
  rate << p.rate_hz;
  std::string out = "# callgrind format\nversion: 1\ncreator: pyprofd\n";
  out += std::string("desc: Mode: ") + (p.mode == ProfileMode::kCpu ? "cpu" : "wall") + "\n";
  out += "desc: Rate: " + rate.str() + " Hz\n";
  out += "positions: line\n";
  out += "event: " + ns_event + " : " + (p.mode == ProfileMode::kCpu ? "CPU" : "Wall") + " time (ns)\n";
  out += "events: Samples " + ns_event + "\n";
  out += "summary: " + std::to_string(total.samples) + " " + std::to_string(total.ns) + "\n";

  // Name compression: "(id) name" the first time, "(id)" after.
  std::map<std::string, size_t> file_ids;
  auto file_ref = [&file_ids](const std::string& file) {
    auto [it, fresh] = file_ids.emplace(file, file_ids.size() + 1);
    return "(" + std::to_string(it->second) + ")" + (fresh ? " " + file : "");
  };
  std::vector<bool> fn_named(nodes.size(), false);
  auto fn_ref = [&](size_t node) {
    std::string ref = "(" + std::to_string(node + 1) + ")";
    if (!fn_named[node]) ref += " " + nodes[node].name;
    fn_named[node] = true;
    return ref;
  };

  for (size_t i = 0; i < nodes.size(); ++i) {
    const Node& node = nodes[i];
    out += "\nfl=" + file_ref(node.file) + "\nfn=" + fn_ref(i) + "\n";
    for (const auto& [line, cost] : node.self) out += cost_line(line, cost);
    for (const auto& [callee_line, cost] : node.calls) {
      const size_t callee = callee_line.first;
      out += "cfl=" + file_ref(nodes[callee].file) + "\ncfn=" + fn_ref(callee) + "\n";
      out += "calls=" + std::to_string(cost.samples) + " " + std::to_string(nodes[callee].first_line) + "\n";
      out += cost_line(callee_line.second, cost);
    }
  }
  out += "\ntotals: " + std::to_string(total.samples) + " " + std::to_string(total.ns) + "\n";
  return out;
}

}  // namespace pyprofd
