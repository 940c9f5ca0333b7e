#include "profiler/native_merge.h"

#include <cstring>

namespace pyprofd {

namespace {

bool starts_with(const std::string& s, const char* prefix) { return s.compare(0, std::strlen(prefix), prefix) == 0; }

// Functions that only pass a call on (3.8-3.15's names); a C function that does real
// work (a builtin, a C extension) is never among them.
const char* const kMachinery[] = {
    "_PyEval_",           "PyEval_",          "_PyObject_Vectorcall", "PyObject_Vectorcall",
    "_PyObject_Call",     "PyObject_Call",    "_PyObject_MakeTpCall", "_PyObject_FastCall",
    "_PyFunction_Vectorcall", "_PyFunction_FastCall", "function_code_fastcall", "_PyVectorcall_Call",
    "PyVectorcall_Call",  "_PyCFunction_",    "cfunction_",           "method_vectorcall",
    "vectorcall_",        "call_function",    "do_call_core",         "slot_tp_call",
    "_PyObject_VectorcallTstate", "object_vacall", "PyCFunction_Call", "builtin_call",
    "_Py_call_",          "_PyEval_Vector",   "partial_vectorcall",   "partial_call",
};

// loop_of[k]: the loop native frame k runs, -1 if none. False if they cannot be paired.
bool pair_by_name(const std::vector<NativeFrameRef>& native, size_t loops, bool complete, std::vector<int>* loop_of) {
  size_t n = 0;
  for (size_t k = 0; k < native.size(); ++k)
    if (native[k].sym && is_eval_function(native[k].sym->function)) (*loop_of)[k] = static_cast<int>(n++);
  return n <= loops && !(complete && n < loops) && !(n == 0 && loops);
}

// Loop g's shim lies in [sps[k], sps[k+1]) of the native frame k that runs it.
bool pair_by_shim(const std::vector<NativeFrameRef>& native, const std::vector<uint64_t>& shims, bool complete,
                  std::vector<int>* loop_of) {
  size_t g = 0;
  for (size_t k = 0; k < native.size() && g < shims.size(); ++k) {
    if (!native[k].sp) return false;
    uint64_t hi = k + 1 < native.size() && native[k + 1].sp ? native[k + 1].sp : UINT64_MAX;
    if (!shims[g] || shims[g] < native[k].sp) return false;  // below the stack pointer: the stack moved
    if (shims[g] < hi) {
      (*loop_of)[k] = static_cast<int>(g++);
      if (g < shims.size() && shims[g] < hi) return false;  // two loops in one native frame
    }
  }
  for (size_t k = 0; k < native.size(); ++k)  // an evaluation loop that runs no Python frame
    if ((*loop_of)[k] < 0 && native[k].sym && is_eval_function(native[k].sym->function)) return false;
  return g > 0 && !(complete && g < shims.size());
}

}  // namespace

bool is_eval_function(const std::string& name) {
  static const char kEval[] = "_PyEval_EvalFrameDefault";
  return starts_with(name, kEval) && (name.size() == sizeof kEval - 1 || name[sizeof kEval - 1] == '.');
}

bool is_call_machinery(const std::string& name) {
  for (const char* m : kMachinery)
    if (starts_with(name, m)) return true;
  return false;
}

bool merge_native(const std::vector<RawFrame>& python, const std::vector<NativeFrameRef>& native, bool complete,
                  bool all, std::vector<MergedFrame>* out) {
  out->clear();
  // Python frames per evaluation loop, innermost loop first: [begin, end) of `python`.
  std::vector<std::pair<int, int>> loops;
  for (size_t i = 0; i < python.size(); ++i) {
    if (loops.empty() || python[i - 1].entry) loops.push_back({static_cast<int>(i), static_cast<int>(i)});
    loops.back().second = static_cast<int>(i) + 1;
  }
  std::vector<uint64_t> shims;
  bool by_shim = false;
  for (const auto& [begin, end] : loops) {
    shims.push_back(python[end - 1].shim);
    by_shim = by_shim || python[end - 1].shim;
  }
  std::vector<int> loop_of(native.size(), -1);
  if (!(by_shim ? pair_by_shim(native, shims, complete, &loop_of) : pair_by_name(native, loops.size(), complete, &loop_of)))
    return false;
  size_t loop = 0;
  for (size_t k = 0; k < native.size(); ++k) {
    const auto& f = native[k];
    if (loop_of[k] >= 0) {
      for (int i = loops[loop].first; i < loops[loop].second; ++i) out->push_back(MergedFrame{i, 0, nullptr});
      ++loop;
      continue;
    }
    // Below the outermost loop is start-up (main, Py_RunMain, thread bootstrap): noise.
    if (!all && (loop == loops.size() || (f.sym && is_call_machinery(f.sym->function)))) continue;
    out->push_back(MergedFrame{-1, f.pc, f.sym});
  }
  // A cut native stack: the loops it did not reach keep their Python frames.
  for (; loop < loops.size(); ++loop)
    for (int i = loops[loop].first; i < loops[loop].second; ++i) out->push_back(MergedFrame{i, 0, nullptr});
  return true;
}

size_t leaf_tail(const std::vector<MergedFrame>& merged) {
  size_t n = 0;
  while (n < merged.size() && merged[n].python < 0) ++n;
  return n;
}

}  // namespace pyprofd
