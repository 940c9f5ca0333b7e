#include "profiler/thread_names.h"

#include <utility>
#include <vector>

#include "profiler/py_objects.h"

namespace pyprofd {

namespace {
constexpr size_t kMaxThreads = 4096;
constexpr size_t kMaxNameLength = 256;  // code points kept of a thread name
}  // namespace

std::unordered_map<uint64_t, std::string> read_thread_names(RemoteMemory& mem, const Layout& layout,
                                                            uint64_t interp_state) {
  std::unordered_map<uint64_t, std::string> names;
  PyObjects objs(mem, layout);
  auto threading = objs.module(interp_state, "threading");
  if (!threading) return names;
  auto active = objs.module_attr(*threading, "_active");  // {ident: Thread}
  std::vector<std::pair<uint64_t, uint64_t>> items;
  if (!active || !objs.dict_items(*active, &items, kMaxThreads)) return names;
  for (const auto& [key, thread] : items) {
    auto ident = objs.read_int(key);
    if (!ident || *ident <= 0) continue;
    // Thread.name is a property over the _name attribute.
    auto name_obj = objs.instance_attr(thread, "_name");
    if (!name_obj) continue;
    auto name = objs.read_str(*name_obj, kMaxNameLength);
    if (name) names.emplace(static_cast<uint64_t>(*ident), std::move(*name));
  }
  return names;
}

}  // namespace pyprofd
