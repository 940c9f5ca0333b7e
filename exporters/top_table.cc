#include "exporters/top_table.h"

#include <algorithm>
#include <cstdio>
#include <numeric>
#include <vector>

#include "exporters/pstats.h"

namespace pyprofd {
namespace {

std::string printf_string(const char* fmt, double v) {
  char buf[64];
  std::snprintf(buf, sizeof buf, fmt, v);
  return buf;
}

// pstats' f8 column, or 8 blanks where it would divide by zero.
std::string f8(double v) { return printf_string("%8.3f", v); }
std::string percall(double t, uint64_t calls) {
  return calls == 0 ? std::string(8, ' ') : f8(t / static_cast<double>(calls));
}

}  // namespace

std::string pstats_function_label(const FunctionKey& key) {
  if (key.file == "~" && key.first_line == 0) {
    const std::string& n = key.name;
    if (n.size() >= 2 && n.front() == '<' && n.back() == '>') return "{" + n.substr(1, n.size() - 2) + "}";
    return n;
  }
  return key.file + ":" + std::to_string(key.first_line) + "(" + key.name + ")";
}

std::string format_top(const Profile& p, int n) {
  const std::vector<PstatsEntry> entries = build_pstats_entries(p);
  if (entries.empty()) return "";

  // Totals the way pstats sums them: in dict (file) order, tt as doubles.
  uint64_t total_calls = 0, prim_calls = 0;
  double total_tt = 0;
  for (const auto& e : entries) {
    total_calls += e.nc;
    prim_calls += e.cc;
    total_tt += pstats_seconds(e.tt_ns);
  }
  std::string out = std::string(9, ' ') + std::to_string(total_calls) + " function calls ";
  if (total_calls != prim_calls) out += "(" + std::to_string(prim_calls) + " primitive calls) ";
  out += "in " + printf_string("%.3f", total_tt) + " seconds\n\n";

  std::vector<size_t> order(entries.size());
  std::iota(order.begin(), order.end(), 0);
  std::stable_sort(order.begin(), order.end(), [&](size_t a, size_t b) {
    return pstats_seconds(entries[a].tt_ns) > pstats_seconds(entries[b].tt_ns);
  });
  out += "   Ordered by: internal time\n";
  if (n > 0 && static_cast<size_t>(n) < order.size()) {
    out += "   List reduced from " + std::to_string(order.size()) + " to " + std::to_string(n) +
           " due to restriction <" + std::to_string(n) + ">\n";
    order.resize(n);
  }
  out += "\n   ncalls  tottime  percall  cumtime  percall filename:lineno(function)\n";
  for (size_t i : order) {
    const PstatsEntry& e = entries[i];
    std::string calls = std::to_string(e.nc);
    if (e.nc != e.cc) calls += "/" + std::to_string(e.cc);
    if (calls.size() < 9) calls.insert(0, 9 - calls.size(), ' ');
    const double tt = pstats_seconds(e.tt_ns), ct = pstats_seconds(e.ct_ns);
    out += calls + " " + f8(tt) + " " + percall(tt, e.nc) + " " + f8(ct) + " " + percall(ct, e.cc) + " " +
           pstats_function_label(e.key) + "\n";
  }
  return out;
}

}  // namespace pyprofd
