#include "exporters/flamegraph.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <map>
#include <string_view>
#include <vector>

#include "exporters/render.h"

namespace pyprofd {
namespace {

// Geometry, in SVG pixels. The script below uses the same numbers.
constexpr double kPad = 10;            // left and right margin
constexpr double kWidth = 1180;        // width of the "all" box
constexpr double kRow = 16;            // one stack level; boxes are 1 px shorter
constexpr double kTop = 48;            // title lines above the boxes
constexpr double kBottom = 28;         // details line below them
constexpr double kCharWidth = 7.2;     // 12 px monospace; wide (CJK) characters count twice

// The frame boxes, one per distinct stack prefix; node 0 is "all".
struct Node {
  std::string label;  // "name (file:line)" or "name"
  std::string name;   // for the colour
  bool synthetic = false;
  uint64_t samples = 0, weight = 0;
  std::map<std::string, size_t> children;  // by label: merges threads, orders siblings
};

std::string fmt(const char* f, double v) {
  char buf[64];
  snprintf(buf, sizeof buf, f, v);
  return buf;
}

std::string xml_escape(std::string_view s) {
  std::string out;
  for (char32_t cp : display_code_points(s)) {
    switch (cp) {
      case '&': out += "&amp;"; break;
      case '<': out += "&lt;"; break;
      case '>': out += "&gt;"; break;
      case '"': out += "&quot;"; break;
      case '\'': out += "&apos;"; break;
      default: append_utf8(&out, cp);
    }
  }
  return out;
}

// East Asian wide and emoji ranges take two monospace cells.
bool wide(char32_t c) {
  return (c >= 0x1100 && c <= 0x115F) || (c >= 0x2E80 && c <= 0xA4CF) || (c >= 0xAC00 && c <= 0xD7A3) ||
         (c >= 0xF900 && c <= 0xFAFF) || (c >= 0xFE30 && c <= 0xFE4F) || (c >= 0xFF00 && c <= 0xFF60) ||
         (c >= 0xFFE0 && c <= 0xFFE6) || (c >= 0x1F300 && c <= 0x1FAFF) || (c >= 0x20000 && c <= 0x3FFFD);
}

// The part of `label` that fits a box `w` px wide, ".." marking a cut; "" if
// not even three cells fit. Cuts only between code points.
std::string clip(const std::string& label, double w) {
  const std::u32string cps = display_code_points(label);
  const int room = static_cast<int>(std::floor((w - 6) / kCharWidth));
  int cells = 0;
  for (char32_t c : cps) cells += wide(c) ? 2 : 1;
  if (cells <= room) return label;
  if (room < 3) return "";
  std::string out;
  int used = 0;
  for (char32_t c : cps) {
    int cw = wide(c) ? 2 : 1;
    if (used + cw > room - 2) break;
    used += cw;
    append_utf8(&out, c);
  }
  while (!out.empty() && out.back() == ' ') out.pop_back();
  return out + "..";
}

uint32_t fnv1a(const std::string& s) {
  uint32_t h = 2166136261u;
  for (unsigned char c : s) h = (h ^ c) * 16777619u;
  return h;
}

// Warm colours for code, cool ones for synthetic frames, grey for "all".
std::string colour(const Node& n, bool is_all) {
  if (is_all) return "rgb(200,200,200)";
  const uint32_t h = fnv1a(n.name);
  int r, g, b;
  if (n.synthetic) {
    r = 80 + h % 60, g = 150 + (h >> 8) % 80, b = 215 + (h >> 16) % 40;
  } else {
    r = 205 + h % 50, g = 60 + (h >> 8) % 170, b = 20 + (h >> 16) % 50;
  }
  return "rgb(" + std::to_string(r) + "," + std::to_string(g) + "," + std::to_string(b) + ")";
}

const char kScript[] = R"JS(
(function () {
  var PAD = 10, W = 1180, CW = 7.2, EPS = 0.002;
  var details = document.getElementById('details');
  var groups = document.getElementById('frames').getElementsByTagName('g');
  var frames = [];
  function wide(c) {
    return (c >= 0x1100 && c <= 0x115F) || (c >= 0x2E80 && c <= 0xA4CF) || (c >= 0xAC00 && c <= 0xD7A3) ||
      (c >= 0xF900 && c <= 0xFAFF) || (c >= 0xFE30 && c <= 0xFE4F) || (c >= 0xFF00 && c <= 0xFF60) ||
      (c >= 0xFFE0 && c <= 0xFFE6) || (c >= 0x1F300 && c <= 0x1FAFF) || (c >= 0x20000 && c <= 0x3FFFD);
  }
  // Same rule as the SVG writer: whole code points, ".." marks a cut.
  function clip(label, w) {
    var cps = Array.from(label), room = Math.floor((w - 6) / CW), cells = 0, i;
    for (i = 0; i < cps.length; i++) cells += wide(cps[i].codePointAt(0)) ? 2 : 1;
    if (cells <= room) return label;
    if (room < 3) return '';
    var out = '', used = 0;
    for (i = 0; i < cps.length; i++) {
      var cw = wide(cps[i].codePointAt(0)) ? 2 : 1;
      if (used + cw > room - 2) break;
      used += cw;
      out += cps[i];
    }
    return out.replace(/ +$/, '') + '..';
  }
  function place(f, x, w) {
    f.r.setAttribute('x', x.toFixed(3));
    f.r.setAttribute('width', w.toFixed(3));
    f.t.setAttribute('x', (x + 3).toFixed(3));
    f.t.textContent = clip(f.label, w);
  }
  // Boxes inside z's span at or above its level fill the width; those below
  // that cover z are its callers, shown full width and faded; the rest hide.
  function zoom(z) {
    for (var i = 0; i < frames.length; i++) {
      var f = frames[i], show = true, fade = false;
      if (!z) {
        place(f, f.x, f.w);
      } else if (f.y <= z.y && f.x >= z.x - EPS && f.x + f.w <= z.x + z.w + EPS) {
        place(f, PAD + (f.x - z.x) * W / z.w, f.w * W / z.w);
      } else if (f.y > z.y && f.x <= z.x + EPS && f.x + f.w >= z.x + z.w - EPS) {
        place(f, PAD, W);
        fade = true;
      } else {
        show = false;
      }
      f.g.style.display = show ? '' : 'none';
      f.g.style.opacity = fade ? '0.6' : '';
    }
  }
  function hook(f) {
    f.g.onclick = function () { zoom(f === frames[0] ? null : f); };
    f.g.onmouseover = function () { details.textContent = f.info; };
    f.g.onmouseout = function () { details.textContent = ' '; };
  }
  for (var i = 0; i < groups.length; i++) {
    var g = groups[i], r = g.getElementsByTagName('rect')[0];
    var info = g.getElementsByTagName('title')[0].textContent;
    var f = {g: g, r: r, t: g.getElementsByTagName('text')[0], x: +r.getAttribute('x'),
             w: +r.getAttribute('width'), y: +r.getAttribute('y'), info: info,
             label: info.slice(0, info.lastIndexOf(' \u2014 '))};
    frames.push(f);
    hook(f);
  }
  document.getElementById('reset').onclick = function () { zoom(null); };
  document.addEventListener('keydown', function (e) { if (e.key === 'Escape') zoom(null); });
})();
)JS";

}  // namespace

