// speedscope export: golden file on the shared model, then the file parsed back
// with nlohmann_json and checked the way speedscope's importer uses it: frame
// indices in range, samples/weights paired, weights summing to endValue and to
// the model, one profile per thread (tasks are frames in it), busiest first, stacks
// decoding to the model's.
#include "exporters/speedscope.h"

#include <gtest/gtest.h>

#include <map>
#include <nlohmann/json.hpp>
#include <set>
#include <tuple>

namespace pyprofd::format_testing {  // defined in collapsed_test.cc
Profile sample_profile();
void expect_golden(const std::string& name, const std::string& actual);
}  // namespace pyprofd::format_testing

namespace pyprofd {
namespace {

using namespace format_testing;
using json = nlohmann::json;
using Decoded = std::map<std::string, std::map<std::vector<std::string>, uint64_t>>;  // profile -> stack -> ns

std::string frame_id(const std::string& name, const std::string& file) { return name + "@" + file; }

TEST(Speedscope, MatchesGolden) { expect_golden("sample.speedscope.json", export_speedscope(sample_profile())); }

TEST(Speedscope, ParsesBackToTheModel) {
  const Profile p = sample_profile();
  const json doc = json::parse(export_speedscope(p));  // throws, failing the test, on bad JSON
  EXPECT_EQ(doc["$schema"], "https://www.speedscope.app/file-format-schema.json");
  EXPECT_EQ(doc["exporter"], "pyprofd");
  ASSERT_TRUE(doc["name"].is_string());

  const json& frames = doc["shared"]["frames"];
  ASSERT_TRUE(frames.is_array());
  std::set<std::tuple<std::string, std::string, int>> distinct;
  std::vector<std::string> ids;
  for (const auto& f : frames) {
    ASSERT_TRUE(f["name"].is_string());
    const bool synthetic = !f.contains("file");
    EXPECT_EQ(synthetic, !f.contains("line")) << f.dump();
    if (!synthetic) {
      ASSERT_TRUE(f["file"].is_string());
      ASSERT_TRUE(f["line"].is_number_integer());
    }
    const std::string file = synthetic ? "~" : f["file"].get<std::string>();
    EXPECT_TRUE(distinct.emplace(f["name"], file, synthetic ? 0 : f["line"].get<int>()).second) << f.dump();
    ids.push_back(frame_id(f["name"], file));
  }
  EXPECT_EQ(frames.size(), 12u);  // one per function, whatever its lines
  EXPECT_TRUE(distinct.count({"a", "/app/rec.py", 4}));
  EXPECT_TRUE(distinct.count({"ünïcödé_函数", "/app/ünï/mod.py", 7}));

  const json& profiles = doc["profiles"];
  ASSERT_EQ(profiles.size(), 4u);
  Decoded got;
  uint64_t total = 0, previous = UINT64_MAX;
  for (size_t i = 0; i < profiles.size(); ++i) {
    const json& prof = profiles[i];
    SCOPED_TRACE(prof.dump().substr(0, 120));
    EXPECT_EQ(prof["type"], "sampled");
    EXPECT_EQ(prof["unit"], "nanoseconds");
    const json &samples = prof["samples"], &weights = prof["weights"];
    ASSERT_EQ(samples.size(), weights.size());
    auto& stacks = got[prof["name"].get<std::string>()];
    EXPECT_TRUE(stacks.empty()) << "two profiles with one name";
    uint64_t sum = 0;
    for (size_t s = 0; s < samples.size(); ++s) {
      std::vector<std::string> stack;
      for (const auto& index : samples[s]) {
        ASSERT_TRUE(index.is_number_unsigned());
        ASSERT_LT(index.get<size_t>(), frames.size());
        stack.push_back(ids[index.get<size_t>()]);
      }
      ASSERT_FALSE(stack.empty());
      stacks[stack] += weights[s].get<uint64_t>();
      sum += weights[s].get<uint64_t>();
    }
    EXPECT_EQ(prof["endValue"].get<uint64_t>() - prof["startValue"].get<uint64_t>(), sum);
    EXPECT_LE(sum, previous) << "profiles not busiest first";
    previous = sum;
    total += sum;
  }
  EXPECT_EQ(total, p.total_weight_ns());
  EXPECT_EQ(doc["activeProfileIndex"].get<size_t>(), 0u);

  // What each thread's profile must hold: the model's stacks, root first, by function.
  const std::map<std::pair<int, uint64_t>, std::string> names = {
      {{100, 101}, "pid 100 · MainThread (tid 101)"},
      {{100, 102}, "pid 100 · pool-1 (tid 102)"},  // also seen once as "old-name"
      {{200, 200}, "pid 200 · MainThread (tid 200)"},  // with its tasks' stacks
      {{300, 301}, "pid 300 · tid 301"}};
  Decoded want;
  for (const auto& s : p.stacks) {
    std::vector<std::string> stack;
    for (const auto& f : s.frames) stack.push_back(frame_id(p.functions[f.function].name, p.functions[f.function].file));
    want[names.at({s.labels.pid, s.labels.thread_id})][stack] += s.weight_ns;
  }
  EXPECT_EQ(got, want);
}

TEST(Speedscope, InvalidUtf8IsReplaced) {
  Profile p;
  p.add(SampleLabels{1, 2, "t\xff", "task\xc0"}, {{p.intern({"bad\xff", "/x\xfe.py", 1}), 1}}, 5);
  const json doc = json::parse(export_speedscope(p));
  EXPECT_EQ(doc["shared"]["frames"][0]["name"], "bad\xEF\xBF\xBD");
  EXPECT_EQ(doc["shared"]["frames"][0]["file"], "/x\xEF\xBF\xBD.py");
  EXPECT_EQ(doc["profiles"][0]["name"], "pid 1 · t\xEF\xBF\xBD (tid 2)");
}

TEST(Speedscope, TasksOfNoRunningLoopHaveTheirOwnProfile) {
  Profile p;
  uint32_t f = p.intern({"f", "/a.py", 1});
  p.add(SampleLabels{7, 0, "", "t1"}, {{f, 1}}, 5);
  p.add(SampleLabels{7, 0, "", "t2"}, {{f, 1}}, 5);
  p.add(SampleLabels{7, 9, "main", ""}, {{f, 1}}, 20);
  const json doc = json::parse(export_speedscope(p));
  ASSERT_EQ(doc["profiles"].size(), 2u);
  EXPECT_EQ(doc["profiles"][0]["name"], "pid 7 · main (tid 9)");
  EXPECT_EQ(doc["profiles"][1]["name"], "pid 7 · tasks whose loop is not running");
}

TEST(Speedscope, NothingToWrite) {
  Profile p;
  EXPECT_EQ(export_speedscope(p), "");
  p.functions = {FunctionKey{"f", "/a.py", 1}};
  p.stacks = {StackRecord{SampleLabels{}, {}, 1, 10}, StackRecord{SampleLabels{}, {{3, 1}}, 1, 10}};
  EXPECT_EQ(export_speedscope(p), "");
}

}  // namespace
}  // namespace pyprofd
