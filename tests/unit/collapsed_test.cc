// Collapsed stacks: golden file on the shared hand-built model, plus a reader
// check that parses every line the way speedscope and flamegraph.pl do.
// Also defines the model and golden-file helper the speedscope and callgrind
// tests share (format_testing).
#include "exporters/collapsed.h"

#include <gtest/gtest.h>
#include <stdlib.h>

#include <fstream>
#include <map>
#include <regex>
#include <set>
#include <sstream>

#include "exporters/atomic_file.h"

namespace pyprofd::format_testing {

constexpr uint64_t kMs = 1000000;

// Functions of the shared model (kept in one place so tests can name them).
const FunctionKey kMod{"<module>", "/app/main.py", 1}, kA{"a", "/app/rec.py", 4}, kB{"b", "/app/rec.py", 8};
const FunctionKey kUni{"ünïcödé_函数", "/app/ünï/mod.py", 7};
const FunctionKey kTask1{"<task worker-1>", "~", 0}, kTask2{"<task worker-2>", "~", 0};
const FunctionKey kHandle{"handle", "/app/srv.py", 50}, kSleep{"<built-in method time.sleep>", "~", 0};
const FunctionKey kSrvMod{"<module>", "/app/srv.py", 1}, kOdd{"odd;name\nwith newline", "/app/srv.py", 70};
const FunctionKey kLambda1{"<lambda>", "/app/srv.py", 80}, kLambda2{"<lambda>", "/app/srv.py", 81};

// Self (a->a) and mutual (a->b->a) recursion, one stack in two threads, a
// renamed thread, several pids, tasks with synthetic "~" frames, non-ASCII and
// ';'/newline names, two functions with one name in one file, and a thread
// without a name. 24 samples, 214 ms.
Profile sample_profile() {
  Profile p;
  p.mode = ProfileMode::kCpu;
  p.rate_hz = 100;
  p.start_time_ns = 1700000000000000000;
  p.duration_ns = 2000 * kMs;
  auto add = [&p](SampleLabels l, std::vector<std::pair<FunctionKey, int>> frames, uint64_t n, uint64_t w) {
    std::vector<StackFrame> fs;
    for (const auto& [key, line] : frames) fs.push_back(StackFrame{p.intern(key), line});
    p.add(l, fs, w, n);
  };
  const SampleLabels main{100, 101, "MainThread", ""}, pool{100, 102, "pool-1", ""};
  const SampleLabels t1{200, 200, "MainThread", "worker-1"}, t2{200, 200, "MainThread", "worker-2"};
  const SampleLabels srv{200, 200, "MainThread", ""}, anon{300, 301, "", ""};
  add(main, {{kMod, 3}, {kA, 5}, {kA, 5}, {kA, 6}}, 4, 40 * kMs);
  add(main, {{kMod, 3}, {kA, 5}, {kB, 9}, {kA, 6}, {kB, 10}}, 2, 20 * kMs);
  add(main, {{kMod, 3}, {kA, 5}, {kB, 9}, {kA, 6}}, 1, 10 * kMs);
  add(pool, {{kMod, 3}, {kA, 5}, {kA, 5}, {kA, 6}}, 3, 30 * kMs);
  add(pool, {{kMod, 12}, {kUni, 8}}, 2, 25 * kMs);
  add(SampleLabels{100, 102, "old-name", ""}, {{kMod, 3}}, 1, 10 * kMs);
  add(t1, {{kTask1, 0}, {kHandle, 52}, {kSleep, 0}}, 5, 50 * kMs);
  add(t2, {{kTask2, 0}, {kHandle, 53}}, 1, 10 * kMs);
  add(srv, {{kSrvMod, 60}, {kOdd, 71}}, 1, 5 * kMs);
  add(srv, {{kSrvMod, 61}, {kLambda1, 80}}, 1, 3 * kMs);
  add(srv, {{kSrvMod, 62}, {kLambda2, 81}}, 2, 4 * kMs);
  add(anon, {{kMod, 3}}, 1, 7 * kMs);
  return p;
}

// Compares with tests/unit/golden/NAME; PYPROFD_UPDATE_GOLDEN=1 rewrites it instead.
void expect_golden(const std::string& name, const std::string& actual) {
  const std::string path = std::string(PYPROFD_SOURCE_DIR) + "/tests/unit/golden/" + name;
  const char* update = getenv("PYPROFD_UPDATE_GOLDEN");
  if (update && std::string(update) == "1") {
    std::string error;
    ASSERT_TRUE(write_file_atomic(path, actual, &error)) << error;
    std::cerr << "rewrote golden file " << path << "\n";
    return;
  }
  std::ifstream in(path, std::ios::binary);
  ASSERT_TRUE(in) << "missing golden file " << path << " (PYPROFD_UPDATE_GOLDEN=1 creates it)";
  std::ostringstream want;
  want << in.rdbuf();
  EXPECT_EQ(actual, want.str()) << "output differs from " << path
                                << "; if the change is deliberate, rerun with PYPROFD_UPDATE_GOLDEN=1";
}

}  // namespace pyprofd::format_testing

