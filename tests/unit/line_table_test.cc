// Line tables checked against each interpreter's own PyCode_Addr2Line: the
// helper line_cases.py prints every code object's table and the line of every
// byte offset; we decode the same bytes and must agree everywhere.
#include "symbolizer/line_table.h"
#include "tests/unit/test_interpreters.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <ostream>
#include <random>
#include <string>
#include <vector>

namespace pyprofd {
namespace {

std::string run(const std::string& cmd, int* status) {
  std::string out;
  FILE* f = popen(cmd.c_str(), "r");
  if (!f) return out;
  char buf[65536];
  size_t n;
  while ((n = fread(buf, 1, sizeof buf, f)) > 0) out.append(buf, n);
  *status = pclose(f);
  return out;
}

std::vector<uint8_t> unhex(const std::string& s) {
  std::vector<uint8_t> out;
  for (size_t i = 0; i + 1 < s.size(); i += 2) out.push_back(static_cast<uint8_t>(std::stoi(s.substr(i, 2), nullptr, 16)));
  return out;
}

// Which table features the compiler's own (non-synthetic) tables used.
std::map<std::string, int> features(int minor, const std::vector<uint8_t>& t) {
  std::map<std::string, int> f;
  if (minor <= 10) {
    for (size_t i = 0; i + 1 < t.size(); i += 2) {
      if (t[i] >= 254) f["big address delta"]++;
      if (t[i + 1] == 127) f["line delta 127"]++;
      if (t[i + 1] == 0x80) f["line byte 0x80"]++;
      if (t[i + 1] > 0x80) f["negative line delta"]++;
    }
  } else {
    for (uint8_t b : t)
      if (b & 0x80) f["code " + std::to_string((b >> 3) & 15)]++;
  }
  return f;
}

class LineTableInterp : public ::testing::TestWithParam<Interp> {};

TEST_P(LineTableInterp, MatchesPyCodeAddr2Line) {
  const Interp& in = GetParam();
  if (access(in.path, X_OK) != 0) GTEST_SKIP() << "interpreter not found: " << in.path;
  int status = -1;
  std::string out = run(std::string(in.path) + " " PYPROFD_SOURCE_DIR "/tests/unit/line_cases.py", &status);
  ASSERT_EQ(status, 0) << in.path << " failed to run line_cases.py";
  nlohmann::json doc = nlohmann::json::parse(out);
  ASSERT_EQ(doc["minor"].get<int>(), in.minor) << doc["version"];

  std::map<std::string, int> seen;
  int max_first_line = 0;
  size_t natural = 0, offsets_checked = 0;
  for (const auto& code : doc["codes"]) {
    std::string name = code["name"];
    int first_line = code["first_line"];
    int code_len = code["code_len"];
    bool synthetic = code["synthetic"];
    std::vector<uint8_t> table = unhex(code["table"]);
    std::vector<int> lines = code["lines"];  // offsets -2 .. code_len+3
    std::vector<int> alt = code["alt"];      // offsets 0 .. code_len-1
    ASSERT_EQ(lines.size(), static_cast<size_t>(code_len) + 6) << name;
    ASSERT_EQ(alt.size(), static_cast<size_t>(code_len)) << name;
    if (!synthetic) {
      natural++;
      max_first_line = std::max(max_first_line, first_line);
      for (const auto& kv : features(in.minor, table)) seen[kv.first] += kv.second;
    }

    LineTable lt(in.minor, table, first_line);
    int mismatches = 0;
    for (int off = -2; off < code_len + 4; off++) {
      int want = lines[off + 2];
      int got = line_for_offset(in.minor, table.data(), table.size(), first_line, off);
      int cached = lt.line(off);
      if ((got != want || cached != want) && mismatches++ < 3) {
        ADD_FAILURE() << in.label << " " << name << " offset " << off << ": Addr2Line " << want
                      << ", line_for_offset " << got << ", LineTable " << cached;
      }
      offsets_checked++;
      // The Python-level view agrees too (co_lines() on 3.10 hides negative lines).
      if (off >= 0 && off < code_len && want >= -1) {
        EXPECT_EQ(alt[off], want) << in.label << " " << name << " offset " << off << " (oracle disagreement)";
      }
    }
    EXPECT_EQ(mismatches, 0) << in.label << " " << name;
  }

  // The cases must really exercise what they claim.
  EXPECT_GT(natural, 30u);
  EXPECT_GE(max_first_line, 100000);
  std::vector<std::string> need;
  if (in.minor <= 10) {
    need = {"big address delta", "line delta 127", "negative line delta"};
    if (in.minor == 10) need.push_back("line byte 0x80");  // 3.10: "no line"
  } else {
    for (int c = 0; c <= 15; c++) need.push_back("code " + std::to_string(c));
  }
  for (const auto& f : need) EXPECT_GT(seen[f], 0) << in.label << ": no table uses " << f;
  std::printf("[ %s ] %s: %zu code objects, %zu offsets checked\n", in.label,
              doc["version"].get<std::string>().c_str(), doc["codes"].size(), offsets_checked);
}

INSTANTIATE_TEST_SUITE_P(Interpreters, LineTableInterp, ::testing::ValuesIn(test_interpreters()),
                         [](const ::testing::TestParamInfo<Interp>& i) { return std::string(i.param.label); });

// Hand-made tables for the rules that do not depend on an interpreter.
TEST(LineTable, SmallTables) {
  // 3.8: pairs (addr+, line+); offsets past the table keep the last line.
  const uint8_t lnotab[] = {4, 1, 0, 2, 6, 0xff};
  EXPECT_EQ(line_for_offset(8, lnotab, sizeof lnotab, 10, 0), 10);
  EXPECT_EQ(line_for_offset(8, lnotab, sizeof lnotab, 10, 3), 10);
  EXPECT_EQ(line_for_offset(8, lnotab, sizeof lnotab, 10, 4), 13);
  EXPECT_EQ(line_for_offset(8, lnotab, sizeof lnotab, 10, 10), 12);
  EXPECT_EQ(line_for_offset(8, lnotab, sizeof lnotab, 10, 1000), 12);
  EXPECT_EQ(line_for_offset(9, nullptr, 0, 10, 6), 10);
  // 3.10: (length, line+), -128 = no line; past the end: -1.
  const uint8_t t310[] = {4, 1, 2, 0x80, 2, 3};
  EXPECT_EQ(line_for_offset(10, t310, sizeof t310, 10, 3), 11);
  EXPECT_EQ(line_for_offset(10, t310, sizeof t310, 10, 4), -1);
  EXPECT_EQ(line_for_offset(10, t310, sizeof t310, 10, 6), 14);
  EXPECT_EQ(line_for_offset(10, t310, sizeof t310, 10, 8), -1);
  // 3.11+: one-line form +1 (2 units), no-location (1 unit), no-columns -3 (1 unit).
  const uint8_t t311[] = {0x80 | (11 << 3) | 1, 5, 9, 0x80 | (15 << 3), 0x80 | (13 << 3), 7};
  EXPECT_EQ(line_for_offset(12, t311, sizeof t311, 20, 2), 21);
  EXPECT_EQ(line_for_offset(12, t311, sizeof t311, 20, 4), -1);
  EXPECT_EQ(line_for_offset(12, t311, sizeof t311, 20, 6), 18);
  EXPECT_EQ(line_for_offset(12, t311, sizeof t311, 20, 8), -1);
  // Negative offsets (a frame before its first instruction): the first line.
  EXPECT_EQ(line_for_offset(12, t311, sizeof t311, 20, -2), 20);
  // Unsupported versions.
  EXPECT_EQ(line_for_offset(7, lnotab, sizeof lnotab, 10, 0), -1);
  EXPECT_EQ(line_for_offset(16, t311, sizeof t311, 20, 0), -1);
  EXPECT_EQ(LineTable(16, t311, sizeof t311, 20).line(0), -1);
  // 3.14 and 3.15 keep 3.11's location table.
  EXPECT_EQ(line_for_offset(14, t311, sizeof t311, 20, 2), 21);
  EXPECT_EQ(line_for_offset(15, t311, sizeof t311, 20, 6), 18);
}

TEST(LineTable, TruncatedAndGarbageLocationTables) {
  // A varint running off the end, then an entry not starting with bit 7.
  const uint8_t cut[] = {0x80 | (10 << 3), 1, 2, 0x80 | (13 << 3), 0x41};
  EXPECT_EQ(line_for_offset(11, cut, sizeof cut, 5, 0), 5);
  EXPECT_EQ(line_for_offset(11, cut, sizeof cut, 5, 2), -1);
  const uint8_t bad[] = {0x05, 0x80};
  EXPECT_EQ(line_for_offset(13, bad, sizeof bad, 5, 0), -1);
  // A varint too long for 32 bits.
  const uint8_t big[] = {0x80 | (13 << 3), 0x7f, 0x7f, 0x7f, 0x7f, 0x7f, 0x7f, 0x7f, 0x01};
  EXPECT_EQ(line_for_offset(11, big, sizeof big, 5, 0), -1);
}

// Random bytes: never crash or read out of bounds (run under ASan to be sure),
// and the cached table answers exactly like the direct walk.
TEST(LineTable, RandomGarbage) {
  std::mt19937 rng(42);
  for (int iter = 0; iter < 3000; iter++) {
    size_t len = rng() % 64;
    std::vector<uint8_t> bytes(len);
    for (auto& b : bytes) b = static_cast<uint8_t>(rng());
    // Exact-size heap copy so ASan catches any overread.
    std::unique_ptr<uint8_t[]> exact(new uint8_t[len ? len : 1]);
    std::copy(bytes.begin(), bytes.end(), exact.get());
    int minor = 7 + static_cast<int>(rng() % 8);
    int first = static_cast<int>(rng() % 3) == 0 ? INT32_MAX - 3 : static_cast<int>(rng() % 1000);
    LineTable lt(minor, exact.get(), len, first);
    for (int off = -2; off < 600; off += 1 + static_cast<int>(rng() % 3)) {
      ASSERT_EQ(lt.line(off), line_for_offset(minor, exact.get(), len, first, off))
          << "minor " << minor << " len " << len << " offset " << off;
    }
  }
}

}  // namespace
}  // namespace pyprofd
