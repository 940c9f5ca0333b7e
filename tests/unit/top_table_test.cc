// format_top against the table each interpreter's pstats prints for the file
// export_pstats writes: same rows, same order, same numbers.
#include "exporters/top_table.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <sstream>

#include "exporters/atomic_file.h"
#include "exporters/pstats.h"

namespace pyprofd::pstats_testing {  // defined in pstats_test.cc
std::vector<std::string> interpreter_names();
std::string find_interpreter(const std::string& name);
std::string shell_quote(const std::string& s);
std::string run_capture(const std::string& cmd, bool* ok);
std::string make_temp_dir();
void add_stack(Profile* p, const SampleLabels& labels, const std::vector<FunctionKey>& keys, uint64_t samples,
               uint64_t weight_ns);
}  // namespace pyprofd::pstats_testing

namespace pyprofd {
namespace {

using namespace pstats_testing;

constexpr uint64_t kMs = 1000000;
const SampleLabels kMain{100, 1, "MainThread", ""};

const char kPrintScript[] = R"PY(
import io, pstats, sys
buf = io.StringIO()
s = pstats.Stats(sys.argv[1], stream=buf).sort_stats("tottime")
s.print_stats() if sys.argv[2] == "all" else s.print_stats(int(sys.argv[2]))
sys.stdout.buffer.write(buf.getvalue().encode("utf-8"))
)PY";

// Nested leaves, recursion (nc != cc), functions never a leaf (cc = 0: blank
// percall), equal self times (stable order), a task frame and a built-in.
Profile sample_profile() {
  const FunctionKey mod{"<module>", "/app/top.py", 1}, a{"a", "/app/top.py", 5}, b{"b", "/app/top.py", 9};
  const FunctionKey c{"c", "/app/top.py", 13}, uni{"ünïcödé_函数", "/app/top.py", 20};
  const FunctionKey task{"<task main>", "~", 0}, sleep{"<built-in method time.sleep>", "~", 0};
  Profile p;
  add_stack(&p, kMain, {mod, a, a, b}, 7, 70 * kMs);
  add_stack(&p, kMain, {mod, a, c}, 7, 70 * kMs);  // c ties with b
  add_stack(&p, kMain, {mod, a}, 3, 33 * kMs);
  add_stack(&p, kMain, {mod, uni}, 1, 1234567);
  add_stack(&p, SampleLabels{100, 1, "MainThread", "main"}, {task, sleep}, 12, 120 * kMs);
  return p;
}

struct Row {
  std::string ncalls, tottime, percall_tt, cumtime, percall_ct, function;
  bool operator==(const Row& o) const {
    return std::tie(ncalls, tottime, percall_tt, cumtime, percall_ct, function) ==
           std::tie(o.ncalls, o.tottime, o.percall_tt, o.cumtime, o.percall_ct, o.function);
  }
  friend std::ostream& operator<<(std::ostream& os, const Row& r) {
    return os << "[" << r.ncalls << "|" << r.tottime << "|" << r.percall_tt << "|" << r.cumtime << "|"
              << r.percall_ct << "|" << r.function << "]";
  }
};

std::string trim(const std::string& s) {
  size_t b = s.find_first_not_of(' '), e = s.find_last_not_of(' ');
  return b == std::string::npos ? "" : s.substr(b, e - b + 1);
}

// From the summary line to the last row; rows parsed by pstats' fixed columns.
std::string table_text(const std::string& out, std::vector<Row>* rows) {
  size_t start = out.find("function calls");
  if (start == std::string::npos) return "";
  start = out.rfind('\n', start) + 1;
  std::string text = out.substr(start);
  while (!text.empty() && text.back() == '\n') text.pop_back();
  std::istringstream lines(text);
  bool in_rows = false;
  for (std::string line; std::getline(lines, line);) {
    if (in_rows && line.size() > 46)
      rows->push_back(Row{trim(line.substr(0, 9)), trim(line.substr(10, 8)), trim(line.substr(19, 8)),
                          trim(line.substr(28, 8)), trim(line.substr(37, 8)), line.substr(46)});
    in_rows = in_rows || line.rfind("   ncalls  tottime", 0) == 0;
  }
  return text;
}

class TopTableReaders : public ::testing::TestWithParam<std::string> {
 protected:
  void SetUp() override {
    python_ = find_interpreter(GetParam());
    if (python_.empty()) GTEST_SKIP() << "interpreter " << GetParam() << " not installed";
    dir_ = make_temp_dir();
    ASSERT_FALSE(dir_.empty());
  }
  void TearDown() override {
    if (!dir_.empty()) std::filesystem::remove_all(dir_);
  }

