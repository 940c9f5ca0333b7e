#include "exporters/dot.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <string_view>
#include <vector>

#include "exporters/pstats.h"
#include "exporters/render.h"

namespace pyprofd {
namespace {

// Text for inside a quoted DOT string. Graphviz decodes HTML entities in
// labels, so '&' is written as "&amp;" to show literally; a doubled backslash
// keeps "\n"-like sequences in names from becoming layout escapes.
std::string dot_escape(std::string_view s) {
  std::string out;
  for (char32_t cp : display_code_points(s)) {
    if (cp == '\\') {
      out += "\\\\";
    } else if (cp == '"') {
      out += "\\\"";
    } else if (cp == '&') {
      out += "&amp;";
    } else {
      append_utf8(&out, cp);
    }
  }
  return out;
}

std::string format(const char* fmt, double v) {
  char buf[64];
  snprintf(buf, sizeof buf, fmt, v);
  return buf;
}

std::string samples_text(uint64_t n) { return std::to_string(n) + (n == 1 ? " sample" : " samples"); }

struct Rgb {
  double r, g, b;
};

Rgb hsl(double h, double s, double l) {
  // h in degrees; the usual piecewise-linear HSL to RGB.
  auto channel = [&](double n) {
    double k = std::fmod(n + h / 30.0, 12.0);
    double a = s * std::min(l, 1 - l);
    return l - a * std::max(-1.0, std::min({k - 3, 9 - k, 1.0}));
  };
  return {channel(0), channel(8), channel(4)};
}

std::string hex(const Rgb& c) {
  auto byte = [](double v) { return static_cast<int>(std::lround(std::clamp(v, 0.0, 1.0) * 255)); };
  char buf[8];
  snprintf(buf, sizeof buf, "#%02x%02x%02x", byte(c.r), byte(c.g), byte(c.b));
  return buf;
}

// Blue (cold) through green to red (hot). The square root spreads the small
// percentages most nodes have over more of the ramp.
double ramp_hue(double fraction) { return 240.0 * (1.0 - std::sqrt(std::clamp(fraction, 0.0, 1.0))); }

// White text on dark fills, black on light ones (yellow, light green).
std::string text_colour(const Rgb& c) {
  double luma = 0.299 * c.r + 0.587 * c.g + 0.114 * c.b;
  return luma > 0.55 ? "#000000" : "#ffffff";
}

}  // namespace

std::string export_dot(const Profile& p, const DotOptions& options) {
  const std::vector<PstatsEntry> entries = build_pstats_entries(p);
  uint64_t total_ns = 0, total_samples = 0;
  for (const auto& e : entries) {
    total_ns += e.tt_ns;  // every sample has exactly one leaf
    total_samples += e.cc;
  }
  if (total_samples == 0) return "";
  const bool by_time = total_ns > 0;
  auto fraction = [&](uint64_t ns, uint64_t samples) {
    return by_time ? static_cast<double>(ns) / static_cast<double>(total_ns)
                   : static_cast<double>(samples) / static_cast<double>(total_samples);
  };
  auto percent = [](double f) { return format("%.2f%%", f * 100); };
  auto seconds = [](uint64_t ns) { return format("%.3f s", pstats_seconds(ns)); };

  std::string out = "digraph pyprofd {\n";
  std::string what = p.mode == ProfileMode::kWall ? "wall time" : "CPU time";
  std::string title = "pyprofd: " + (by_time ? what + ", " + seconds(total_ns) + " in " : std::string()) +
                      samples_text(total_samples) + "\\nhidden: functions below " +
                      format("%g%%", options.min_node * 100) + ", calls below " +
                      format("%g%%", options.min_edge * 100);
  out += "  graph [label=\"" + title + "\", labelloc=t, fontname=\"Helvetica\", fontsize=12, "
         "nodesep=0.2, ranksep=0.3];\n";
  out += "  node [shape=box, style=filled, fontname=\"Helvetica\", fontsize=10, width=0, height=0];\n";
  out += "  edge [fontname=\"Helvetica\", fontsize=9];\n";

  std::vector<bool> keep(entries.size());
  for (size_t i = 0; i < entries.size(); ++i) {
    const PstatsEntry& e = entries[i];
    const double total = fraction(e.ct_ns, e.nc);
    keep[i] = total >= options.min_node;
    if (!keep[i]) continue;
    std::string label = dot_escape(e.key.name);
    if (e.key.file != "~") label += "\\n" + dot_escape(e.key.file) + ":" + std::to_string(e.key.first_line);
    label += "\\ntotal " + percent(total) + (by_time ? " (" + seconds(e.ct_ns) + ")" : "");
    label += "\\nself " + percent(fraction(e.tt_ns, e.cc)) + (by_time ? " (" + seconds(e.tt_ns) + ")" : "");
    const Rgb fill = hsl(ramp_hue(total), 0.85, 0.45);
    out += "  n" + std::to_string(i) + " [label=\"" + label + "\", fillcolor=\"" + hex(fill) +
           "\", fontcolor=\"" + text_colour(fill) + "\", color=\"" + hex(hsl(ramp_hue(total), 0.85, 0.3)) +
           "\", penwidth=" + format("%.2f", 1 + 3 * total) + "];\n";
  }
  for (size_t i = 0; i < entries.size(); ++i) {
    if (!keep[i]) continue;
    for (const PstatsCaller& c : entries[i].callers) {
      const double f = fraction(c.ct_ns, c.samples);
      if (!keep[c.caller] || f < options.min_edge) continue;
      const std::string colour = hex(hsl(ramp_hue(f), 0.85, 0.35));
      out += "  n" + std::to_string(c.caller) + " -> n" + std::to_string(i) + " [label=\"" + percent(f) +
             "\\n" + samples_text(c.samples) + "\", color=\"" + colour + "\", fontcolor=\"" + colour +
             "\", penwidth=" + format("%.2f", 1 + 5 * f) + ", arrowsize=" +
             format("%.2f", 0.5 + std::sqrt(f)) + "];\n";
    }
  }
  out += "}\n";
  return out;
}

}  // namespace pyprofd
