// The daemon's model pieces: the sample fan-out (windows, live requests, merging on one
// function table), string labels in pprof, and the Prometheus exposition's shape.
#include <gtest/gtest.h>
#include <zlib.h>

#include <regex>
#include <set>
#include <sstream>

#include "exporters/pprof.h"
#include "exporters/profile.pb.h"
#include "tests/unit/gunzip.h"
#include "exporters/prometheus.h"
#include "model/sample_fanout.h"

namespace pyprofd {
namespace {


std::vector<StackFrame> stack(SampleFanout& f, const char* leaf) {
  return {{f.intern({"main", "a.py", 1}), 2}, {f.intern({leaf, "a.py", 10}), 11}};
}

TEST(SampleFanout, WindowsAndRequestsShareOneFunctionTable) {
  SampleFanout f(ProfileMode::kCpu, 100);
  f.rotate(1000);
  SampleLabels l{7, 7, "MainThread", ""};
  f.add(l, stack(f, "hot"), 10);
  auto request = f.open_request(1500);
  f.add(l, stack(f, "cold"), 20);
  f.close_request(request, 2500);
  f.add(l, stack(f, "hot"), 30);  // after the request closed: window only
  Profile w = f.rotate(3000);
  EXPECT_EQ(w.start_time_ns, 1000);
  EXPECT_EQ(w.duration_ns, 2000);
  EXPECT_EQ(w.total_samples(), 3u);
  EXPECT_EQ(w.total_weight_ns(), 60u);
  EXPECT_EQ(w.functions.size(), 3u);
  EXPECT_EQ(request->total_samples(), 1u);
  EXPECT_EQ(request->total_weight_ns(), 20u);
  EXPECT_EQ(request->duration_ns, 1000);
  EXPECT_EQ(f.samples_of(7), 3u);
  int64_t first = f.first_sample_of(7);
  EXPECT_GT(first, 1700000000LL * 1000000000LL);  // wall clock, not the window's times
  EXPECT_EQ(f.first_sample_of(8), 0);

  f.add(l, stack(f, "hot"), 5);
  EXPECT_EQ(f.first_sample_of(7), first);  // the first sample's, kept
  Profile w2 = f.rotate(5000);
  auto merged = f.merge({std::make_shared<const Profile>(w), std::make_shared<const Profile>(w2)});
  EXPECT_EQ(merged.total_samples(), 4u);
  EXPECT_EQ(merged.stacks.size(), 2u);  // hot's stack merged across windows
  EXPECT_EQ(merged.start_time_ns, 1000);
  EXPECT_EQ(merged.duration_ns, 4000);
  EXPECT_EQ(f.current(5500).total_samples(), 0u);
}

TEST(SampleFanout, LabelsReachPprofAsStrings) {
  SampleFanout f(ProfileMode::kCpu, 100);
  f.set_labels({{"env", "test"}});
  f.set_process_labels(7, {{"process", "python3"}, {"service", "svc"}});
  f.add(SampleLabels{7, 8, "", ""}, stack(f, "hot"), 10);
  f.add(SampleLabels{9, 9, "", ""}, stack(f, "hot"), 10);
  perftools::profiles::Profile d;
  ASSERT_TRUE(d.ParseFromString(gunzip(export_pprof(f.rotate(10)))));
  std::map<int64_t, std::set<std::string>> labels;  // pid -> "key=value"
  for (const auto& s : d.sample()) {
    int64_t pid = 0;
    std::set<std::string> kv;
    for (const auto& l : s.label()) {
      if (d.string_table(l.key()) == "pid") pid = l.num();
      if (l.str()) kv.insert(d.string_table(l.key()) + "=" + d.string_table(l.str()));
    }
    labels[pid] = kv;
  }
  EXPECT_EQ(labels[7], (std::set<std::string>{"env=test", "process=python3", "service=svc"}));
  EXPECT_EQ(labels[9], (std::set<std::string>{"env=test"}));
}

// A respawning worker's pid must not stay in every window's labels forever, yet the
// window holding its last samples still names it.
TEST(SampleFanout, ForgottenProcessLabelsGoAfterTheirLastWindow) {
  SampleFanout f(ProfileMode::kCpu, 100);
  f.set_process_labels(7, {{"process", "worker"}});
  f.set_process_labels(8, {{"process", "master"}});
  f.add(SampleLabels{7, 7, "", ""}, stack(f, "hot"), 10);
  f.forget_process(7);
  Profile last = f.rotate(1000);  // the window with 7's last samples
  EXPECT_EQ(last.process_labels.count(7), 1u);
  EXPECT_EQ(f.samples_of(7), 1u);
  EXPECT_EQ(f.rotate(2000).process_labels.count(7), 1u);  // a request open across it may still need them
  Profile after = f.rotate(3000);
  EXPECT_EQ(after.process_labels.count(7), 0u);
  EXPECT_EQ(after.process_labels.count(8), 1u);
  EXPECT_EQ(f.samples_of(7), 0u);
  // A new process with the same pid keeps its labels.
  f.forget_process(8);
  f.set_process_labels(8, {{"process", "new"}});
  f.rotate(4000);
  EXPECT_EQ(f.rotate(5000).process_labels.at(8).front().second, "new");
}

TEST(Prometheus, EveryMetricHasHelpAndTypeAndCountersEndInTotal) {
  DaemonMetrics m;
  m.samples = 12;
  m.cpu_seconds = 0.5;
  m.native_torn = 3;
  std::string text = export_prometheus(m);
  std::istringstream in(text);
  std::string line, help, type;
  std::regex sample(R"(^(pyprofd_[a-z_]+) ([0-9.e+-]+)$)");
  int metrics = 0;
  while (std::getline(in, line)) {
    std::smatch s;
    if (line.rfind("# HELP ", 0) == 0) help = line.substr(7, line.find(' ', 7) - 7);
    else if (line.rfind("# TYPE ", 0) == 0) type = line.substr(7);
    else {
      ASSERT_TRUE(std::regex_match(line, s, sample)) << line;
      EXPECT_EQ(help, s[1].str());
      bool counter = type == s[1].str() + " counter";
      EXPECT_TRUE(counter || type == s[1].str() + " gauge") << type;
      EXPECT_EQ(counter, s[1].str().size() > 6 && s[1].str().substr(s[1].str().size() - 6) == "_total") << line;
      ++metrics;
    }
  }
  EXPECT_EQ(metrics, 22);  // 9, 4 for --push, 3 for window files that wait to be written, 2 for cpu mode's skips, 4 for --native
  EXPECT_NE(text.find("# TYPE pyprofd_windows_pending gauge\n"), std::string::npos);
  EXPECT_NE(text.find("# TYPE pyprofd_window_write_failures_total counter\n"), std::string::npos);
  EXPECT_NE(text.find("pyprofd_samples_total 12\n"), std::string::npos);
  EXPECT_NE(text.find("pyprofd_cpu_seconds_total 0.5\n"), std::string::npos);
  EXPECT_NE(text.find("pyprofd_native_stacks_torn_total 3\n"), std::string::npos);
}

}  // namespace
}  // namespace pyprofd
