// Reading Python objects (str, int, dict, module and instance attributes) from
// another process. Every address is untrusted: reads are checked, loops bounded,
// and garbage yields std::nullopt / false, never a crash.
#pragma once
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "profiler/layout.h"
#include "profiler/remote_memory.h"

namespace pyprofd {

class PyObjects {
 public:
  PyObjects(RemoteMemory& mem, const Layout& layout) : mem_(mem), layout_(layout) {}

  // Any str kind -> UTF-8; longer strings are truncated to max_len code points.
  std::optional<std::string> read_str(uint64_t str_obj, size_t max_len = 4096);
  // Value stored under a str key, or nullopt (absent, not a dict, unreadable).
  std::optional<uint64_t> dict_get_str(uint64_t dict, std::string_view key);
  // A PyLong that fits in int64.
  std::optional<int64_t> read_int(uint64_t long_obj);
  // Type(obj).tp_name.
  std::optional<std::string> type_name(uint64_t obj);
  // obj.__dict__[name] for an instance (tp_dictoffset dict, 3.11+ managed dict or values).
  std::optional<uint64_t> instance_attr(uint64_t obj, std::string_view name);
  // Changes whenever a module is added to sys.modules (its ma_used and ma_keys), so a
  // caller waiting for an import can skip the scan while nothing was imported.
  std::optional<uint64_t> modules_signature(uint64_t interp_state);
  // sys.modules[name], from PyInterpreterState.
  std::optional<uint64_t> module(uint64_t interp_state, std::string_view name);
  // module.__dict__[name].
  std::optional<uint64_t> module_attr(uint64_t module, std::string_view name);
  // Appends a dict's (key, value) pairs, at most max_items. False if unreadable.
  bool dict_items(uint64_t dict, std::vector<std::pair<uint64_t, uint64_t>>* out,
                  size_t max_items = 4096);

 private:
  uint64_t modules_interp_ = 0, modules_dict_ = 0;  // for modules_signature
  struct Entry {
    uint64_t key = 0;
    uint64_t value = 0;  // 0 for split tables: the value lives in the values array
  };
  // A keys object's live entries (index i = entry number), read in one call.
  bool read_entries(uint64_t keys, std::vector<Entry>* out, size_t max_entries);
  // Index of the entry whose key is the str `key`, or -1.
  int64_t find_key(const std::vector<Entry>& entries, std::string_view key);
  // Lookup in shared keys + a values array (values[i] at values_array + 8*i).
  std::optional<uint64_t> split_get(uint64_t keys, uint64_t values_array, size_t capacity,
                                    std::string_view key);
  bool is_str(uint64_t obj);
  // A non-NULL pointer stored at addr.
  std::optional<uint64_t> read_ptr(uint64_t addr);

  RemoteMemory& mem_;
  const Layout& layout_;
};

}  // namespace pyprofd
