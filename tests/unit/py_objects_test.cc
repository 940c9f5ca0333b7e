// PyObjects and read_thread_names against real interpreters running
// tests/targets/objects_target.py, plus garbage-memory robustness checks.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <poll.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <nlohmann/json.hpp>
#include <cstring>
#include <memory>
#include <random>
#include <set>
#include <string>

#include "profiler/layout.h"
#include "profiler/py_objects.h"
#include "profiler/remote_memory.h"
#include "profiler/thread_names.h"
#include "tests/unit/report_target.h"
#include "tests/unit/test_interpreters.h"

namespace pyprofd {
namespace {

class PyObjectsLive : public ::testing::TestWithParam<Interp> {
 protected:
  void SetUp() override {
    const Interp& in = GetParam();
    if (access(in.path, X_OK) != 0) GTEST_SKIP() << "interpreter not installed: " << in.path;
    layout_ = builtin_layout(3, in.minor);
    ASSERT_NE(layout_, nullptr) << "no layout for 3." << in.minor;
    std::string err;
    ASSERT_TRUE(target_.start(in.path, "objects_target.py", nullptr, &err)) << err;
    ASSERT_EQ(target_.report()["version"][1].get<int>(), in.minor);
    mem_ = std::make_unique<LiveMemory>(target_.pid());
    objs_ = std::make_unique<PyObjects>(*mem_, *layout_);
  }
  std::string str_attr(uint64_t obj, const char* name) {
    auto v = objs_->instance_attr(obj, name);
    if (!v) return "<missing>";
    return objs_->read_str(*v).value_or("<unreadable>");
  }
  uint64_t interp_state() {
    uint64_t interp = 0;
    EXPECT_TRUE(mem_->read_value(target_.addr("runtime") + layout_->rt_interpreters_head, &interp));
    return interp;
  }

