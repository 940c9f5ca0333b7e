// merge_native: evaluation loops replaced by the Python frames they ran, paired by the
// walker's entry markers; counts that disagree are torn.
#include "profiler/native_merge.h"

#include <gtest/gtest.h>

namespace pyprofd {
namespace {

struct Stacks {
  std::vector<NativeSymbol> syms;
  std::vector<NativeFrameRef> native;
  std::vector<RawFrame> python;
};

// native: names innermost first; python: (code id, entry) innermost first.
Stacks make(std::vector<std::string> native, std::vector<std::pair<uint64_t, bool>> python) {
  Stacks s;
  s.syms.reserve(native.size());
  for (auto& n : native) s.syms.push_back(NativeSymbol{n, "lib.so", "", 0, 0});
  for (size_t i = 0; i < native.size(); ++i) s.native.push_back(NativeFrameRef{0x1000 + i, &s.syms[i]});
  for (auto& [code, entry] : python) s.python.push_back(RawFrame{code, 0, 0, false, entry});
  return s;
}

std::vector<std::string> render(const Stacks& s, const std::vector<MergedFrame>& m) {
  std::vector<std::string> out;
  for (const auto& f : m) out.push_back(f.python >= 0 ? "py" + std::to_string(s.python[f.python].code) : f.sym->function);
  return out;
}

TEST(NativeMerge, EachLoopTakesItsFramesInOrderAndMachineryIsHidden) {
  // 3.11+: py1, py2 run in the inner loop (py2 its entry), py3 in the outer one.
  auto s = make({"deflate", "zlib_compress", "cfunction_vectorcall_O", "_PyEval_EvalFrameDefault", "call_back",
                 "_PyObject_Call", "_PyEval_EvalFrameDefault", "Py_RunMain", "main"},
                {{1, false}, {2, true}, {3, true}});
  std::vector<MergedFrame> m;
  ASSERT_TRUE(merge_native(s.python, s.native, true, false, &m));
  EXPECT_EQ(render(s, m), (std::vector<std::string>{"deflate", "zlib_compress", "py1", "py2", "call_back", "py3"}));
  ASSERT_TRUE(merge_native(s.python, s.native, true, true, &m));
  EXPECT_EQ(m.size(), 10u);  // everything kept with --native-all
}

TEST(NativeMerge, LeafTailIsTheNativeFramesBelowTheInnermostPythonFrame) {
  auto s = make({"deflate", "zlib_compress", "cfunction_vectorcall_O", "_PyEval_EvalFrameDefault", "call_back",
                 "_PyEval_EvalFrameDefault", "main"},
                {{1, true}, {2, true}});
  std::vector<MergedFrame> m;
  ASSERT_TRUE(merge_native(s.python, s.native, true, false, &m));
  EXPECT_EQ(leaf_tail(m), 2u);  // deflate, zlib_compress; not call_back between the Python frames
  ASSERT_TRUE(merge_native(s.python, s.native, true, true, &m));
  EXPECT_EQ(leaf_tail(m), 3u);  // --native-all keeps the call machinery
  auto python_leaf = make({"_PyEval_EvalFrameDefault", "main"}, {{1, true}});
  ASSERT_TRUE(merge_native(python_leaf.python, python_leaf.native, true, false, &m));
  EXPECT_EQ(leaf_tail(m), 0u);
  EXPECT_EQ(leaf_tail({}), 0u);
}

TEST(NativeMerge, CountsThatDisagreeAreTorn) {
  std::vector<MergedFrame> m;
  auto more_loops = make({"f", "_PyEval_EvalFrameDefault", "_PyEval_EvalFrameDefault"}, {{1, true}});
  EXPECT_FALSE(merge_native(more_loops.python, more_loops.native, true, false, &m));
  auto fewer = make({"f", "_PyEval_EvalFrameDefault", "main"}, {{1, true}, {2, true}});
  EXPECT_FALSE(merge_native(fewer.python, fewer.native, true, false, &m));
  auto none = make({"f", "g"}, {{1, true}});
  EXPECT_FALSE(merge_native(none.python, none.native, false, false, &m));
}

TEST(NativeMerge, ACutNativeStackKeepsTheOuterPythonFrames) {
  auto s = make({"f", "_PyEval_EvalFrameDefault.cold"}, {{1, true}, {2, true}, {3, true}});
  std::vector<MergedFrame> m;
  ASSERT_TRUE(merge_native(s.python, s.native, false, false, &m));
  EXPECT_EQ(render(s, m), (std::vector<std::string>{"f", "py1", "py2", "py3"}));
}

TEST(NativeMerge, EvalNamesAndMachinery) {
  EXPECT_TRUE(is_eval_function("_PyEval_EvalFrameDefault"));
  EXPECT_TRUE(is_eval_function("_PyEval_EvalFrameDefault.lto_priv.0"));
  EXPECT_FALSE(is_eval_function("_PyEval_EvalFrameDefaultX"));
  EXPECT_TRUE(is_call_machinery("_PyObject_VectorcallTstate"));
  EXPECT_FALSE(is_call_machinery("deflate"));
  EXPECT_FALSE(is_call_machinery("time_sleep"));
}

}  // namespace
}  // namespace pyprofd