  void compare(const Profile& p, int n, size_t expected_rows) {
    const std::string path = dir_ + "/top.pstats";
    std::string error;
    ASSERT_TRUE(write_file_atomic(path, export_pstats(p), &error)) << error;
    bool ok = false;
    const std::string arg = n > 0 ? std::to_string(n) : "all";
    const std::string real =
        run_capture(python_ + " -c " + shell_quote(kPrintScript) + " " + shell_quote(path) + " " + arg, &ok);
    ASSERT_TRUE(ok) << real;
    std::vector<Row> real_rows, our_rows;
    const std::string real_text = table_text(real, &real_rows);
    const std::string our_text = table_text(format_top(p, n), &our_rows);
    EXPECT_EQ(our_rows.size(), expected_rows);
    EXPECT_EQ(our_rows, real_rows);
    EXPECT_EQ(our_text, real_text);  // summary, "Ordered by", reduction note too
  }

  std::string python_, dir_;
};

TEST_P(TopTableReaders, AllRowsMatchPstats) { compare(sample_profile(), 0, 7); }
TEST_P(TopTableReaders, ReducedListMatchesPstats) { compare(sample_profile(), 3, 3); }

INSTANTIATE_TEST_SUITE_P(Interpreters, TopTableReaders, ::testing::ValuesIn(interpreter_names()),
                         [](const auto& info) {
                           std::string n = info.param;
                           for (char& c : n) c = c == '.' ? '_' : c;
                           return n;
                         });

// Numbers derived by hand, independent of any interpreter.
TEST(TopTable, RowsByHand) {
  std::vector<Row> rows;
  table_text(format_top(sample_profile(), 0), &rows);
  ASSERT_EQ(rows.size(), 7u);
  EXPECT_EQ(rows[0], (Row{"12", "0.120", "0.010", "0.120", "0.010", "{built-in method time.sleep}"}));
  EXPECT_EQ(rows[1], (Row{"7", "0.070", "0.010", "0.070", "0.010", "/app/top.py:9(b)"}));  // file order breaks the tie
  EXPECT_EQ(rows[2], (Row{"7", "0.070", "0.010", "0.070", "0.010", "/app/top.py:13(c)"}));
  EXPECT_EQ(rows[3], (Row{"17/3", "0.033", "0.002", "0.173", "0.058", "/app/top.py:5(a)"}));
  EXPECT_EQ(rows[4], (Row{"1", "0.001", "0.001", "0.001", "0.001", "/app/top.py:20(ünïcödé_函数)"}));
  EXPECT_EQ(rows[5], (Row{"18/0", "0.000", "0.000", "0.174", "", "/app/top.py:1(<module>)"}));
  EXPECT_EQ(rows[6], (Row{"12/0", "0.000", "0.000", "0.120", "", "{task main}"}));
  EXPECT_NE(format_top(sample_profile(), 0).find("         74 function calls (30 primitive calls) in 0.294 seconds"),
            std::string::npos);
}

TEST(TopTable, EmptyProfilePrintsNothing) { EXPECT_EQ(format_top(Profile{}, 10), ""); }

TEST(TopTable, FunctionLabels) {
  EXPECT_EQ(pstats_function_label(FunctionKey{"<module>", "/a.py", 1}), "/a.py:1(<module>)");
  EXPECT_EQ(pstats_function_label(FunctionKey{"<task t>", "~", 0}), "{task t}");
  EXPECT_EQ(pstats_function_label(FunctionKey{"len", "~", 0}), "len");
}

}  // namespace
}  // namespace pyprofd
