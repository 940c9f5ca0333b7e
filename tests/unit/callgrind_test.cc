// callgrind export: golden file on the shared model, then callgrind_annotate
// (valgrind) reads it: it must accept every line, its PROGRAM TOTALS must be
// the model's totals, each function's self cost the model's leaf totals, and
// each caller->callee edge must count a sample once however often the pair
// recurs in its stack.
#include "exporters/callgrind.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <map>
#include <regex>
#include <set>
#include <sstream>

#include "exporters/atomic_file.h"

namespace pyprofd::format_testing {  // defined in collapsed_test.cc
Profile sample_profile();
void expect_golden(const std::string& name, const std::string& actual);
}  // namespace pyprofd::format_testing

namespace pyprofd::pstats_testing {  // defined in pstats_test.cc
std::string shell_quote(const std::string& s);
std::string run_capture(const std::string& cmd, bool* ok);
std::string make_temp_dir();
}  // namespace pyprofd::pstats_testing

namespace pyprofd {
namespace {

using namespace format_testing;
using namespace pstats_testing;

struct Cost {
  uint64_t samples = 0, ns = 0;
  bool operator==(const Cost& o) const { return samples == o.samples && ns == o.ns; }
};
std::ostream& operator<<(std::ostream& os, const Cost& c) { return os << c.samples << " samples, " << c.ns << " ns"; }

// "file:function" as callgrind_annotate names it. The model's only name used
// with two first lines in one file is <lambda>, so only it gets ":FIRST_LINE".
std::string annotate_name(const FunctionKey& k) {
  std::string name = k.name == "odd;name\nwith newline" ? "odd;name with newline" : k.name;
  if (k.name == "<lambda>") name += ":" + std::to_string(k.first_line);
  return k.file + ":" + name;
}

// "1,234" -> 1234; "." (no cost) -> 0.
uint64_t number(const std::string& s) {
  std::string digits;
  for (char c : s)
    if (c != ',') digits += c;
  return digits == "." ? 0 : std::stoull(digits);
}

struct Annotated {
  Cost totals;
  std::map<std::string, Cost> self;                                 // function -> self cost
  std::map<std::pair<std::string, std::string>, uint64_t> calls;   // (caller, callee) -> call count
};

// Runs callgrind_annotate with every function listed and its callers; false
// (with a failure) if it fails or warns.
bool annotate(const std::string& bytes, Annotated* out) {
  bool found = false;
  run_capture("command -v callgrind_annotate", &found);
  if (!found) {
    ADD_FAILURE() << "callgrind_annotate not found: tools/install-deps.sh installs valgrind";
    return false;
  }
  const std::string dir = make_temp_dir(), path = dir + "/callgrind.out.test";
  std::string error;
  EXPECT_TRUE(write_file_atomic(path, bytes, &error)) << error;
  bool ok = false;
  const std::string text = run_capture(
      "callgrind_annotate --auto=no --show-percs=no --threshold=100 --tree=caller " + shell_quote(path) + " 2>&1", &ok);
  std::filesystem::remove_all(dir);
  EXPECT_TRUE(ok) << text;
  EXPECT_EQ(text.find("WARNING"), std::string::npos) << text;
  if (!ok) return false;

  // "COST COST  PROGRAM TOTALS", "COST COST  < caller (Nx) [object]", "COST COST  *  function".
  const std::regex totals(R"(^\s*([\d,.]+)\s+([\d,.]+)\s+PROGRAM TOTALS\s*$)");
  const std::regex caller(R"(^\s*[\d,.]+\s+[\d,.]+\s+< (.*) \(([\d,]+)x\)( \[.*\])?\s*$)");  // [object]
  const std::regex function(R"(^\s*([\d,.]+)\s+([\d,.]+)\s+\*  (.*)$)");
  std::istringstream in(text);
  std::string line;
  std::vector<std::pair<std::string, uint64_t>> pending;  // callers listed before their function
  bool saw_totals = false;
  while (std::getline(in, line)) {
    std::smatch m;
    if (std::regex_match(line, m, totals)) {
      out->totals = Cost{number(m[1]), number(m[2])};
      saw_totals = true;
    } else if (std::regex_match(line, m, caller)) {
      pending.emplace_back(m[1], number(m[2]));
    } else if (std::regex_match(line, m, function)) {
      EXPECT_TRUE(out->self.emplace(m[3], Cost{number(m[1]), number(m[2])}).second) << "listed twice: " << m[3];
      for (const auto& [from, n] : pending) out->calls[{from, m[3]}] = n;
      pending.clear();
    }
  }
  EXPECT_TRUE(saw_totals) << text;
  EXPECT_TRUE(pending.empty()) << text;
  return saw_totals;
}

TEST(Callgrind, MatchesGolden) { expect_golden("sample.callgrind", export_callgrind(sample_profile())); }

TEST(Callgrind, AnnotateAgreesWithTheModel) {
  const Profile p = sample_profile();
  Annotated got;
  if (!annotate(export_callgrind(p), &got)) return;
  EXPECT_EQ(got.totals, (Cost{p.total_samples(), p.total_weight_ns()}));
  EXPECT_EQ(got.totals, (Cost{24, 214000000}));

  std::map<std::string, Cost> self;  // every function, leaf totals (0 if never a leaf)
  std::map<std::pair<std::string, std::string>, uint64_t> calls;
  for (const auto& s : p.stacks) {
    std::set<std::pair<std::string, std::string>> pairs;
    for (size_t i = 0; i < s.frames.size(); ++i) {
      const std::string name = annotate_name(p.functions[s.frames[i].function]);
      self[name];
      if (i > 0) pairs.emplace(annotate_name(p.functions[s.frames[i - 1].function]), name);
    }
    Cost& leaf = self[annotate_name(p.functions[s.frames.back().function])];
    leaf.samples += s.samples;
    leaf.ns += s.weight_ns;
    for (const auto& pair : pairs) calls[pair] += s.samples;
  }
  EXPECT_EQ(got.self, self);
  EXPECT_EQ(got.calls, calls);
  // Recursion counted once per sample: a->a is in 7 samples (twice in each stack).
  EXPECT_EQ((got.calls[{"/app/rec.py:a", "/app/rec.py:a"}]), 7u);
  EXPECT_EQ((got.calls[{"/app/rec.py:a", "/app/rec.py:b"}]), 3u);
}

TEST(Callgrind, HeaderAndCompression) {
  Profile p;
  p.mode = ProfileMode::kWall;
  p.rate_hz = 250;
  const uint32_t f = p.intern({"f", "/a.py", 10}), g = p.intern({"g", "/b.py", 20});
  p.add(SampleLabels{1, 1, "", ""}, {{f, 11}, {g, 21}}, 40, 4);
  EXPECT_EQ(export_callgrind(p),
            "# callgrind format\nversion: 1\ncreator: pyprofd\ndesc: Mode: wall\ndesc: Rate: 250 Hz\n"
            "positions: line\nevent: WallNs : Wall time (ns)\nevents: Samples WallNs\nsummary: 4 40\n"
            "\nfl=(1) /a.py\nfn=(1) f\ncfl=(2) /b.py\ncfn=(2) g\ncalls=4 20\n11 4 40\n"
            "\nfl=(2)\nfn=(2)\n21 4 40\n"
            "\ntotals: 4 40\n");
}

TEST(Callgrind, NothingToWrite) {
  Profile p;
  EXPECT_EQ(export_callgrind(p), "");
  p.functions = {FunctionKey{"f", "/a.py", 1}};
  p.stacks = {StackRecord{SampleLabels{}, {}, 1, 10}, StackRecord{SampleLabels{}, {{0, 1}}, 0, 0}};
  EXPECT_EQ(export_callgrind(p), "");
}

}  // namespace
}  // namespace pyprofd