namespace pyprofd {
namespace {

using namespace format_testing;

// The frame text the format promises, written out independently of the exporter.
std::string expected_label(const FunctionKey& k, int line) {
  if (k == kOdd) return "odd,name with newline (/app/srv.py:" + std::to_string(line) + ")";
  if (k.file == "~") return k.name;
  return k.name + " (" + k.file + ":" + std::to_string(line) + ")";
}

TEST(Collapsed, MatchesGolden) { expect_golden("sample.collapsed", export_collapsed(sample_profile())); }

TEST(Collapsed, ReaderSeesEveryDistinctStackOnce) {
  const Profile p = sample_profile();
  std::map<std::string, uint64_t> want;  // distinct frame lists, labels merged
  for (const auto& s : p.stacks) {
    std::string stack;
    for (const auto& f : s.frames) stack += (stack.empty() ? "" : ";") + expected_label(p.functions[f.function], f.line);
    want[stack] += s.samples;
  }
  ASSERT_EQ(want.size(), 10u);  // 12 records: two pairs differ only in labels

  const std::string text = export_collapsed(p);
  std::istringstream in(text);
  std::string line, prev;
  std::map<std::string, uint64_t> got;
  uint64_t total = 0;
  const std::regex folded("^(.*) (\\d+)$");  // speedscope's parser; flamegraph.pl's is equivalent here
  while (std::getline(in, line)) {
    std::smatch m;
    ASSERT_TRUE(std::regex_match(line, m, folded)) << "unparsable line: " << line;
    EXPECT_LT(prev, line) << "lines not sorted or repeated";
    prev = line;
    EXPECT_TRUE(got.emplace(m[1], std::stoull(m[2])).second) << "stack twice: " << m[1];
    total += std::stoull(m[2]);
  }
  EXPECT_EQ(text.back(), '\n');
  EXPECT_EQ(total, p.total_samples());
  EXPECT_EQ(got, want);
}

TEST(Collapsed, SeparatorsInNamesNeverSplitFrames) {
  Profile p;
  const std::vector<StackFrame> frames = {{p.intern({"x;y", "/a;b.py", 1}), 2},
                                          {p.intern({"line\nbreak\r\tz", "/c.py", 3}), 4}};
  p.add(SampleLabels{1, 1, "", ""}, frames, 10, 3);
  EXPECT_EQ(export_collapsed(p), "x,y (/a,b.py:2);line break  z (/c.py:4) 3\n");
}

TEST(Collapsed, NothingToWrite) {
  Profile p;
  EXPECT_EQ(export_collapsed(p), "");
  p.functions = {FunctionKey{"f", "/a.py", 1}};
  p.stacks = {StackRecord{SampleLabels{}, {}, 1, 10},            // no frames
              StackRecord{SampleLabels{}, {{0, 1}}, 0, 0},       // no samples
              StackRecord{SampleLabels{}, {{0, 1}, {5, 1}}, 1, 10}};  // bad function index
  EXPECT_EQ(export_collapsed(p), "");
}

}  // namespace
}  // namespace pyprofd