  const Layout* layout_ = nullptr;
  ReportTarget target_;
  std::unique_ptr<LiveMemory> mem_;
  std::unique_ptr<PyObjects> objs_;
};

TEST_P(PyObjectsLive, StringsOfEveryKind) {
  for (auto& [name, pair] : target_.report()["strings"].items()) {
    auto s = objs_->read_str(pair[0].get<uint64_t>(), 1 << 20);
    ASSERT_TRUE(s) << name;
    EXPECT_EQ(*s, pair[1].get<std::string>()) << name;
  }
  auto ucs4 = target_.report()["strings"]["ucs4"][0].get<uint64_t>();
  EXPECT_EQ(objs_->read_str(ucs4, 7), "snake \xF0\x9F\x90\x8D");  // truncated to 7 code points
  auto longs = target_.report()["strings"]["long"][0].get<uint64_t>();
  EXPECT_EQ(objs_->read_str(longs).value_or("").size(), 4096u);  // default cap
  EXPECT_EQ(objs_->type_name(ucs4), "str");
}

TEST_P(PyObjectsLive, Ints) {
  for (auto& [name, pair] : target_.report()["ints"].items()) {
    auto v = objs_->read_int(pair[0].get<uint64_t>());
    ASSERT_TRUE(v) << name;
    EXPECT_EQ(*v, pair[1].get<int64_t>()) << name;
  }
  for (auto& addr : target_.report()["too_big"]) EXPECT_FALSE(objs_->read_int(addr.get<uint64_t>()));
  EXPECT_EQ(objs_->type_name(target_.report()["ints"]["one"][0].get<uint64_t>()), "int");
}

TEST_P(PyObjectsLive, DictLookups) {
  for (int i : {0, 1, 999, 1999}) {
    auto v = objs_->dict_get_str(target_.addr("big"), "k" + std::to_string(i));
    ASSERT_TRUE(v) << i;
    EXPECT_EQ(objs_->read_int(*v), i);
  }
  auto h = objs_->dict_get_str(target_.addr("huge"), "h49999");
  ASSERT_TRUE(h);
  EXPECT_EQ(objs_->read_int(*h), 49999);
  EXPECT_FALSE(objs_->dict_get_str(target_.addr("big"), "k2000"));
  EXPECT_FALSE(objs_->dict_get_str(target_.addr("big"), "k"));
  EXPECT_FALSE(objs_->dict_get_str(target_.addr("int_keyed"), "1"));  // int keys never match

  std::vector<std::pair<uint64_t, uint64_t>> items;
  ASSERT_TRUE(objs_->dict_items(target_.addr("int_keyed"), &items));
  ASSERT_EQ(items.size(), 10u);
  for (auto& [k, v] : items) EXPECT_EQ(std::to_string(objs_->read_int(k).value_or(-1)), objs_->read_str(v));
  items.clear();
  ASSERT_TRUE(objs_->dict_items(target_.addr("huge"), &items, 100));
  EXPECT_EQ(items.size(), 100u);

  // A split (3.8-3.10) / values-backed (3.11+) instance dict.
  items.clear();
  ASSERT_TRUE(objs_->dict_items(target_.addr("split_dict"), &items));
  std::set<std::string> keys;
  for (auto& kv : items) keys.insert(objs_->read_str(kv.first).value_or("?"));
  EXPECT_EQ(keys, (std::set<std::string>{"alpha", "name", "text", "big"}));
  auto name = objs_->dict_get_str(target_.addr("split_dict"), "name");
  ASSERT_TRUE(name);
  EXPECT_EQ(objs_->read_str(*name), "plain-instance");
}

TEST_P(PyObjectsLive, InstanceAttributes) {
  uint64_t inst = target_.addr("inst");
  EXPECT_EQ(objs_->type_name(inst), "Plain");
  EXPECT_EQ(objs_->read_int(objs_->instance_attr(inst, "alpha").value_or(0)), 1);
  EXPECT_EQ(str_attr(inst, "name"), "plain-instance");
  EXPECT_EQ(str_attr(inst, "text"), "ünïcödé");
  EXPECT_EQ(objs_->read_int(objs_->instance_attr(inst, "big").value_or(0)), int64_t{1} << 40);
  EXPECT_FALSE(objs_->instance_attr(inst, "deleted"));
  EXPECT_FALSE(objs_->instance_attr(inst, "nonexistent"));

  uint64_t late = target_.addr("late");
  EXPECT_EQ(str_attr(late, "late_attr"), "set-after-dict");
  EXPECT_EQ(str_attr(late, "name"), "plain-instance");

  uint64_t many = target_.addr("many");
  for (int i : {0, 17, 39}) {
    auto v = objs_->instance_attr(many, "attr" + std::to_string(i));
    ASSERT_TRUE(v) << i;
    EXPECT_EQ(objs_->read_int(*v), i * 3);
  }
  // Objects without a __dict__ have no instance attributes.
  EXPECT_FALSE(objs_->instance_attr(target_.report()["ints"]["small"][0].get<uint64_t>(), "real"));
}

TEST_P(PyObjectsLive, ModulesAndGlobals) {
  uint64_t interp = interp_state();
  EXPECT_EQ(objs_->module(interp, "threading"), target_.addr("threading"));
  EXPECT_EQ(objs_->module(interp, "__main__"), target_.addr("main_module"));
  EXPECT_EQ(objs_->module(interp, "pyprofd_custom"), target_.addr("custom"));
  EXPECT_FALSE(objs_->module(interp, "no_such_module"));
  // Nothing is imported while the target blocks: the signature holds still.
  auto sig = objs_->modules_signature(interp);
  ASSERT_TRUE(sig);
  EXPECT_EQ(objs_->modules_signature(interp), sig);
  EXPECT_EQ(objs_->dict_get_str(target_.addr("modules"), "threading"), target_.addr("threading"));

  EXPECT_EQ(objs_->module_attr(target_.addr("threading"), "_active"), target_.addr("active"));
  uint64_t main_mod = target_.addr("main_module");
  EXPECT_EQ(objs_->read_int(objs_->module_attr(main_mod, "GLOBAL_INT").value_or(0)), 4242);
  EXPECT_EQ(objs_->read_str(objs_->module_attr(main_mod, "GLOBAL_STR").value_or(0)), "module-global");
  uint64_t custom = target_.addr("custom");
  EXPECT_EQ(objs_->type_name(custom), "module");
  EXPECT_EQ(objs_->read_int(objs_->module_attr(custom, "answer").value_or(0)), 42);
  EXPECT_EQ(objs_->read_str(objs_->module_attr(custom, "label").value_or(0)), "custom-module");
}

TEST_P(PyObjectsLive, ThreadNames) {
  std::unordered_map<uint64_t, std::string> expected;
  for (auto& [ident, name] : target_.report()["threads"].items())
    expected[std::stoull(ident)] = name.get<std::string>();
  ASSERT_EQ(expected.size(), 3u);
  auto names = read_thread_names(*mem_, *layout_, interp_state());
  EXPECT_EQ(names, expected);
}

INSTANTIATE_TEST_SUITE_P(Interpreters, PyObjectsLive, ::testing::ValuesIn(test_interpreters()),
                         [](const auto& info) { return std::string(info.param.label); });

// Random words, many of them pointers back into the region: every call must
// return (usually "not found"), never crash or loop.
TEST(PyObjectsGarbage, RandomMemoryNeverCrashes) {
  constexpr uint64_t kBase = 0x10000;
  constexpr size_t kWords = 1 << 13;
  std::mt19937_64 rng(1234);
  for (int minor = 8; minor <= 13; ++minor) {
    const Layout* layout = builtin_layout(3, minor);
    ASSERT_NE(layout, nullptr);
    std::vector<uint64_t> words(kWords);
    for (auto& w : words) {
      switch (rng() % 4) {
        case 0: w = kBase + (rng() % (kWords * 8)); break;
        case 1: w = rng() % 64; break;
        case 2: w = rng(); break;
        default: w = 0;
      }
    }
    SnapshotMemory mem;
    mem.add(kBase, words.data(), words.size() * 8);
    PyObjects objs(mem, *layout);
    std::vector<std::pair<uint64_t, uint64_t>> items;
    for (int i = 0; i < 2000; ++i) {
      uint64_t a = kBase + (rng() % (kWords * 8));
      objs.read_str(a);
      objs.read_int(a);
      objs.type_name(a);
      objs.dict_get_str(a, "key");
      objs.instance_attr(a, "name");
      objs.module(a, "threading");
      objs.module_attr(a, "_active");
      items.clear();
      objs.dict_items(a, &items);
      EXPECT_LE(items.size(), 4096u);
      read_thread_names(mem, *layout, a);
    }
  }
}

TEST(PyObjectsGarbage, UnreadableAddresses) {
  SnapshotMemory mem;
  PyObjects objs(mem, *builtin_layout(3, 12));
  std::vector<std::pair<uint64_t, uint64_t>> items;
  EXPECT_FALSE(objs.read_str(0));
  EXPECT_FALSE(objs.read_int(0x1000));
  EXPECT_FALSE(objs.dict_get_str(0x1000, "x"));
  EXPECT_FALSE(objs.dict_items(0x1000, &items));
  EXPECT_FALSE(objs.instance_attr(0x1000, "x"));
  EXPECT_TRUE(read_thread_names(mem, *builtin_layout(3, 12), 0x1000).empty());
}

// set_items reads the table where the last read found it, with the head: after a resize
// the head names a new table and that one is read, never the stale old one.
TEST(PyObjectsSets, MovedTableIsReadAfresh) {
  const Layout& l = *builtin_layout(3, 12);
  constexpr uint64_t kSet = 0x10000, kOld = 0x20000, kNew = 0x30000;
  auto head = [&](uint64_t mask, uint64_t table) {
    std::vector<uint8_t> h(64, 0);
    std::memcpy(&h[l.set_mask], &mask, 8);
    std::memcpy(&h[l.set_table], &table, 8);
    return h;
  };
  auto table = [](size_t slots, std::vector<uint64_t> keys) {
    std::vector<uint64_t> t(2 * slots, 0);
    for (size_t i = 0; i < keys.size(); ++i) t[2 * i] = keys[i];
    return t;
  };
  SnapshotMemory mem;
  PyObjects objs(mem, l);
  auto items = [&] {
    std::vector<uint64_t> keys;
    EXPECT_TRUE(objs.set_items(kSet, &keys, 100));
    return std::set<uint64_t>(keys.begin(), keys.end());
  };
  auto old_table = table(8, {0x7000001000, 0x7000002000});
  mem.add(kSet, head(7, kOld));
  mem.add(kOld, old_table.data(), old_table.size() * 8);
  EXPECT_EQ(items(), (std::set<uint64_t>{0x7000001000, 0x7000002000}));
  auto new_table = table(16, {0x7000003000});
  mem.add(kSet, head(15, kNew));  // resized: the old table is still readable, and stale
  mem.add(kNew, new_table.data(), new_table.size() * 8);
  EXPECT_EQ(items(), (std::set<uint64_t>{0x7000003000}));
  new_table = table(16, {0x7000004000, 0x7000005000});  // changed in place
  mem.add(kNew, new_table.data(), new_table.size() * 8);
  EXPECT_EQ(items(), (std::set<uint64_t>{0x7000004000, 0x7000005000}));
  mem.add(kSet, head(7, kOld));  // back to a table of another size at the old address
  EXPECT_EQ(items(), (std::set<uint64_t>{0x7000001000, 0x7000002000}));
}

// The decoders of bytes already read (a batched read's buffer): only what lies inside them.
TEST(PyObjectsDecode, StrAndIntFromBytes) {
  for (int minor = 8; minor <= 13; ++minor) {
    const Layout& l = *builtin_layout(3, minor);
    std::vector<uint8_t> obj(l.str_ascii_size + 8, 0);
    int64_t length = 5;
    uint32_t state = (1 << 2) | (1 << 5) | (1 << 6) | (l.str_has_ready_bit ? 1 << 7 : 0);  // compact ASCII
    std::memcpy(&obj[l.str_length], &length, 8);
    std::memcpy(&obj[l.str_state], &state, 4);
    std::memcpy(&obj[l.str_ascii_size], "hello", 5);
    std::string out;
    ASSERT_TRUE(decode_str(obj.data(), obj.size(), l, 100, &out)) << minor;
    EXPECT_EQ(out, "hello");
    ASSERT_TRUE(decode_str(obj.data(), obj.size(), l, 2, &out));
    EXPECT_EQ(out, "he");
    EXPECT_FALSE(decode_str(obj.data(), l.str_ascii_size + 4, l, 100, &out));  // text cut off

    std::vector<uint8_t> num(l.long_digits + 8, 0);
    int64_t size = l.long_tagged ? (2 << 3) | 2 : -2;  // two digits, negative
    uint32_t digits[2] = {5, 1};
    std::memcpy(&num[l.long_size], &size, 8);
    std::memcpy(&num[l.long_digits], digits, 8);
    EXPECT_EQ(decode_int(num.data(), num.size(), l), -((int64_t{1} << 30) + 5)) << minor;
    EXPECT_FALSE(decode_int(num.data(), l.long_digits + 4, l));  // second digit not read
  }
}

}  // namespace
}  // namespace pyprofd
