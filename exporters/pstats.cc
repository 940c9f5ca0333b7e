#include "exporters/pstats.h"

#include <algorithm>
#include <map>
#include <utility>

#include "exporters/marshal_writer.h"

namespace pyprofd {
namespace {

// Sanitizing here (not only when writing) merges keys that would collide in the file.
FunctionKey pstats_key(FunctionKey key) {
  key.name = sanitize_utf8(key.name);
  key.file = sanitize_utf8(key.file);
  if (key.file == "~") key.first_line = 0;
  return key;
}

template <typename T>
void sort_unique(std::vector<T>* v) {
  std::sort(v->begin(), v->end());
  v->erase(std::unique(v->begin(), v->end()), v->end());
}

void write_key(MarshalWriter* w, const FunctionKey& k) {
  w->begin_tuple(3);
  w->write_str(k.file);
  w->write_int(k.first_line);
  w->write_str(k.name);
}

}  // namespace

std::vector<PstatsEntry> build_pstats_entries(const Profile& p) {
  // Distinct keys in use, in key order; duplicate FunctionKeys in p.functions merge.
  std::vector<FunctionKey> keys;
  for (const auto& f : p.functions) keys.push_back(pstats_key(f));
  std::map<FunctionKey, size_t> index;
  for (const auto& s : p.stacks) {
    if (!s.usable(keys.size())) continue;
    for (const auto& f : s.frames) index.emplace(keys[f.function], 0);
  }
  std::vector<PstatsEntry> entries;
  for (auto& [key, i] : index) {
    i = entries.size();
    entries.push_back(PstatsEntry{key, 0, 0, 0, 0, {}});
  }
  std::vector<size_t> entry_of(keys.size(), 0);  // unused functions map to 0 and are never read
  for (size_t f = 0; f < keys.size(); ++f) {
    auto it = index.find(keys[f]);
    if (it != index.end()) entry_of[f] = it->second;
  }

  std::vector<std::map<size_t, PstatsCaller>> edges(entries.size());
  std::vector<size_t> stack, distinct;
  std::vector<std::pair<size_t, size_t>> pairs;
  for (const auto& s : p.stacks) {
    if (!s.usable(keys.size())) continue;
    stack.clear();
    for (const auto& f : s.frames) stack.push_back(entry_of[f.function]);
    const uint64_t k = s.samples, dt = s.weight_ns;
    PstatsEntry& leaf = entries[stack.back()];
    leaf.cc += k;
    leaf.tt_ns += dt;
    distinct = stack;
    sort_unique(&distinct);
    for (size_t e : distinct) {
      entries[e].nc += k;
      entries[e].ct_ns += dt;
    }
    pairs.clear();
    for (size_t i = 1; i < stack.size(); ++i) pairs.emplace_back(stack[i - 1], stack[i]);
    sort_unique(&pairs);
    for (const auto& [caller, callee] : pairs) {
      PstatsCaller& edge = edges[callee][caller];
      edge.caller = caller;
      edge.samples += k;
      edge.ct_ns += dt;
    }
    if (stack.size() >= 2) edges[stack.back()][stack[stack.size() - 2]].tt_ns += dt;
  }
  for (size_t e = 0; e < entries.size(); ++e)
    for (const auto& [caller, edge] : edges[e]) entries[e].callers.push_back(edge);
  return entries;
}

std::string export_pstats(const Profile& p) {
  const std::vector<PstatsEntry> entries = build_pstats_entries(p);
  if (entries.empty()) return "";
  MarshalWriter w;
  w.begin_dict();
  for (const auto& e : entries) {
    write_key(&w, e.key);
    w.begin_tuple(5);
    w.write_uint(e.cc);
    w.write_uint(e.nc);
    w.write_float(pstats_seconds(e.tt_ns));
    w.write_float(pstats_seconds(e.ct_ns));
    w.begin_dict();
    for (const auto& c : e.callers) {
      write_key(&w, entries[c.caller].key);
      w.begin_tuple(4);  // (nc, cc, tt, ct): the 4-tuple form every reader accepts
      w.write_uint(c.samples);
      w.write_uint(c.samples);
      w.write_float(pstats_seconds(c.tt_ns));
      w.write_float(pstats_seconds(c.ct_ns));
    }
    w.end_dict();
  }
  w.end_dict();
  return w.take();
}

}  // namespace pyprofd