std::string export_flamegraph_svg(const Profile& p, const std::string& title) {
  std::vector<Node> nodes(1);
  nodes[0].label = nodes[0].name = "all";
  std::vector<std::string> labels(p.functions.size());
  for (size_t f = 0; f < p.functions.size(); ++f)
    labels[f] = p.functions[f].file == "~" ? p.functions[f].name
                                           : p.functions[f].name + " (" + p.functions[f].file + ":";
  for (const auto& s : p.stacks) {
    if (!s.usable(p.functions.size())) continue;
    size_t at = 0;
    nodes[0].samples += s.samples;
    nodes[0].weight += s.weight_ns;
    for (const auto& f : s.frames) {
      const FunctionKey& key = p.functions[f.function];
      const bool synthetic = key.file == "~";
      std::string label = synthetic ? labels[f.function] : labels[f.function] + std::to_string(f.line) + ")";
      auto it = nodes[at].children.find(label);
      if (it == nodes[at].children.end()) {
        it = nodes[at].children.emplace(label, nodes.size()).first;
        Node n;
        n.label = label;
        n.name = key.name;
        n.synthetic = synthetic;
        nodes.push_back(std::move(n));
      }
      at = it->second;
      nodes[at].samples += s.samples;
      nodes[at].weight += s.weight_ns;
    }
  }
  if (nodes[0].samples == 0) return "";
  const bool by_time = nodes[0].weight > 0;
  auto amount = [&](const Node& n) { return static_cast<double>(by_time ? n.weight : n.samples); };
  const double total = amount(nodes[0]);

  // Preorder walk: each box's left edge is its parent's plus its elder siblings' widths.
  struct Placed {
    size_t node;
    double x;  // in units of `amount`
    int depth;
  };
  std::vector<Placed> order, todo = {{0, 0, 0}};
  int max_depth = 0;
  while (!todo.empty()) {
    Placed cur = todo.back();
    todo.pop_back();
    order.push_back(cur);
    max_depth = std::max(max_depth, cur.depth);
    std::vector<Placed> kids;
    double x = cur.x;
    for (const auto& [label, child] : nodes[cur.node].children) {
      kids.push_back({child, x, cur.depth + 1});
      x += amount(nodes[child]);
    }
    todo.insert(todo.end(), kids.rbegin(), kids.rend());
  }

  const double height = kTop + (max_depth + 1) * kRow + kBottom;
  const double full = kWidth + 2 * kPad;
  std::string out = "<?xml version=\"1.0\" encoding=\"UTF-8\" standalone=\"no\"?>\n";
  out += "<svg xmlns=\"http://www.w3.org/2000/svg\" version=\"1.1\" width=\"" + fmt("%.0f", full) +
         "\" height=\"" + fmt("%.0f", height) + "\" viewBox=\"0 0 " + fmt("%.0f", full) + " " +
         fmt("%.0f", height) + "\">\n";
  out += "<style type=\"text/css\">text { font-family: monospace; font-size: 12px; fill: #000000; } "
         ".f { cursor: pointer; } .f text { pointer-events: none; } .f:hover rect { stroke: #000000; "
         "stroke-width: 0.5; } #reset { cursor: pointer; fill: #1a4e9c; }</style>\n";
  out += "<rect x=\"0\" y=\"0\" width=\"" + fmt("%.0f", full) + "\" height=\"" + fmt("%.0f", height) +
         "\" fill=\"#f6f6f0\"/>\n";
  out += "<text x=\"" + fmt("%.0f", full / 2) + "\" y=\"20\" text-anchor=\"middle\" style=\"font-size: 16px\">" +
         xml_escape(title.empty() ? "Flame Graph" : title) + "</text>\n";
  std::string summary = std::to_string(nodes[0].samples) + " samples";
  if (by_time)
    summary += ", " + fmt("%.3f", total / 1e9) + " s " + (p.mode == ProfileMode::kWall ? "wall" : "CPU") + " time";
  summary += "; callers below callees; click a frame to zoom, Esc to reset";
  out += "<text x=\"" + fmt("%.0f", full / 2) + "\" y=\"38\" text-anchor=\"middle\">" + xml_escape(summary) +
         "</text>\n";
  out += "<text id=\"reset\" x=\"" + fmt("%.0f", kPad) + "\" y=\"38\">Reset zoom</text>\n";
  out += "<text id=\"details\" x=\"" + fmt("%.0f", kPad) + "\" y=\"" + fmt("%.0f", height - 10) + "\"> </text>\n";
  out += "<g id=\"frames\">\n";
  for (const Placed& pl : order) {
    const Node& n = nodes[pl.node];
    const double x = kPad + kWidth * pl.x / total, w = kWidth * amount(n) / total;
    const double y = kTop + (max_depth - pl.depth) * kRow;
    const std::string info = n.label + " \u2014 " + std::to_string(n.samples) +
                             (n.samples == 1 ? " sample, " : " samples, ") +
                             fmt("%.2f%%", 100 * amount(n) / total);
    out += "<g class=\"f\"><title>" + xml_escape(info) + "</title><rect x=\"" + fmt("%.3f", x) + "\" y=\"" +
           fmt("%.0f", y) + "\" width=\"" + fmt("%.3f", w) + "\" height=\"" + fmt("%.0f", kRow - 1) +
           "\" rx=\"2\" fill=\"" + colour(n, pl.node == 0) + "\"/><text x=\"" + fmt("%.3f", x + 3) + "\" y=\"" +
           fmt("%.1f", y + 11.5) + "\">" + xml_escape(clip(n.label, w)) + "</text></g>\n";
  }
  out += "</g>\n<script type=\"text/ecmascript\"><![CDATA[" + std::string(kScript) + "]]></script>\n</svg>\n";
  return out;
}

}  // namespace pyprofd
