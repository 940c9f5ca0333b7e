// str decoding checked on real objects: each interpreter dumps the raw bytes of
// some str objects (ctypes.string_at(id(s), ...)); we parse the state, find the
// data and decode it, and must get the interpreter's own UTF-8.
#include "profiler/layout.h"
#include "profiler/unicode.h"
#include "tests/unit/test_interpreters.h"

#include <gtest/gtest.h>
#include <stdlib.h>
#include <unistd.h>

#include <cstdint>
#include <cstdio>
#include <cstring>
#include <memory>
#include <nlohmann/json.hpp>
#include <ostream>
#include <random>
#include <string>
#include <vector>

namespace pyprofd {
namespace {

// Dumps str objects; expected kind/ascii/UTF-8 come from Python-level facts.
const char kScript[] = R"PY(
import ctypes, json, sys

class S(str):  # str subclass instances are not compact: data lives elsewhere
    __slots__ = ()

def fresh(s):  # a new object whose UTF-8 form was never cached
    return "".join([s[:1], s[1:]])

def utf8(s):
    return "".join("\ufffd" if 0xD800 <= ord(c) <= 0xDFFF else c for c in s).encode("utf-8")

CASES = [
    ("empty", ""),
    ("ascii", "hello_world_0123456789"),
    ("latin1", "caf\u00e9"),
    ("latin1_all", "".join(map(chr, range(0x80, 0x100)))),
    ("ucs2", "\u00fcn\u00efc\u00f6d\u00e9_\u51fd\u6570"),
    ("ucs2_surrogates", "a\ud800b\udfff\uffff"),
    ("ucs4", "\U0001d523\U0001d532\U0001d52b\U0001d520"),
    ("ucs4_mixed", "a\U0010ffff\ud83d\U0001f600\u00e9\u51fd"),
]
out = {
    "minor": sys.version_info.minor,
    "version": sys.version.split()[0],
    "ascii_size": sys.getsizeof("") - 1,
    "compact_size": sys.getsizeof(fresh("\u00e9\u00e9")) - 3,
    "unicode_size": str.__basicsize__,
    "strings": [],
}
for name, text in CASES:
    for compact in (True, False):
        s = fresh(text) if compact else S(text)
        size = sys.getsizeof(s) if compact else str.__basicsize__
        m = max(map(ord, text), default=0)
        out["strings"].append({
            "name": name + ("" if compact else "_subclass"),
            "compact": compact,
            "length": len(s),
            "kind": 1 if m < 0x100 else 2 if m < 0x10000 else 4,
            "ascii": m < 0x80,
            "utf8": utf8(text).hex(),
            "raw": ctypes.string_at(id(s), size).hex(),
        })
json.dump(out, sys.stdout)
)PY";

std::string run_script(const char* python, int* status) {
  char path[] = "/tmp/pyprofd_unicode_XXXXXX";
  int fd = mkstemp(path);
  if (fd < 0) return "";
  bool ok = write(fd, kScript, sizeof kScript - 1) == static_cast<ssize_t>(sizeof kScript - 1);
  close(fd);
  std::string out;
  if (ok) {
    FILE* f = popen((std::string(python) + " " + path).c_str(), "r");
    if (f) {
      char buf[8192];
      size_t n;
      while ((n = fread(buf, 1, sizeof buf, f)) > 0) out.append(buf, n);
      *status = pclose(f);
    }
  }
  unlink(path);
  return out;
}

std::vector<uint8_t> unhex(const std::string& s) {
  std::vector<uint8_t> out;
  for (size_t i = 0; i + 1 < s.size(); i += 2) out.push_back(static_cast<uint8_t>(std::stoi(s.substr(i, 2), nullptr, 16)));
  return out;
}

template <class T>
T field(const std::vector<uint8_t>& raw, size_t off) {
  T v{};
  if (off + sizeof v <= raw.size()) std::memcpy(&v, raw.data() + off, sizeof v);
  return v;
}

class UnicodeInterp : public ::testing::TestWithParam<Interp> {};

TEST_P(UnicodeInterp, DecodesRealStrings) {
  const Interp& in = GetParam();
  if (access(in.path, X_OK) != 0) GTEST_SKIP() << "interpreter not found: " << in.path;
  int status = -1;
  std::string out = run_script(in.path, &status);
  ASSERT_EQ(status, 0) << in.path << " failed";
  nlohmann::json doc = nlohmann::json::parse(out);
  ASSERT_EQ(doc["minor"].get<int>(), in.minor) << doc["version"];

  // Header facts (offsetof/sizeof against each version's headers): the wstr
  // fields went away in 3.12.
  const size_t ascii_size = in.minor <= 11 ? 48 : 40;     // sizeof(PyASCIIObject)
  const size_t compact_size = in.minor <= 11 ? 72 : 56;   // sizeof(PyCompactUnicodeObject)
  const size_t unicode_size = in.minor <= 11 ? 80 : 64;   // sizeof(PyUnicodeObject)
  EXPECT_EQ(doc["ascii_size"].get<size_t>(), ascii_size);
  EXPECT_EQ(doc["compact_size"].get<size_t>(), compact_size);
  EXPECT_EQ(doc["unicode_size"].get<size_t>(), unicode_size);
  const size_t kLengthOff = 16, kStateOff = 32;  // after ob_refcnt, ob_type / length, hash

  for (const auto& s : doc["strings"]) {
    std::string name = s["name"];
    std::vector<uint8_t> raw = unhex(s["raw"]);
    ASSERT_GE(raw.size(), kStateOff + 4) << name;
    size_t length = s["length"];
    EXPECT_EQ(field<int64_t>(raw, kLengthOff), static_cast<int64_t>(length)) << name;

    UnicodeState st = parse_unicode_state(field<uint32_t>(raw, kStateOff), builtin_layout(3, in.minor)->str_has_ready_bit);
    EXPECT_EQ(st.kind, s["kind"].get<int>()) << in.label << " " << name;
    EXPECT_EQ(st.ascii, s["ascii"].get<bool>()) << in.label << " " << name;
    EXPECT_EQ(st.compact, s["compact"].get<bool>()) << in.label << " " << name;
    if (!st.compact) {
      // Data lives behind PyUnicodeObject.data.any, right after the compact header.
      EXPECT_NE(field<uint64_t>(raw, compact_size), 0u) << name;
      continue;
    }
    size_t data_off = st.ascii ? ascii_size : compact_size;
    size_t nbytes = length * static_cast<size_t>(st.kind);
    ASSERT_LE(data_off + nbytes + st.kind, raw.size()) << in.label << " " << name;
    for (int i = 0; i < st.kind; i++) EXPECT_EQ(raw[data_off + nbytes + i], 0) << name << ": no terminator";
    std::string utf8;
    ASSERT_TRUE(decode_unicode(st.kind, raw.data() + data_off, length, &utf8)) << name;
    std::vector<uint8_t> want = unhex(s["utf8"]);
    EXPECT_EQ(utf8, std::string(want.begin(), want.end())) << in.label << " " << name;
  }
}

INSTANTIATE_TEST_SUITE_P(Interpreters, UnicodeInterp, ::testing::ValuesIn(test_interpreters()),
                         [](const ::testing::TestParamInfo<Interp>& i) { return std::string(i.param.label); });

TEST(Unicode, Kinds) {
  std::string out = "keep";
  EXPECT_FALSE(decode_unicode(3, reinterpret_cast<const uint8_t*>("ab"), 2, &out));
  EXPECT_FALSE(decode_unicode(0, nullptr, 0, &out));
  EXPECT_FALSE(decode_unicode(1, nullptr, 1, &out));
  EXPECT_EQ(out, "keep");
  ASSERT_TRUE(decode_unicode(1, nullptr, 0, &out));
  EXPECT_EQ(out, "");
  const uint32_t ucs4[] = {0x41, 0xD800, 0x110000, 0xFFFFFFFF, 0x10FFFF};
  ASSERT_TRUE(decode_unicode(4, reinterpret_cast<const uint8_t*>(ucs4), 5, &out));
  EXPECT_EQ(out, "A\xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF\xBD\xF4\x8F\xBF\xBF");
  // Unaligned UCS-2 data.
  uint8_t buf[5] = {0, 0xE9, 0x00, 0x34, 0x12};
  ASSERT_TRUE(decode_unicode(2, buf + 1, 2, &out));
  EXPECT_EQ(out, "\xC3\xA9\xE1\x88\xB4");
}

TEST(Unicode, StateBits) {
  // interned 1, kind 2, compact, not ascii.
  UnicodeState st = parse_unicode_state(0x1 | (2 << 2) | (1 << 5), false);
  EXPECT_EQ(st.kind, 2);
  EXPECT_TRUE(st.compact);
  EXPECT_FALSE(st.ascii);
  EXPECT_EQ(parse_unicode_state((3 << 2) | (1 << 7), true).kind, 0);               // no kind 3
  EXPECT_EQ(parse_unicode_state(0, true).kind, 0);                  // not ready (wstr)
  EXPECT_EQ(parse_unicode_state((4 << 2) | (1 << 6) | (1 << 7), true).kind, 0);  // ascii but UCS-4
  EXPECT_EQ(parse_unicode_state((1 << 2) | (1 << 5), true).kind, 0);   // ready bit clear (3.8-3.11)
  EXPECT_EQ(parse_unicode_state((1 << 2) | (1 << 5), false).kind, 1);  // 3.12+: no ready bit
}

bool valid_utf8(const std::string& s) {
  size_t i = 0;
  while (i < s.size()) {
    unsigned char c = static_cast<unsigned char>(s[i]);
    size_t n = c < 0x80 ? 1 : (c >> 5) == 6 ? 2 : (c >> 4) == 14 ? 3 : (c >> 3) == 30 ? 4 : 0;
    if (n == 0 || i + n > s.size()) return false;
    for (size_t k = 1; k < n; k++)
      if ((static_cast<unsigned char>(s[i + k]) & 0xC0) != 0x80) return false;
    i += n;
  }
  return true;
}

TEST(Unicode, RandomGarbage) {
  std::mt19937 rng(7);
  for (int iter = 0; iter < 2000; iter++) {
    int kind = 1 << (rng() % 3);
    size_t length = rng() % 40;
    std::unique_ptr<uint8_t[]> data(new uint8_t[length * kind + 1]);  // exact size for ASan
    for (size_t i = 0; i < length * kind; i++) data[i] = static_cast<uint8_t>(rng());
    std::string out;
    ASSERT_TRUE(decode_unicode(kind, data.get(), length, &out));
    EXPECT_TRUE(valid_utf8(out)) << "kind " << kind;
    UnicodeState st = parse_unicode_state(static_cast<uint32_t>(rng()), rng() % 2);
    EXPECT_TRUE(st.kind == 0 || st.kind == 1 || st.kind == 2 || st.kind == 4);
  }
  std::string out;
  EXPECT_FALSE(decode_unicode(4, reinterpret_cast<const uint8_t*>("x"), SIZE_MAX / 2, &out));
}

}  // namespace
}  // namespace pyprofd
